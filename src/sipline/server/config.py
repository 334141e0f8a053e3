"""Server configuration: one frozen dataclass per TOML section, assembled here.

`load_config` takes the parsed TOML document (a dict) and returns a `ServerConfig`,
or raises `ConfigError("server.mode: must be 'proxy' or 'redirect', not 'foo'")`.
Unknown sections and keys are errors too: a typo must not silently fall back to a
default. Each section is defined (and checked) beside the component that uses it;
this module defines `[server]` and puts the sections together.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sipline.server.config_values import (
    ConfigError,
    boolean,
    choice,
    load_section,
    path,
    pos_int,
    section_keys,
    setting,
    strings,
    text,
)
from sipline.server.config_values import database as database_setting
from sipline.server.features.location import Region
from sipline.server.features.sections import EmergencySection, FeaturesSection, parse_regions
from sipline.server.media_services.rooms_config import (
    ConferenceSection,
    MediaSection,
    RoomConfig,
    parse_rooms,
)
from sipline.server.messaging.sections import MessagingSection, PresenceSection
from sipline.server.node import check_node, node_name
from sipline.server.ops.config import OPS_SECTIONS, OpsConfig
from sipline.server.sections import (
    AuthSection,
    LimitsSection,
    OverloadSection,
    RegistrarSection,
)
from sipline.server.security.relay import TrustedPeer
from sipline.server.security.sections import SecuritySection, parse_trusted
from sipline.server.startup import TlsSection
from sipline.server.voicemail.settings import EmailSection, VoicemailSection
from sipline.storage.location import database_location

__all__ = [
    "DEFAULT_LISTEN",
    "ConfigError",
    "Listen",
    "ServerConfig",
    "ServerSection",
    "check_domain",
    "config_keys",
    "default_db_path",
    "default_workers",
    "load_config",
    "parse_listen",
]

# Loopback by default: a server reachable from the network is a choice made in the config.
DEFAULT_LISTEN = ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "tls:127.0.0.1:5061")
# WebSocket has no SIP port of its own: RFC 7118 §5.2 URIs default to 80 and 443.
_DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 80, "wss": 443}


def default_workers() -> int:
    """One worker process per core."""
    return os.cpu_count() or 1


def default_db_path() -> Path | str:
    """`$SIPLINE_DB` (a file path or a postgresql:// URL), else `sipline.db` in the
    current directory."""
    return database_location(os.environ.get("SIPLINE_DB", "sipline.db"))


@dataclass(frozen=True, slots=True)
class Listen:
    transport: str  # "UDP", "TCP", "TLS", "WS", "WSS"
    host: str  # IP literal, brackets removed
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.lower()}:{host}:{self.port}"


def parse_listen(spec: str, key: str = "listen") -> Listen:
    """`udp:127.0.0.1:5060`, `tcp:[::1]:5060`, `tls:0.0.0.0`, `ws:127.0.0.1:8088`,
    `wss:0.0.0.0:8089` (default port per transport)."""
    transport, sep, rest = spec.partition(":")
    transport = transport.lower()
    if not sep or transport not in _DEFAULT_PORTS:
        raise ConfigError(
            f"{key}: {spec!r} must look like udp:HOST:PORT, tcp:HOST:PORT, tls:HOST:PORT,"
            " ws:HOST:PORT or wss:HOST:PORT"
        )
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ConfigError(f"{key}: {spec!r} has an unclosed '['")
        host, tail = rest[1:end], rest[end + 1 :]
        port_s = tail[1:] if tail.startswith(":") else ("" if not tail else None)
    else:
        host, _, port_s = rest.partition(":")
    if port_s is None:
        raise ConfigError(f"{key}: {spec!r} has junk after the address")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{key}: {host!r} in {spec!r} is not an IP address") from None
    if port_s == "":
        port = _DEFAULT_PORTS[transport]
    elif port_s.isdigit() and int(port_s) <= 65535:
        port = int(port_s)
    else:
        raise ConfigError(f"{key}: port {port_s!r} in {spec!r} is not a number from 0 to 65535")
    return Listen(transport.upper(), host, port)


def check_domain(value: str, key: str = "domain") -> str:
    name = value.strip().lower()
    labels = name.rstrip(".").split(".")
    if not name or any(not lbl or not all(c.isalnum() or c == "-" for c in lbl) for lbl in labels):
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not a domain name or IP address") from None
    return name


def _listen(key: str, value: Any) -> tuple[Listen, ...]:
    specs = strings(key, value)
    if not specs:
        raise ConfigError(f"{key}: must be a non-empty list, not {value!r}")
    return tuple(parse_listen(v, key) for v in specs)


def _domains(key: str, value: Any) -> tuple[str, ...]:
    return tuple(check_domain(v, key) for v in strings(key, value))


def _origins(key: str, value: Any) -> tuple[str, ...]:
    found = strings(key, value)
    for origin in found:
        scheme, sep, rest = origin.partition("://")
        if origin != "*" and (scheme.lower() not in ("http", "https") or not sep or not rest):
            raise ConfigError(f"{key}: {origin!r} is not an origin (https://HOST[:PORT]) or '*'")
    return found


@dataclass(frozen=True, slots=True)
class ServerSection:
    """[server]"""

    listen: tuple[Listen, ...] = setting(tuple(map(parse_listen, DEFAULT_LISTEN)), _listen)
    domains: tuple[str, ...] = setting((), _domains)
    # `$SIPLINE_DB` is read when a configuration is made, not when this module is loaded.
    database: Path | str = field(
        default_factory=default_db_path, metadata={"check": database_setting}
    )
    mode: str = setting("proxy", choice("proxy", "redirect", what="'proxy' or 'redirect'"))
    redirect_users: tuple[str, ...] = setting((), strings)  # redirected in proxy mode
    record_route: bool = setting(True, boolean)
    advertise: str | None = setting(None, text)
    # The secret of digest nonces and signed Record-Routes, one for every node and worker
    # (server/secret_file.py); None: DATABASE.secret beside the database file.
    secret_file: Path | None = setting(None, path)
    # This node's name among several sharing one store (server/node.py); None: HOST:PORT
    # of its first listener.
    node: str | None = setting(None, check_node)
    # Pages that may open a SIP WebSocket besides the dialled host and served domains
    # (RFC 6455 §10.2, transport/websocket.py): exact origins, or "*" for any.
    ws_origins: tuple[str, ...] = setting((), _origins)
    # worker processes (docs/architecture.md "Workers"); None: one per core
    workers: int | None = setting(None, pos_int)
    log_level: str = setting(
        "info",
        choice("debug", "info", "warning", "error", what="debug, info, warning or error"),
    )

    @property
    def node_name(self) -> str:
        """This node's name (`node`, else its first listener's HOST:PORT, server/node.py)."""
        return node_name(self.node, self.listen)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The whole configuration: one attribute per TOML section, named after it (the
    operator's `[log]`, `[http]`, `[hep]` and `[cdr]` together as `ops`)."""

    server: ServerSection = field(default_factory=ServerSection)
    tls: TlsSection = field(default_factory=TlsSection)
    registrar: RegistrarSection = field(default_factory=RegistrarSection)
    auth: AuthSection = field(default_factory=AuthSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    media: MediaSection = field(default_factory=MediaSection)
    conference: ConferenceSection = field(default_factory=ConferenceSection)
    features: FeaturesSection = field(default_factory=FeaturesSection)
    emergency: EmergencySection = field(default_factory=EmergencySection)
    messaging: MessagingSection = field(default_factory=MessagingSection)
    presence: PresenceSection = field(default_factory=PresenceSection)
    overload: OverloadSection = field(default_factory=OverloadSection)
    security: SecuritySection = field(default_factory=SecuritySection)
    voicemail: VoicemailSection = field(default_factory=VoicemailSection)
    email: EmailSection = field(default_factory=EmailSection)
    regions: tuple[Region, ...] = ()
    trusted: tuple[TrustedPeer, ...] = ()
    rooms: tuple[RoomConfig, ...] = ()
    ops: OpsConfig = field(default_factory=OpsConfig)


# [[regions]], [[trusted]], [[rooms]]: arrays of tables, each with its parser.
_TABLE_LISTS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "regions": parse_regions,
    "trusted": parse_trusted,
    "rooms": parse_rooms,
}
_SECTIONS = [f.name for f in dataclasses.fields(ServerConfig) if f.name not in _TABLE_LISTS]
_SECTIONS.remove("ops")


def config_keys() -> dict[str, list[str]]:
    """Every `[section]` and its keys, as README "Configuration" documents them."""
    cfg = ServerConfig()
    sections = [(name, getattr(cfg, name)) for name in _SECTIONS]
    sections += [(name, getattr(cfg.ops, name)) for name in OPS_SECTIONS]
    return {name: list(section_keys(type(value))) for name, value in sections}


def load_config(doc: dict[str, Any], base: ServerConfig | None = None) -> ServerConfig:
    """Apply a parsed TOML document onto `base` (defaults when None)."""
    cfg = base if base is not None else ServerConfig()
    changes: dict[str, Any] = {}
    ops: dict[str, Any] = {}
    for section, body in doc.items():
        if section in _TABLE_LISTS:
            changes[section] = _TABLE_LISTS[section](body)
        elif section in OPS_SECTIONS:
            current = getattr(cfg.ops, section)
            ops[section] = load_section(type(current), section, body, current)
        elif section in _SECTIONS:
            current = getattr(cfg, section)
            changes[section] = load_section(type(current), section, body, current)
        else:
            known = ", ".join([*_SECTIONS, *_TABLE_LISTS, *OPS_SECTIONS])
            raise ConfigError(f"{section}: unknown section (known: {known})")
    if ops:
        changes["ops"] = dataclasses.replace(cfg.ops, **ops)
    return dataclasses.replace(cfg, **changes)
