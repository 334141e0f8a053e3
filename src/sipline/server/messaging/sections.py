"""The `[messaging]` and `[presence]` sections (README "Messaging and presence"),
checked as `server/config_values.py` describes."""

from __future__ import annotations

from dataclasses import dataclass

from sipline.server.config_values import (
    ConfigError,
    boolean,
    choice,
    nonneg_float,
    pos_float,
    pos_int,
    setting,
)

__all__ = ["PRESENCE_POLICIES", "MessagingSection", "PresenceSection"]

# Who may watch a user's presence when the user has no rule about the watcher.
PRESENCE_POLICIES = ("allow", "same-domain", "confirm", "deny")


@dataclass(frozen=True, slots=True)
class MessagingSection:
    """[messaging] (README "Messaging and presence")."""

    max_body_bytes: int = setting(8192, pos_int)
    store_offline: bool = setting(True, boolean)
    expiry_s: float = setting(604800.0, pos_float)
    max_stored_per_user: int = setting(1000, pos_int)
    retry_s: float = setting(30.0, pos_float)


@dataclass(frozen=True, slots=True)
class PresenceSection:
    """[presence]; strangers' pending subscriptions are bounded (README "Running on the
    Internet")."""

    default_policy: str = setting("same-domain", choice(*PRESENCE_POLICIES))
    min_expires: int = setting(60, pos_int)
    max_expires: int = setting(7200, pos_int)
    default_expires: int = setting(3600, pos_int)
    min_notify_interval_s: float = setting(5.0, nonneg_float)
    max_pending_per_source: int = setting(20, pos_int)
    max_pending_per_user: int = setting(20, pos_int)
    max_pending: int = setting(1000, pos_int)

    def __post_init__(self) -> None:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ConfigError(
                "presence.default_expires: must lie between presence.min_expires and max_expires"
            )
