"""Who may have a request proxied to a target it names itself (the rule of Kamailio's
default configuration: no relaying for strangers).

A target that comes from the request (a Request-URI outside our domains, or a Route
left after our own) is proxied only for an authenticated local user or a trusted
peer; loopback, link-local and internal networks are never such a target unless a
`[[trusted]]` rule names them. Targets found in the location service (our users'
registered contacts) are not judged here: they are ours.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["IpNetwork", "RelayPolicy", "TrustedPeer"]

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never a target named by a request from outside (RFC 6890 special-purpose blocks
# that reach this host or its link): loopback, link-local, "this network".
_ALWAYS_INTERNAL: tuple[IpNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128")
)


@dataclass(frozen=True, slots=True)
class TrustedPeer:
    """A `[[trusted]]` peer (a trunk, another proxy): requests from it are proxied
    without credentials, and it may be a target even on an internal network."""

    network: IpNetwork
    name: str = ""
    transport: str | None = None  # "UDP", "TCP", "TLS"; None: any
    port: int | None = None  # None: any

    def matches(self, transport: str | None, host: str, port: int | None) -> bool:
        address = _address(host)
        if address is None or address not in self.network:
            return False
        if self.transport is not None and transport is not None and transport != self.transport:
            return False
        return self.port is None or port is None or port == self.port


class RelayPolicy:
    """The address rules; the decision that needs credentials is the proxy's gate."""

    def __init__(
        self, trusted: Sequence[TrustedPeer] = (), internal: Sequence[IpNetwork] = ()
    ) -> None:
        self.trusted = tuple(trusted)
        self.internal = _ALWAYS_INTERNAL + tuple(internal)

    def trusted_peer(
        self, transport: str | None, host: str, port: int | None
    ) -> TrustedPeer | None:
        for peer in self.trusted:
            if peer.matches(transport, host, port):
                return peer
        return None

    def forbidden_target(self, transport: str | None, host: str, port: int | None) -> bool:
        """An internal address that no trusted rule names (a name, not an address, is
        judged by where it resolves: see `Proxy`)."""
        address = _address(host)
        if address is None:
            return False
        if not any(address in net for net in self.internal):
            return False
        return self.trusted_peer(transport, host, port) is None


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a host names (an IPv4-mapped IPv6 address as its IPv4 one)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
