"""The `[log]`, `[http]`, `[hep]` and `[cdr]` sections of the configuration.

One frozen dataclass per section, validated here; `server/config.py` hands each
section's table to `update_ops`. Errors are `ValueError`s whose message starts with
the key (the caller turns them into its `ConfigError`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "OPS_SECTIONS",
    "CdrSettings",
    "HepSettings",
    "HttpSettings",
    "LogSettings",
    "OpsConfig",
    "check_ops",
    "parse_hostport",
    "update_ops",
]


@dataclass(frozen=True, slots=True)
class LogSettings:
    format: str = "text"  # or "json": one JSON object per line
    sip_trace: bool = False  # every SIP message in and out, at info (always at debug)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    listen: str | None = None  # "127.0.0.1:8080"; None: no HTTP listener
    admin_password: str | None = None  # the dashboard's login, HTTP Basic user "admin"
    token: str | None = None  # a bearer token for scripts and Prometheus
    tls_cert: Path | None = None  # HTTPS with this certificate and key
    tls_key: Path | None = None

    @property
    def credential(self) -> bool:
        return bool(self.admin_password or self.token)


@dataclass(frozen=True, slots=True)
class HepSettings:
    address: str | None = None  # "host:port" of a Homer collector; None: off
    capture_id: int = 2001
    password: str | None = None  # HEP auth key chunk, when the collector wants one


@dataclass(frozen=True, slots=True)
class CdrSettings:
    enabled: bool = True
    keep_days: float = 90.0  # records, events and messages older than this are purged
    messages: bool = True  # keep each call's SIP messages (ladder diagram, pcap export)


@dataclass(frozen=True, slots=True)
class OpsConfig:
    log: LogSettings = field(default_factory=LogSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    hep: HepSettings = field(default_factory=HepSettings)
    cdr: CdrSettings = field(default_factory=CdrSettings)


OPS_SECTIONS = ("log", "http", "hep", "cdr")

# section -> key -> kind
_KEYS: dict[str, dict[str, str]] = {
    "log": {"format": "logformat", "sip_trace": "bool"},
    "http": {
        "listen": "hostport",
        "admin_password": "secret",
        "token": "secret",
        "tls_cert": "path",
        "tls_key": "path",
    },
    "hep": {"address": "hostport", "capture_id": "posint", "password": "secret"},
    "cdr": {"enabled": "bool", "keep_days": "posfloat", "messages": "bool"},
}


def parse_hostport(value: str, key: str) -> tuple[str, int]:
    """`127.0.0.1:8080`, `[::1]:8080`: an IP literal and a port."""
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
    else:
        host, sep, port = value.rpartition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{key}: {value!r} must be IP:PORT (e.g. 127.0.0.1:8080)") from None
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{key}: {value!r} must be IP:PORT with a port from 0 to 65535")
    return host, int(port)


def _convert(key: str, kind: str, value: Any) -> Any:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"{key}: must be {what}, not {value!r}")

    if kind == "bool":
        need(isinstance(value, bool), "true or false")
        return value
    if kind == "logformat":
        need(value in ("text", "json"), "'text' or 'json'")
        return value
    if kind == "secret":
        need(isinstance(value, str) and len(value) >= 8, "a string of at least 8 characters")
        return value
    if kind == "path":
        need(isinstance(value, str) and bool(value), "a file path")
        return Path(value)
    if kind == "hostport":
        need(isinstance(value, str), "a string IP:PORT")
        parse_hostport(value, key)
        return value
    if kind == "posint":
        need(
            isinstance(value, int) and not isinstance(value, bool) and value > 0,
            "a positive integer",
        )
        return value
    if kind == "posfloat":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        need(ok, "a positive number")
        return float(value)
    raise ValueError(f"{key}: unknown kind {kind}")


def update_ops(ops: OpsConfig, section: str, body: dict[str, Any]) -> OpsConfig:
    """`ops` with one section's table applied; ValueError naming the key if wrong."""
    names = {"log": "log", "http": "http", "hep": "hep", "cdr": "cdr"}
    current = getattr(ops, names[section])
    changes: dict[str, Any] = {}
    for key, value in body.items():
        kind = _KEYS[section].get(key)
        if kind is None:
            known = ", ".join(_KEYS[section])
            raise ValueError(f"{section}.{key}: unknown key (known: {known})")
        changes[key] = _convert(f"{section}.{key}", kind, value)
    return replace(ops, **{section: replace(current, **changes)})


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def check_ops(ops: OpsConfig) -> None:
    """Rules across keys: never a management listener on the network in the clear or
    without a credential."""
    http = ops.http
    if (http.tls_cert is None) != (http.tls_key is None):
        raise ValueError("http.tls_cert: http.tls_cert and http.tls_key go together")
    if http.listen is not None:
        host, _ = parse_hostport(http.listen, "http.listen")
        if not is_loopback(host) and (http.tls_cert is None or not http.credential):
            raise ValueError(
                f"http.listen: {http.listen} is not a loopback address: it needs"
                " http.tls_cert/http.tls_key and http.admin_password or http.token"
            )
