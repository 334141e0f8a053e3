"""What one configuration value may be, and how a TOML table becomes a section.

Each section of the server's TOML file is a frozen dataclass defined beside the
component that uses it; its fields are the section's keys, each declared with
`setting(default, check)`. A check takes the key (`registrar.min_expires`) and the
value as TOML gave it, and returns the typed value or raises `ConfigError` naming the
key: `registrar.min_expires: must be an integer ≥ 0, not -1`. Rules that tie keys of
one section together live in that section's `__post_init__`. Nothing here imports
the rest of `sipline.server`, so every component may use it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sipline.core.errors import RemoteProtocolError
from sipline.core.uri import SipUri, parse_uri
from sipline.storage.location import database_location

__all__ = [
    "ConfigError",
    "IpNetwork",
    "boolean",
    "changed_keys",
    "choice",
    "fraction",
    "hostport",
    "is_sip_uri",
    "load_section",
    "network",
    "networks",
    "nonneg_float",
    "nonneg_int",
    "parse_hostport",
    "path",
    "port",
    "pos_float",
    "pos_int",
    "secret",
    "section_keys",
    "setting",
    "sip_uri",
    "sip_uris",
    "strings",
    "table_list",
    "text",
]

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
D = TypeVar("D", bound="DataclassInstance")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Check = Callable[[str, Any], Any]


class ConfigError(ValueError):
    """A configuration value is wrong; the message starts with the key."""


def setting(default: T, check: Check, *, key: str | None = None) -> T:
    """A section field: its default, its check, and its TOML key when that is not the
    field's name (`from` is a Python keyword)."""
    meta = {"check": check, "key": key}
    return dataclasses.field(default=default, metadata=meta)


def section_keys(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """TOML key -> field, in the order of the dataclass."""
    return {
        (f.metadata.get("key") or f.name): f
        for f in dataclasses.fields(cls)
        if "check" in f.metadata
    }


def load_section(cls: type[D], section: str, body: object, base: D | None = None) -> D:
    """`[section]` as `cls` (over `base`, else the defaults): every key known and checked."""
    if not isinstance(body, dict):
        raise ConfigError(f"{section}: must be a table ([{section}])")
    keys = section_keys(cls)
    changes: dict[str, Any] = {}
    for key, value in body.items():
        f = keys.get(key)
        if f is None:
            raise ConfigError(f"{section}.{key}: unknown key (known: {', '.join(keys)})")
        changes[f.name] = f.metadata["check"](f"{section}.{key}", value)
    return dataclasses.replace(base if base is not None else cls(), **changes)


def table_list(
    value: object, section: str, keys: tuple[str, ...]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """`[[section]]`: each table with its key prefix (`rooms[0]`), unknown keys refused."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{section}: must be an array of tables ([[{section}]])")
    for i, body in enumerate(value):
        prefix = f"{section}[{i}]"
        for name in body:
            if name not in keys:
                raise ConfigError(f"{prefix}.{name}: unknown key (known: {', '.join(keys)})")
        yield prefix, body


def changed_keys(old: DataclassInstance, new: DataclassInstance) -> list[str]:
    """The TOML keys (`registrar.max_expires`) whose values differ between two
    configurations; a section of tables (`[[regions]]`) is named whole, and a group of
    sections (the operator's `[log]`, `[http]`, ...) by its sections' keys."""
    names: list[str] = []
    for f in dataclasses.fields(old):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a == b:
            continue
        if not dataclasses.is_dataclass(a) or isinstance(a, type):
            names.append(f.name)
        elif section_keys(type(a)):
            names += [
                f"{f.name}.{key}"
                for key, g in section_keys(type(a)).items()
                if getattr(a, g.name) != getattr(b, g.name)
            ]
        else:
            names += changed_keys(a, b)
    return names


# -- the checks --------------------------------------------------------------------------------
def _need(key: str, value: object, ok: bool, what: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: must be {what}, not {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def boolean(key: str, value: Any) -> bool:
    _need(key, value, isinstance(value, bool), "true or false")
    return bool(value)


def text(key: str, value: Any) -> str:
    _need(key, value, isinstance(value, str) and bool(value), "a non-empty string")
    return str(value)


def path(key: str, value: Any) -> Path:
    _need(key, value, isinstance(value, str) and bool(value), "a file path")
    return Path(value)


def database(key: str, value: Any) -> Path | str:
    """A SQLite file path, or a postgresql:// URL (kept as written)."""
    _need(key, value, isinstance(value, str) and bool(value), "a file path or postgresql:// URL")
    return database_location(value)


def pos_int(key: str, value: Any) -> int:
    _need(key, value, _is_int(value) and value > 0, "a positive integer")
    return int(value)


def nonneg_int(key: str, value: Any) -> int:
    _need(key, value, _is_int(value) and value >= 0, "an integer ≥ 0")
    return int(value)


def port(key: str, value: Any) -> int:
    _need(key, value, _is_int(value) and 0 <= value < 65536, "a port number from 0 to 65535")
    return int(value)


def pos_float(key: str, value: Any) -> float:
    _need(key, value, _is_number(value) and value > 0, "a positive number")
    return float(value)


def nonneg_float(key: str, value: Any) -> float:
    _need(key, value, _is_number(value) and value >= 0, "a number ≥ 0")
    return float(value)


def fraction(key: str, value: Any) -> float:
    _need(key, value, _is_number(value) and 0 < value <= 1, "a number above 0 and at most 1")
    return float(value)


def choice(*allowed: str, what: str | None = None) -> Check:
    """One of `allowed`; `what` words the error (default: the values quoted)."""

    def check(key: str, value: Any) -> str:
        _need(key, value, value in allowed, what or ", ".join(repr(a) for a in allowed))
        return str(value)

    return check


def strings(key: str, value: Any) -> tuple[str, ...]:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    _need(key, value, ok, "a list of strings")
    return tuple(value)


def network(key: str, value: Any) -> IpNetwork:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not an IP address or network") from None


def networks(key: str, value: Any) -> tuple[IpNetwork, ...]:
    _need(key, value, isinstance(value, list), "a list of networks (10.0.0.0/8)")
    return tuple(network(key, v) for v in value)


def is_sip_uri(value: object) -> bool:
    try:
        return isinstance(value, str) and isinstance(parse_uri(value), SipUri)
    except RemoteProtocolError:
        return False


def sip_uri(key: str, value: Any) -> str:
    _need(key, value, is_sip_uri(value), "a sip: or sips: URI")
    return str(value)


def sip_uris(key: str, value: Any) -> tuple[str, ...]:
    ok = isinstance(value, list) and all(is_sip_uri(v) for v in value)
    _need(key, value, ok, "a list of sip: or sips: URIs")
    return tuple(value)


def parse_hostport(value: str, key: str) -> tuple[str, int]:
    """`127.0.0.1:8080`, `[::1]:8080`: an IP literal and a port."""
    if value.startswith("["):
        host, sep, port_s = value[1:].partition("]:")
    else:
        host, sep, port_s = value.rpartition(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} must be IP:PORT (e.g. 127.0.0.1:8080)") from None
    if not sep or not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ConfigError(f"{key}: {value!r} must be IP:PORT with a port from 0 to 65535")
    return host, int(port_s)


def hostport(key: str, value: Any) -> str:
    _need(key, value, isinstance(value, str), "a string IP:PORT")
    parse_hostport(value, key)
    return str(value)


def secret(key: str, value: Any) -> str:
    ok = isinstance(value, str) and len(value) >= 8
    _need(key, value, ok, "a string of at least 8 characters")
    return str(value)
