"""The `[log]`, `[hep]` and `[cdr]` sections: what the records of a server keep and
where they go (README "Operating sipline")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sipline.server.config_values import (
    boolean,
    choice,
    hostport,
    pos_float,
    pos_int,
    secret,
    setting,
)

__all__ = ["CdrSettings", "HepSettings", "LogSettings", "RecordSettings"]


@dataclass(frozen=True, slots=True)
class LogSettings:
    """[log]"""

    format: str = setting(
        "text", choice("text", "json", what="'text' or 'json'")
    )  # json: one object per line
    # every SIP message in and out, at info (always at debug)
    sip_trace: bool = setting(False, boolean)


@dataclass(frozen=True, slots=True)
class HepSettings:
    """[hep]"""

    address: str | None = setting(None, hostport)  # "host:port" of a Homer collector
    capture_id: int = setting(2001, pos_int)
    password: str | None = setting(None, secret)  # HEP auth key chunk, when wanted


@dataclass(frozen=True, slots=True)
class CdrSettings:
    """[cdr]"""

    enabled: bool = setting(True, boolean)
    # records, events and messages older than this are purged
    keep_days: float = setting(90.0, pos_float)
    # keep each call's SIP messages (ladder diagram, pcap export)
    messages: bool = setting(True, boolean)


class RecordSettings(Protocol):
    """The sections the message tap reads (the operator's configuration has them)."""

    @property
    def log(self) -> LogSettings: ...
    @property
    def hep(self) -> HepSettings: ...
    @property
    def cdr(self) -> CdrSettings: ...
