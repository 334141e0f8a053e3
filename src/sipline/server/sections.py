"""The sections that shape how SIP is served: `[registrar]`, `[auth]`, `[limits]`,
`[features]`, `[emergency]`, `[messaging]`, `[presence]`, `[overload]`,
`[security]`, and the arrays of tables `[[regions]]` and `[[trusted]]`.

Each is a frozen dataclass whose fields are its keys (README "Configuration"),
checked as `server/config_values.py` describes; rules that tie keys of one section
together are in its `__post_init__`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipline.runtime.flood import DEFAULT_SCANNERS
from sipline.server.config_values import (
    ConfigError,
    IpNetwork,
    boolean,
    choice,
    fraction,
    is_sip_uri,
    network,
    networks,
    nonneg_float,
    nonneg_int,
    path,
    pos_float,
    pos_int,
    setting,
    sip_uri,
    sip_uris,
    strings,
    table_list,
)
from sipline.server.features.location import CIVIC_FIELDS, Region
from sipline.server.security.relay import TrustedPeer

__all__ = [
    "ALGORITHMS",
    "PRESENCE_POLICIES",
    "AuthSection",
    "EmergencySection",
    "FeaturesSection",
    "LimitsSection",
    "MessagingSection",
    "OverloadSection",
    "PresenceSection",
    "RegistrarSection",
    "SecuritySection",
    "parse_regions",
    "parse_trusted",
]

ALGORITHMS = ("SHA-512-256", "SHA-256", "MD5")
# Who may watch a user's presence when the user has no rule about the watcher.
PRESENCE_POLICIES = ("allow", "same-domain", "confirm", "deny")


def _algorithms(key: str, value: Any) -> tuple[str, ...]:
    names = strings(key, value)
    if not names or any(v not in ALGORITHMS for v in names):
        raise ConfigError(
            f"{key}: must be a list drawn from {', '.join(ALGORITHMS)}, not {value!r}"
        )
    return tuple(dict.fromkeys(names))  # RFC 8760 §2.4: in the order written (the preference)


def _numbers(key: str, value: Any) -> tuple[str, ...]:
    ok = isinstance(value, list) and all(
        isinstance(v, str) and v.strip() and " " not in v for v in value
    )
    if not ok:
        raise ConfigError(
            f"{key}: must be a list of numbers or URNs (112, urn:service:sos), not {value!r}"
        )
    return tuple(v.strip() for v in value)


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
class FeaturesSection:
    """[features] (README "Routing features")."""

    history_info: bool = setting(True, boolean)
    diversion: bool = setting(True, boolean)
    max_forward_depth: int = setting(5, pos_int)


@dataclass(frozen=True, slots=True)
class EmergencySection:
    """[emergency] (README "Emergency calls")."""

    numbers: tuple[str, ...] = setting(("112", "911", "urn:service:sos"), _numbers)
    psap: str | None = setting(None, sip_uri)
    psaps: tuple[str, ...] = setting((), sip_uris)  # tried in turn after psap
    hop_timeout_s: float = setting(4.0, pos_float)  # a PSAP silent this long is skipped


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


_LOOPBACK = (ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("::1"))


@dataclass(frozen=True, slots=True)
class SecuritySection:
    """[security] (README "Running on the Internet"): failed authentications per
    source, bans, and flood control."""

    max_auth_failures: int = setting(10, pos_int)  # per source within the window
    failure_window_s: float = setting(60.0, pos_float)
    ban_s: float = setting(60.0, pos_float)  # the first ban; each repeat doubles it ...
    max_ban_s: float = setting(3600.0, pos_float)  # ... up to this
    internal_networks: tuple[IpNetwork, ...] = setting((), networks)
    log_file: Path | None = setting(None, path)
    flood_control: bool = setting(True, boolean)
    flood_requests: int = setting(1000, pos_int)  # messages per source over flood_window_s
    flood_window_s: float = setting(2.0, pos_float)
    flood_ban_s: float = setting(60.0, pos_float)  # ... past which it is banned this long
    flood_exempt: tuple[IpNetwork, ...] = setting(_LOOPBACK, networks)
    scanner_user_agents: tuple[str, ...] = setting(DEFAULT_SCANNERS, strings)

    def __post_init__(self) -> None:
        if self.ban_s > self.max_ban_s:
            raise ConfigError("security.ban_s: larger than security.max_ban_s")


_REGION_KEYS = ("name", "networks", "civic", "box", "point", "psap")
_TRUSTED_KEYS = ("address", "name", "transport", "port")


def parse_regions(value: Any) -> tuple[Region, ...]:
    """`[[regions]]`: named areas for location-based routing and emergency calls."""
    regions: list[Region] = []
    for key, body in table_list(value, "regions", _REGION_KEYS):
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or " " in name.strip():
            raise ConfigError(f"{key}.name: must be a name without spaces, not {name!r}")
        if any(r.name == name for r in regions):
            raise ConfigError(f"{key}.name: region {name!r} is defined twice")
        raw_nets = body.get("networks", [])
        if not isinstance(raw_nets, list):
            raise ConfigError(f"{key}.networks: must be a list of networks (192.0.2.0/24)")
        nets = []
        for net in raw_nets:
            try:
                nets.append(ipaddress.ip_network(str(net), strict=False))
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
        if psap is not None and not is_sip_uri(psap):
            raise ConfigError(f"{key}.psap: must be a sip: or sips: URI, not {psap!r}")
        regions.append(
            Region(
                name.strip(),
                tuple((known[k.lower()], v) for k, v in civic.items()),
                (box[0], box[1], box[2], box[3]) if box is not None else None,
                tuple(nets),
                (point[0], point[1]) if point is not None else None,
                psap,
            )
        )
    return tuple(regions)


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


def parse_trusted(value: Any) -> tuple[TrustedPeer, ...]:
    """`[[trusted]]`: peers (trunks, other proxies) proxied for without credentials."""
    peers: list[TrustedPeer] = []
    for key, body in table_list(value, "trusted", _TRUSTED_KEYS):
        if "address" not in body:
            raise ConfigError(f"{key}.address: missing (an IP address or network)")
        net = network(f"{key}.address", body["address"])
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
        peers.append(TrustedPeer(net, name, transport, port))
    return tuple(peers)
