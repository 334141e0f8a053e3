"""The sections of the server's own machinery: `[registrar]` (RFC 3261 §10.3),
`[auth]` (digest challenges), `[limits]` (messages, connections, Timer C) and
`[overload]`; the features, messaging, security, media and operator sections live
with their components. Each is checked as `server/config_values.py` describes; rules
that tie keys of one section together are in its `__post_init__`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sipline.server.config_values import (
    ConfigError,
    boolean,
    fraction,
    nonneg_int,
    pos_float,
    pos_int,
    setting,
    strings,
)

__all__ = [
    "ALGORITHMS",
    "AuthSection",
    "LimitsSection",
    "OverloadSection",
    "RegistrarSection",
]

ALGORITHMS = ("SHA-512-256", "SHA-256", "MD5")


def _algorithms(key: str, value: Any) -> tuple[str, ...]:
    names = strings(key, value)
    if not names or any(v not in ALGORITHMS for v in names):
        raise ConfigError(
            f"{key}: must be a list drawn from {', '.join(ALGORITHMS)}, not {value!r}"
        )
    return tuple(dict.fromkeys(names))  # RFC 8760 §2.4: in the order written (the preference)


@dataclass(frozen=True, slots=True)
class RegistrarSection:
    """[registrar] (RFC 3261 §10.3)."""

    min_expires: int = setting(60, nonneg_int)
    max_expires: int = setting(7200, pos_int)
    default_expires: int = setting(3600, pos_int)
    fix_nated_register: bool = setting(True, boolean)
    max_contacts: int = setting(10, pos_int)  # bindings per address-of-record

    def __post_init__(self) -> None:
        if self.min_expires > self.max_expires:
            raise ConfigError("registrar.min_expires: larger than registrar.max_expires")
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ConfigError(
                "registrar.default_expires: must lie between min_expires and max_expires"
            )


@dataclass(frozen=True, slots=True)
class AuthSection:
    """[auth]. Challenges in this order of preference (RFC 8760 §2.4). MD5 alone by
    default, as Kamailio and Asterisk do: many deployed clients know only MD5 and read
    only the first challenge (baresip, SIPp, sipsak) or only the last (twinkle), so any
    other algorithm offered beside it locks some of them out (README "Configuration")."""

    algorithms: tuple[str, ...] = setting(("MD5",), _algorithms)
    nonce_ttl_s: float = setting(300.0, pos_float)
    authenticate_calls: bool = setting(True, boolean)


@dataclass(frozen=True, slots=True)
class LimitsSection:
    """[limits]"""

    max_message_bytes: int = setting(65535, pos_int)
    max_connections: int = setting(4096, pos_int)
    idle_timeout_s: float = setting(300.0, pos_float)
    timer_c_s: float = setting(180.0, pos_float)
    message_timeout_s: float = setting(10.0, pos_float)  # a whole TCP/TLS message within this
    max_connections_per_source: int = setting(32, pos_int)


@dataclass(frozen=True, slots=True)
class OverloadSection:
    """[overload] (README "Overload control", RFC 3261 §21.5.4)."""

    enabled: bool = setting(True, boolean)
    max_loop_lag_ms: float = setting(250.0, pos_float)
    max_pending_transactions: int = setting(2000, pos_int)
    max_server_transactions: int = setting(50_000, pos_int)
    max_store_backlog: int = setting(1000, pos_int)
    max_store_queue: int = setting(5000, pos_int)
    retry_after_s: int = setting(5, pos_int)
    max_udp_queue_fill: float = setting(0.1, fraction)
    max_response_wait_ms: float = setting(400.0, pos_float)

    def __post_init__(self) -> None:
        if self.max_store_backlog > self.max_store_queue:
            raise ConfigError(
                "overload.max_store_backlog: larger than overload.max_store_queue"
                " (shedding must start before the queue refuses calls)"
            )
