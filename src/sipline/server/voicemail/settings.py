"""The `[voicemail]` and `[email]` sections (README "Voicemail and email")."""

from __future__ import annotations

from dataclasses import dataclass

from sipline.server.config_values import boolean, pos_float, pos_int, setting, text

__all__ = ["EmailSection", "VoicemailSection"]


@dataclass(frozen=True, slots=True)
class VoicemailSection:
    """[voicemail]"""

    enabled: bool = setting(True, boolean)
    max_message_s: float = setting(120.0, pos_float)
    max_messages: int = setting(100, pos_int)  # per user; a full mailbox refuses new ones
    speech: bool = setting(True, boolean)  # spoken prompts with espeak-ng when installed


@dataclass(frozen=True, slots=True)
class EmailSection:
    """[email]: no host, no email."""

    host: str | None = setting(None, text)
    port: int = setting(587, pos_int)
    starttls: bool = setting(True, boolean)
    username: str | None = setting(None, text)
    password: str | None = setting(None, text)
    sender: str = setting("sipline@localhost", text, key="from")
    missed_calls: bool = setting(False, boolean)
    retry_s: float = setting(60.0, pos_float)  # the first retry; each next waits twice as long
    max_attempts: int = setting(8, pos_int)
