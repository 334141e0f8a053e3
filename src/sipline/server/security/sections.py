"""The `[security]` section and the `[[trusted]]` peers (README "Running on the
Internet"), checked as `server/config_values.py` describes."""

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
    network,
    networks,
    path,
    pos_float,
    pos_int,
    setting,
    strings,
    table_list,
)
from sipline.server.security.relay import TrustedPeer

__all__ = ["SecuritySection", "parse_trusted"]

_TRUSTED_KEYS = ("address", "name", "transport", "port")
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
