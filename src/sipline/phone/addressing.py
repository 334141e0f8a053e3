"""Where a user agent is and where its requests go: the address it advertises, its
Contact (the public one once a registrar has told it, RFC 3581; RFC 5626 `ob` over a
connection), the outbound proxy as a pre-existing route set (§8.1.2), and RFC 3263
resolution of the next hop.
"""

from __future__ import annotations

import logging
import socket

from sipline.core.errors import LocalProtocolError
from sipline.core.routing import Destination, Transport, is_ip_literal
from sipline.core.uri import SipUri, Uri, format_host
from sipline.core.views import NameAddr
from sipline.phone.config import UserAgentConfig
from sipline.phone.events import UserAgentError
from sipline.phone.targets import target_uri
from sipline.runtime.endpoint import Endpoint
from sipline.transport import Target
from sipline.transport.resolver import ResolutionError, Resolver

__all__ = ["DEFAULT_PORTS", "Addressing", "advertised_host", "uuid4_urn"]

log = logging.getLogger("sipline.ua")

DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}
_WILDCARDS = ("0.0.0.0", "::", "")


def _source_address(towards: str | None) -> str:
    """The local address the kernel would use to reach `towards` (no packet is sent)."""
    family = socket.AF_INET6 if towards and ":" in towards else socket.AF_INET
    probe = towards or "192.0.2.1"  # TEST-NET-1: only the routing decision matters
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            return str(sock.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def advertised_host(config: UserAgentConfig) -> str:
    """The address our Via, Contact and SDP name before a registrar tells us better."""
    if config.advertise is not None:
        return config.advertise
    if config.listen_host not in _WILDCARDS:
        return config.listen_host
    server = config.server[0] if config.server else None
    # A name would need DNS here (blocking): ask about the default route instead.
    return _source_address(server if server and is_ip_literal(server) else None)


def uuid4_urn(random: bytes) -> str:
    """RFC 4122 §4.4: a version 4 UUID from 16 random bytes, as a URN."""
    b = bytearray(random)
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Addressing:
    """Our addresses and the next hop of each request, for one agent."""

    def __init__(self, config: UserAgentConfig, endpoint: Endpoint) -> None:
        self.config = config
        self.endpoint = endpoint
        self.public: tuple[str, int] | None = None
        self._resolver = Resolver(transports=(Transport(config.transport),), clock=endpoint.clock)

    def learned_public_address(self, host: str, port: int) -> None:
        log.info("behind NAT: reachable at %s:%d", host, port)
        self.public = (host, port)

    def contact(self) -> NameAddr:
        """Our Contact: where requests for us go (the public address once known)."""
        config = self.config
        item = self.endpoint.local_address(config.transport)
        host, port = self.public or (item.advertise, item.port)
        uri = SipUri("sip", config.aor.user, None, host, port)
        if config.reliable:
            uri.params.set("transport", config.transport.lower())
            if config.server is not None:
                uri.params.set("ob", None)  # RFC 5626 §5.4: route back over our flow
        return NameAddr.of(uri)

    def initial_routes(self) -> list[NameAddr]:
        """§8.1.2: the outbound proxy as a pre-existing route set (loose routing)."""
        server = self.config.server
        if server is None:
            return []
        params = f";transport={self.config.transport.lower()}" if self.config.reliable else ""
        return [NameAddr(f"sip:{format_host(server[0])}:{server[1]}{params};lr")]

    def target_uri(self, target: str) -> Uri:
        try:
            return target_uri(target, self.config.aor.host, self.config.emergency_numbers)
        except ValueError as exc:
            raise UserAgentError(str(exc)) from None

    async def server_target(self) -> Target:
        server = self.config.server
        if server is None:
            raise UserAgentError("no server configured")
        host, port = server
        if is_ip_literal(host):
            return Target(self.config.transport, host, port)
        return await self.resolve(SipUri("sip", None, None, host, port))

    async def first_hop(self, uri: Uri) -> Target:
        """Where a request outside any dialog goes: the outbound proxy, else RFC 3263."""
        if self.config.server is not None:
            return await self.server_target()
        return await self.resolve(uri)

    async def resolve(self, uri: Uri) -> Target:
        """RFC 3263 for a URI (IP literals need no DNS)."""
        if not isinstance(uri, SipUri):
            raise UserAgentError(f"cannot route to {uri}")
        host = uri.maddr or uri.host
        transport = uri.transport or ("TLS" if uri.secure else self.config.transport)
        if is_ip_literal(host):
            port = uri.port or DEFAULT_PORTS.get(transport, 5060)
            return self._usable(Target(transport, host.strip("[]"), port))
        try:
            targets = await self._resolver.resolve(
                Destination(
                    host=uri.host,
                    scheme=uri.scheme,
                    port=uri.port,
                    transport=uri.transport,
                    maddr=uri.maddr,
                )
            )
        except ResolutionError as exc:
            raise UserAgentError(f"cannot resolve {host}: {exc}") from None
        first = targets[0]
        return self._usable(Target(str(first.transport), first.host, first.port, first.server_name))

    def _usable(self, target: Target) -> Target:
        """A target over a transport we have: our Via names our listener for it (§18.1.1)."""
        try:
            self.endpoint.local_address(target.transport)
        except LocalProtocolError:
            raise UserAgentError(
                f"{target.host}:{target.port} needs {target.transport}, and this agent uses "
                f"{self.config.transport} (--transport {target.transport.lower()})"
            ) from None
        return target
