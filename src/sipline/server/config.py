"""Server configuration: defaults, the TOML schema, and errors that name the key.

`load_config` takes the parsed TOML document (a dict) and returns a `ServerConfig`,
or raises `ConfigError("server.mode: must be 'proxy' or 'redirect', not 'foo'")`.
Unknown keys are errors too: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sipline.core.errors import RemoteProtocolError
from sipline.core.uri import SipUri, parse_uri
from sipline.runtime.flood import DEFAULT_SCANNERS
from sipline.server.features.location import CIVIC_FIELDS, Region
from sipline.server.media_services.rooms_config import RoomConfig, parse_rooms
from sipline.server.ops.config import OPS_SECTIONS, OpsConfig, check_ops, update_ops
from sipline.server.security.relay import IpNetwork, TrustedPeer

__all__ = [
    "DEFAULT_LISTEN",
    "PRESENCE_POLICIES",
    "ConfigError",
    "Listen",
    "ServerConfig",
    "default_db_path",
    "default_workers",
    "load_config",
    "parse_listen",
]

# Loopback by default: a server reachable from the network is a choice made in the config.
DEFAULT_LISTEN = ("udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "tls:127.0.0.1:5061")
_DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


class ConfigError(ValueError):
    """A configuration value is wrong; the message starts with the key."""


def default_workers() -> int:
    """One worker process per core."""
    return os.cpu_count() or 1


def default_db_path() -> Path:
    """`$SIPLINE_DB`, else `sipline.db` in the current directory."""
    return Path(os.environ.get("SIPLINE_DB", "sipline.db"))


@dataclass(frozen=True, slots=True)
class Listen:
    transport: str  # "UDP", "TCP", "TLS"
    host: str  # IP literal, brackets removed
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.lower()}:{host}:{self.port}"


def parse_listen(spec: str, key: str = "listen") -> Listen:
    """`udp:127.0.0.1:5060`, `tcp:[::1]:5060`, `tls:0.0.0.0` (default port per transport)."""
    transport, sep, rest = spec.partition(":")
    transport = transport.lower()
    if not sep or transport not in _DEFAULT_PORTS:
        raise ConfigError(
            f"{key}: {spec!r} must look like udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT"
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


@dataclass(slots=True)
class ServerConfig:
    listen: list[Listen] = field(default_factory=lambda: [parse_listen(s) for s in DEFAULT_LISTEN])
    domains: list[str] = field(default_factory=list)
    database: Path = field(default_factory=default_db_path)
    mode: str = "proxy"  # or "redirect"
    redirect_users: list[str] = field(default_factory=list)  # redirect these AORs in proxy mode
    record_route: bool = True
    advertise: str | None = None
    # worker processes (docs/architecture.md "Workers"); None: one per core
    workers: int | None = None
    # TLS
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # registrar
    min_expires: int = 60
    max_expires: int = 7200
    default_expires: int = 3600
    fix_nated_register: bool = True
    max_contacts: int = 10  # bindings per address-of-record
    # authentication
    # Challenges in this order of preference (RFC 8760 §2.4). MD5 alone by default, as
    # Kamailio and Asterisk do: many deployed clients know only MD5 and read only the
    # first challenge (baresip, SIPp, sipsak) or only the last (twinkle), so any other
    # algorithm offered beside it locks some of them out (README "Configuration").
    auth_algorithms: list[str] = field(default_factory=lambda: ["MD5"])
    nonce_ttl_s: float = 300.0
    authenticate_calls: bool = True
    # limits
    max_message_bytes: int = 65535
    max_connections: int = 4096
    idle_timeout_s: float = 300.0
    timer_c_s: float = 180.0
    # routing features (README "Routing features")
    history_info: bool = True
    diversion: bool = True
    max_forward_depth: int = 5
    emergency_numbers: list[str] = field(default_factory=lambda: ["112", "911", "urn:service:sos"])
    emergency_psap: str | None = None
    emergency_psaps: list[str] = field(default_factory=list)  # tried in turn after psap
    emergency_hop_timeout_s: float = 4.0  # a PSAP silent this long is skipped
    regions: list[Region] = field(default_factory=list)
    # media services (README "Conference rooms"): the in-process media host
    media_enabled: bool = True
    media_port: int = 0  # its loopback UDP port (0: a free one)
    conference_max_participants: int = 20
    rooms: list[RoomConfig] = field(default_factory=list)
    # messaging (README "Messaging and presence")
    message_max_body_bytes: int = 8192
    store_offline: bool = True
    message_expiry_s: float = 604800.0
    max_stored_per_user: int = 1000
    delivery_retry_s: float = 30.0
    # presence
    presence_policy: str = "same-domain"
    subscribe_min_expires: int = 60
    subscribe_max_expires: int = 7200
    subscribe_default_expires: int = 3600
    min_notify_interval_s: float = 5.0
    # strangers' pending subscriptions kept (README "Running on the Internet")
    presence_max_pending_per_source: int = 20
    presence_max_pending_per_user: int = 20
    presence_max_pending: int = 1000
    # overload control (README "Overload control")
    overload_enabled: bool = True
    overload_max_loop_lag_ms: float = 250.0
    overload_max_pending: int = 2000
    overload_max_transactions: int = 50_000
    overload_max_store_backlog: int = 1000
    overload_max_store_queue: int = 5000
    overload_retry_after_s: int = 5
    overload_max_udp_queue_fill: float = 0.1
    overload_max_response_wait_ms: float = 400.0
    # security (README "Running on the Internet")
    max_auth_failures: int = 10  # failed authentications per source within the window
    auth_failure_window_s: float = 60.0
    ban_s: float = 60.0  # the first ban; each repeat doubles it up to max_ban_s
    max_ban_s: float = 3600.0
    internal_networks: list[IpNetwork] = field(default_factory=list)
    security_log_file: Path | None = None
    trusted: list[TrustedPeer] = field(default_factory=list)
    # logging
    log_level: str = "info"
    # -- flood control and connection limits (README "Running on the Internet") -------------
    flood_control: bool = True  # [security] flood_control
    flood_requests: int = 1000  # messages per source address over flood_window_s ...
    flood_window_s: float = 2.0
    flood_ban_s: float = 60.0  # ... past which it is banned this long
    flood_exempt: list[IpNetwork] = field(
        default_factory=lambda: [ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("::1")]
    )
    scanner_user_agents: list[str] = field(default_factory=lambda: list(DEFAULT_SCANNERS))
    message_timeout_s: float = 10.0  # [limits]: a whole TCP/TLS message within this
    max_connections_per_source: int = 32  # [limits]
    # -- voicemail and email (README "Voicemail and email") ---------------------------------
    voicemail_enabled: bool = True  # [voicemail] enabled
    voicemail_max_message_s: float = 120.0
    voicemail_max_messages: int = 100  # per user; a full mailbox refuses new messages
    voicemail_speech: bool = True  # spoken prompts with espeak-ng when installed
    email_host: str | None = None  # [email] host: no SMTP server, no email
    email_port: int = 587
    email_starttls: bool = True
    email_username: str | None = None
    email_password: str | None = None
    email_from: str = "sipline@localhost"
    email_missed_calls: bool = False
    email_retry_s: float = 60.0  # the first retry; each next one waits twice as long
    email_max_attempts: int = 8
    # [log], [http], [hep], [cdr]: what an operator sees (server/ops/config.py)
    ops: OpsConfig = field(default_factory=OpsConfig)


_ALGORITHMS = ("SHA-512-256", "SHA-256", "MD5")

# section -> key -> (attribute, kind)
_SCHEMA: dict[str, dict[str, tuple[str, str]]] = {
    "server": {
        "listen": ("listen", "listen"),
        "domains": ("domains", "domains"),
        "database": ("database", "path"),
        "mode": ("mode", "mode"),
        "redirect_users": ("redirect_users", "strlist"),
        "record_route": ("record_route", "bool"),
        "advertise": ("advertise", "str"),
        "workers": ("workers", "posint"),
        "log_level": ("log_level", "loglevel"),
    },
    "tls": {"cert": ("tls_cert", "path"), "key": ("tls_key", "path")},
    "registrar": {
        "min_expires": ("min_expires", "nonneg"),
        "max_expires": ("max_expires", "posint"),
        "default_expires": ("default_expires", "posint"),
        "fix_nated_register": ("fix_nated_register", "bool"),
        "max_contacts": ("max_contacts", "posint"),
    },
    "auth": {
        "algorithms": ("auth_algorithms", "algorithms"),
        "nonce_ttl_s": ("nonce_ttl_s", "posfloat"),
        "authenticate_calls": ("authenticate_calls", "bool"),
    },
    "limits": {
        "max_message_bytes": ("max_message_bytes", "posint"),
        "max_connections": ("max_connections", "posint"),
        "idle_timeout_s": ("idle_timeout_s", "posfloat"),
        "timer_c_s": ("timer_c_s", "posfloat"),
    },
    "media": {
        "enabled": ("media_enabled", "bool"),
        "port": ("media_port", "port"),
    },
    "conference": {
        "max_participants": ("conference_max_participants", "posint"),
    },
    "features": {
        "history_info": ("history_info", "bool"),
        "diversion": ("diversion", "bool"),
        "max_forward_depth": ("max_forward_depth", "posint"),
    },
    "emergency": {
        "numbers": ("emergency_numbers", "numbers"),
        "psap": ("emergency_psap", "sipuri"),
        "psaps": ("emergency_psaps", "sipuris"),
        "hop_timeout_s": ("emergency_hop_timeout_s", "posfloat"),
    },
    "messaging": {
        "max_body_bytes": ("message_max_body_bytes", "posint"),
        "store_offline": ("store_offline", "bool"),
        "expiry_s": ("message_expiry_s", "posfloat"),
        "max_stored_per_user": ("max_stored_per_user", "posint"),
        "retry_s": ("delivery_retry_s", "posfloat"),
    },
    "presence": {
        "default_policy": ("presence_policy", "policy"),
        "min_expires": ("subscribe_min_expires", "posint"),
        "max_expires": ("subscribe_max_expires", "posint"),
        "default_expires": ("subscribe_default_expires", "posint"),
        "min_notify_interval_s": ("min_notify_interval_s", "nonnegfloat"),
        "max_pending_per_source": ("presence_max_pending_per_source", "posint"),
        "max_pending_per_user": ("presence_max_pending_per_user", "posint"),
        "max_pending": ("presence_max_pending", "posint"),
    },
    "overload": {
        "enabled": ("overload_enabled", "bool"),
        "max_loop_lag_ms": ("overload_max_loop_lag_ms", "posfloat"),
        "max_pending_transactions": ("overload_max_pending", "posint"),
        "max_server_transactions": ("overload_max_transactions", "posint"),
        "max_store_backlog": ("overload_max_store_backlog", "posint"),
        "max_store_queue": ("overload_max_store_queue", "posint"),
        "retry_after_s": ("overload_retry_after_s", "posint"),
        "max_udp_queue_fill": ("overload_max_udp_queue_fill", "fraction"),
        "max_response_wait_ms": ("overload_max_response_wait_ms", "posfloat"),
    },
    "security": {
        "max_auth_failures": ("max_auth_failures", "posint"),
        "failure_window_s": ("auth_failure_window_s", "posfloat"),
        "ban_s": ("ban_s", "posfloat"),
        "max_ban_s": ("max_ban_s", "posfloat"),
        "internal_networks": ("internal_networks", "networks"),
        "log_file": ("security_log_file", "path"),
    },
}
# -- flood control and connection limits, kept apart from the other [security] keys ---------
_SCHEMA.setdefault("security", {}).update(
    {
        "flood_control": ("flood_control", "bool"),
        "flood_requests": ("flood_requests", "posint"),
        "flood_window_s": ("flood_window_s", "posfloat"),
        "flood_ban_s": ("flood_ban_s", "posfloat"),
        "flood_exempt": ("flood_exempt", "networks"),
        "scanner_user_agents": ("scanner_user_agents", "strlist"),
    }
)
_SCHEMA["limits"].update(
    {
        "message_timeout_s": ("message_timeout_s", "posfloat"),
        "max_connections_per_source": ("max_connections_per_source", "posint"),
    }
)
# -- voicemail and email, kept apart from the other sections ------------------------------
_SCHEMA["voicemail"] = {
    "enabled": ("voicemail_enabled", "bool"),
    "max_message_s": ("voicemail_max_message_s", "posfloat"),
    "max_messages": ("voicemail_max_messages", "posint"),
    "speech": ("voicemail_speech", "bool"),
}
_SCHEMA["email"] = {
    "host": ("email_host", "str"),
    "port": ("email_port", "posint"),
    "starttls": ("email_starttls", "bool"),
    "username": ("email_username", "str"),
    "password": ("email_password", "str"),
    "from": ("email_from", "str"),
    "missed_calls": ("email_missed_calls", "bool"),
    "retry_s": ("email_retry_s", "posfloat"),
    "max_attempts": ("email_max_attempts", "posint"),
}
# Who may watch a user's presence when the user has no rule about the watcher.
PRESENCE_POLICIES = ("allow", "same-domain", "confirm", "deny")
_REGION_KEYS = ("name", "networks", "civic", "box", "point", "psap")
_TRUSTED_KEYS = ("address", "name", "transport", "port")


def _convert(key: str, kind: str, value: Any) -> Any:
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ConfigError(f"{key}: must be {what}, not {value!r}")

    if kind == "bool":
        need(isinstance(value, bool), "true or false")
        return value
    if kind == "str":
        need(isinstance(value, str) and bool(value), "a non-empty string")
        return value
    if kind == "path":
        need(isinstance(value, str) and bool(value), "a file path")
        return Path(value)
    if kind in ("posint", "nonneg"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        need(
            ok and (value > 0 if kind == "posint" else value >= 0),
            "a positive integer" if kind == "posint" else "an integer ≥ 0",
        )
        return value
    if kind == "port":
        ok = isinstance(value, int) and not isinstance(value, bool)
        need(ok and 0 <= value < 65536, "a port number from 0 to 65535")
        return value
    if kind == "posfloat":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        need(ok, "a positive number")
        return float(value)
    if kind == "nonnegfloat":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        need(ok, "a number ≥ 0")
        return float(value)
    if kind == "fraction":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1
        need(ok, "a number above 0 and at most 1")
        return float(value)
    if kind == "policy":
        need(value in PRESENCE_POLICIES, ", ".join(repr(p) for p in PRESENCE_POLICIES))
        return value
    if kind == "mode":
        need(value in ("proxy", "redirect"), "'proxy' or 'redirect'")
        return value
    if kind == "sipuri":
        need(isinstance(value, str) and _is_sip_uri(value), "a sip: or sips: URI")
        return value
    if kind == "sipuris":
        need(
            isinstance(value, list) and all(isinstance(v, str) and _is_sip_uri(v) for v in value),
            "a list of sip: or sips: URIs",
        )
        return list(value)
    if kind == "numbers":
        need(
            isinstance(value, list)
            and all(isinstance(v, str) and v.strip() and " " not in v for v in value),
            "a list of numbers or URNs (112, urn:service:sos)",
        )
        return [v.strip() for v in value]
    if kind == "loglevel":
        need(value in ("debug", "info", "warning", "error"), "debug, info, warning or error")
        return value
    if kind == "networks":
        need(isinstance(value, list), "a list of networks (10.0.0.0/8)")
        return [_network(key, v) for v in value]
    if kind in ("strlist", "domains", "listen", "algorithms"):
        need(
            isinstance(value, list) and all(isinstance(v, str) for v in value), "a list of strings"
        )
        if kind == "listen":
            need(bool(value), "a non-empty list")
            return [parse_listen(v, key) for v in value]
        if kind == "domains":
            return [check_domain(v, key) for v in value]
        if kind == "algorithms":
            bad = [v for v in value if v not in _ALGORITHMS]
            need(bool(value) and not bad, f"a list drawn from {', '.join(_ALGORITHMS)}")
            # RFC 8760 §2.4: challenges go in the order written (the preference).
            return list(dict.fromkeys(value))
        return list(value)
    raise ConfigError(f"{key}: unknown kind {kind}")


def check_domain(value: str, key: str = "domain") -> str:
    name = value.strip().lower()
    labels = name.rstrip(".").split(".")
    if not name or any(not lbl or not all(c.isalnum() or c == "-" for c in lbl) for lbl in labels):
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not a domain name or IP address") from None
    return name


def load_config(doc: dict[str, Any], base: ServerConfig | None = None) -> ServerConfig:
    """Apply a parsed TOML document onto `base` (defaults when None)."""
    cfg = base if base is not None else ServerConfig()
    for section, body in doc.items():
        if section == "regions":
            cfg.regions = parse_regions(body)
            continue
        if section == "trusted":
            cfg.trusted = parse_trusted(body)
            continue
        if section == "rooms":
            cfg.rooms = parse_rooms(body)
            continue
        if section in OPS_SECTIONS and isinstance(body, dict):
            try:
                cfg.ops = update_ops(cfg.ops, section, body)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            continue
        if section not in _SCHEMA:
            known = ", ".join([*_SCHEMA, "regions", "trusted", "rooms", *OPS_SECTIONS])
            raise ConfigError(f"{section}: unknown section (known: {known})")
        if not isinstance(body, dict):
            raise ConfigError(f"{section}: must be a table ([{section}])")
        for key, value in body.items():
            spec = _SCHEMA[section].get(key)
            if spec is None:
                known = ", ".join(_SCHEMA[section])
                raise ConfigError(f"{section}.{key}: unknown key (known: {known})")
            attr, kind = spec
            setattr(cfg, attr, _convert(f"{section}.{key}", kind, value))
    check(cfg)
    return cfg


def _is_sip_uri(text: str) -> bool:
    try:
        return isinstance(parse_uri(text), SipUri)
    except RemoteProtocolError:
        return False


def parse_regions(value: Any) -> list[Region]:
    """`[[regions]]`: named areas for location-based routing and emergency calls."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError("regions: must be an array of tables ([[regions]])")
    regions: list[Region] = []
    for i, body in enumerate(value):
        key = f"regions[{i}]"
        for name in body:
            if name not in _REGION_KEYS:
                raise ConfigError(f"{key}.{name}: unknown key (known: {', '.join(_REGION_KEYS)})")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or " " in name.strip():
            raise ConfigError(f"{key}.name: must be a name without spaces, not {name!r}")
        if any(r.name == name for r in regions):
            raise ConfigError(f"{key}.name: region {name!r} is defined twice")
        networks = []
        raw_nets = body.get("networks", [])
        if not isinstance(raw_nets, list):
            raise ConfigError(f"{key}.networks: must be a list of networks (192.0.2.0/24)")
        for net in raw_nets:
            try:
                networks.append(ipaddress.ip_network(str(net), strict=False))
            except ValueError:
                raise ConfigError(f"{key}.networks: {net!r} is not an IP network") from None
        civic = body.get("civic", {})
        known = {f.lower(): f for f in CIVIC_FIELDS}
        if not isinstance(civic, dict) or not all(
            isinstance(v, str) and k.lower() in known for k, v in civic.items()
        ):
            raise ConfigError(
                f"{key}.civic: must be a table of RFC 5139 fields ({', '.join(CIVIC_FIELDS)})"
            )
        box = _floats(body, "box", key, 4)
        if box is not None and not (box[0] <= box[2] and box[1] <= box[3]):
            raise ConfigError(f"{key}.box: must be [lat_min, lon_min, lat_max, lon_max]")
        point = _floats(body, "point", key, 2)
        psap = body.get("psap")
        if psap is not None and not (isinstance(psap, str) and _is_sip_uri(psap)):
            raise ConfigError(f"{key}.psap: must be a sip: or sips: URI, not {psap!r}")
        regions.append(
            Region(
                name.strip(),
                tuple((known[k.lower()], v) for k, v in civic.items()),
                (box[0], box[1], box[2], box[3]) if box is not None else None,
                tuple(networks),
                (point[0], point[1]) if point is not None else None,
                psap,
            )
        )
    return regions


def _network(key: str, value: Any) -> IpNetwork:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not an IP address or network") from None


def parse_trusted(value: Any) -> list[TrustedPeer]:
    """`[[trusted]]`: peers (trunks, other proxies) proxied for without credentials."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError("trusted: must be an array of tables ([[trusted]])")
    peers: list[TrustedPeer] = []
    for i, body in enumerate(value):
        key = f"trusted[{i}]"
        for name in body:
            if name not in _TRUSTED_KEYS:
                raise ConfigError(f"{key}.{name}: unknown key (known: {', '.join(_TRUSTED_KEYS)})")
        if "address" not in body:
            raise ConfigError(f"{key}.address: missing (an IP address or network)")
        network = _network(f"{key}.address", body["address"])
        name = body.get("name", "")
        if not isinstance(name, str):
            raise ConfigError(f"{key}.name: must be a string, not {name!r}")
        transport = body.get("transport")
        if transport is not None:
            if not isinstance(transport, str) or transport.upper() not in ("UDP", "TCP", "TLS"):
                raise ConfigError(f"{key}.transport: must be udp, tcp or tls, not {transport!r}")
            transport = transport.upper()
        port = body.get("port")
        if port is not None and not (
            isinstance(port, int) and not isinstance(port, bool) and 0 < port <= 65535
        ):
            raise ConfigError(f"{key}.port: must be a number from 1 to 65535, not {port!r}")
        peers.append(TrustedPeer(network, name, transport, port))
    return peers


def _floats(body: dict[str, Any], name: str, key: str, n: int) -> list[float] | None:
    value = body.get(name)
    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not ok:
        raise ConfigError(f"{key}.{name}: must be a list of {n} numbers")
    return [float(v) for v in value]


def check(cfg: ServerConfig) -> None:
    """Rules that tie keys together."""
    if cfg.min_expires > cfg.max_expires:
        raise ConfigError("registrar.min_expires: larger than registrar.max_expires")
    if not cfg.min_expires <= cfg.default_expires <= cfg.max_expires:
        raise ConfigError("registrar.default_expires: must lie between min_expires and max_expires")
    if not cfg.subscribe_min_expires <= cfg.subscribe_default_expires <= cfg.subscribe_max_expires:
        raise ConfigError(
            "presence.default_expires: must lie between presence.min_expires and max_expires"
        )
    if cfg.overload_max_store_backlog > cfg.overload_max_store_queue:
        raise ConfigError(
            "overload.max_store_backlog: larger than overload.max_store_queue"
            " (shedding must start before the queue refuses calls)"
        )
    if cfg.ban_s > cfg.max_ban_s:
        raise ConfigError("security.ban_s: larger than security.max_ban_s")
    if (cfg.tls_cert is None) != (cfg.tls_key is None):
        raise ConfigError("tls.cert: tls.cert and tls.key go together")
    try:
        check_ops(cfg.ops)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
