"""Voicemail and outgoing email records, and the store protocol they are kept through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Mailbox", "OutgoingEmail", "VoicemailMessage", "VoicemailStore"]


@dataclass(frozen=True, slots=True)
class VoicemailMessage:
    id: int
    aor: str  # whose mailbox
    caller: str  # the From address of who left it
    received_at: float  # wall clock, seconds
    duration_s: float
    heard: bool
    audio: bytes = b""  # a WAV file (empty when listed without the audio)


@dataclass(frozen=True, slots=True)
class Mailbox:
    """Per-user voicemail settings: PIN (stored as a salted hash), greeting, email."""

    aor: str
    pin_hash: str | None = None
    greeting: bytes | None = None  # a WAV file, or None for the default
    email: str | None = None


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A message waiting in the outbox (kept so a restart does not lose it)."""

    id: int
    recipient: str
    message: bytes  # the RFC 5322 message, ready for SMTP
    attempts: int
    next_attempt_at: float
    last_error: str | None = None


class VoicemailStore(Protocol):
    def add_voicemail(
        self, aor: str, caller: str, received_at: float, duration_s: float, audio: bytes
    ) -> int:
        """Keep a new (unheard) message; returns its id."""

    def list_voicemail(self, aor: str, *, audio: bool = False) -> list[VoicemailMessage]:
        """The messages of `aor`, oldest first; their audio only when asked."""

    def get_voicemail(self, aor: str, message_id: int) -> VoicemailMessage | None: ...

    def mark_voicemail_heard(self, aor: str, message_id: int) -> bool: ...

    def remove_voicemail(self, aor: str, message_id: int) -> bool: ...

    def count_voicemail(self, aor: str) -> tuple[int, int]:
        """(new, old) for the message-waiting indication."""

    def get_mailbox(self, aor: str) -> Mailbox: ...

    def set_mailbox_pin(self, aor: str, pin_hash: str | None) -> None: ...

    def set_mailbox_greeting(self, aor: str, greeting: bytes | None) -> None: ...

    def set_mailbox_email(self, aor: str, email: str | None) -> None: ...

    def queue_email(self, recipient: str, message: bytes, now: float) -> int: ...

    def due_emails(self, now: float, limit: int = 10) -> list[OutgoingEmail]: ...

    def claim_emails(self, now: float, lease_s: float, limit: int = 10) -> list[OutgoingEmail]:
        """The emails due at `now`, each put off to `now + lease_s` in the same write:
        the mailers of several nodes never send one twice, and one that died sending
        is retried by any once the lease is over."""
        ...

    def email_sent(self, email_id: int) -> None: ...

    def email_failed(self, email_id: int, error: str, next_attempt_at: float | None) -> None:
        """Record a failed attempt: retried at `next_attempt_at`, or given up when None."""
