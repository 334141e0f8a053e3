"""The addresses an endpoint receives on, and which one each header names.

A `LocalAddress` is one bound socket as the endpoint advertises it. `LocalAddresses`
picks the one to name in Contact, Record-Route and the Via of a request we send, and
builds that Via (§8.1.1.7, RFC 3581 rport), moving a request too big for UDP to TCP
(§18.1.1). A worker process names the public listener too, never a port of its own:
a response the kernel gives to another worker is handed over by the branch
(runtime/siblings.py).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Final

from sipline.core.errors import LocalProtocolError
from sipline.core.message import Request
from sipline.core.uri import SipUri, format_host
from sipline.transport import Target, TransportLayer

__all__ = ["UDP_SIZE_LIMIT", "LocalAddress", "LocalAddresses", "open_address"]

# §18.1.1: a request within 200 bytes of a 1500-byte path MTU goes over a congestion
# controlled transport.
UDP_SIZE_LIMIT: Final = 1300


@dataclass(slots=True)
class LocalAddress:
    """A socket the endpoint receives on, as it names it to others."""

    transport: str
    host: str  # the address bound
    port: int
    advertise: str  # the host named in Via/Contact/Record-Route


async def open_address(
    transports: TransportLayer,
    transport: str,
    host: str,
    port: int,
    advertise: str | None = None,
    ssl_context: object = None,
    sock: socket.socket | None = None,
) -> LocalAddress:
    """Open a socket to receive on (port 0 picks a free one) and say how to name it:
    `advertise` or the address bound (a wildcard names loopback). `sock` is a socket
    bound already (by a supervising process). WS and WSS (RFC 7118) follow the layer's
    `ws_policy`; WSS needs `ssl_context` as TLS does."""
    transport = transport.upper()
    if transport == "UDP":
        bound = await transports.listen_udp(host, port, sock=sock)
    elif transport == "TCP":
        bound = await transports.listen_tcp(host, port, sock=sock)
    elif transport == "TLS":
        if not isinstance(ssl_context, ssl.SSLContext):
            raise LocalProtocolError("a TLS listener needs an ssl.SSLContext")
        bound = await transports.listen_tls(host, port, ssl_context, sock=sock)
    elif transport == "WS":
        bound = await transports.listen_ws(host, port, sock=sock)
    elif transport == "WSS":
        if not isinstance(ssl_context, ssl.SSLContext):
            raise LocalProtocolError("a WSS listener needs an ssl.SSLContext")
        bound = await transports.listen_ws(host, port, ssl_context, sock=sock)
    else:
        raise LocalProtocolError(f"unknown transport {transport}")
    bound_host, bound_port = bound.local[0], bound.local[1]
    named = advertise or bound_host
    if named in ("0.0.0.0", "::"):
        named = "127.0.0.1" if named == "0.0.0.0" else "::1"
    return LocalAddress(transport, bound_host, bound_port, named)


class LocalAddresses:
    """The endpoint's addresses, in the order they were bound."""

    def __init__(self) -> None:
        self.items: list[LocalAddress] = []

    def add(self, item: LocalAddress) -> None:
        self.items.append(item)

    def pick(self, transport: str | None = None, family: int | None = None) -> LocalAddress:
        """The address to name in our Contact/Record-Route/Via for `transport` (and IP
        family)."""
        for item in self.items:
            if transport is not None and item.transport != transport.upper():
                continue
            if family is not None and (":" in item.host) != (family == 6):
                continue
            return item
        if family is not None:
            return self.pick(transport)
        if transport is not None:
            raise LocalProtocolError(f"no {transport} listener")
        raise LocalProtocolError("no listener")

    def via_value(self, target: Target, branch: str) -> str:
        """Our Via for a request to `target` (§8.1.1.7), asking for rport (RFC 3581)."""
        family = 6 if ":" in target.host else 4
        item = self.pick(target.transport, family)
        return f"SIP/2.0/{target.transport} {format_host(item.advertise)}:{item.port};branch={branch};rport"

    def add_via(self, request: Request, target: Target, branch: str) -> Target:
        """Put our Via on top of `request` for `target`; returns where to send it:
        over TCP instead of UDP when the request is too big for UDP and we can
        (§18.1.1)."""
        request.headers.add("Via", self.via_value(target, branch), first=True)
        if target.transport == "UDP" and len(request.to_bytes()) > UDP_SIZE_LIMIT:
            tcp = self._stream_fallback(target)
            if tcp is not None:
                request.headers.pop_first_value("Via")
                request.headers.add("Via", self.via_value(tcp, branch), first=True)
                return tcp
        return target

    def _stream_fallback(self, target: Target) -> Target | None:
        """§18.1.1: the TCP equivalent of a UDP target, if we can send over TCP."""
        try:
            self.pick("TCP")
        except LocalProtocolError:
            return None
        return Target("TCP", target.host, target.port, target.server_name)

    def local_uri(self, transport: str = "UDP", user: str | None = None) -> SipUri:
        """A SIP URI naming this endpoint for `transport` (sips: for TLS)."""
        item = self.pick(transport)
        uri = SipUri("sips" if transport.upper() == "TLS" else "sip", user, None, item.advertise)
        uri.port = item.port
        if transport.upper() == "TCP":
            uri.params.set("transport", "tcp")
        elif transport.upper() in ("WS", "WSS"):
            uri.params.set("transport", "ws")  # RFC 7118 §5.2: "ws" over WSS too
        return uri
