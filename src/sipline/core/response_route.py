"""Where a response goes (RFC 3261 §18.2.2, RFC 3581 rport, RFC 3263 §5), sans-I/O."""

from __future__ import annotations

from dataclasses import dataclass

from sipline.core.errors import LocalProtocolError
from sipline.core.routing import Destination, Transport, default_port, unbracket

__all__ = ["ResponseRoute", "ViaHop", "response_route"]


@dataclass(frozen=True, slots=True)
class ViaHop:
    """The top Via of a request, as the server saw it (after adding received/rport)."""

    transport: str
    host: str
    port: int | None = None
    received: str | None = None
    rport: int | None = None
    maddr: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseRoute:
    """Where a response goes.

    With `reuse_connection`, send on the connection the request came in on while it is
    open (RFC 3261 §18.2.2), and use `destination` only when it is gone; `fallback` is
    for when connecting to `destination` fails too. Both are located with `Locator`:
    an IP is used as is, a name with a port gets A/AAAA, a name without one gets SRV
    for the transport then A/AAAA (RFC 3263 §5).
    """

    transport: Transport
    reuse_connection: bool
    destination: Destination
    fallback: Destination | None = None


def response_route(via: ViaHop) -> ResponseRoute:
    """RFC 3261 §18.2.2 with RFC 3581 (rport) and RFC 3263 §5."""
    try:
        transport = Transport(via.transport.upper())
    except ValueError:
        raise LocalProtocolError(f"unknown Via transport {via.transport!r}") from None
    sent_by = unbracket(via.host)

    def to(host: str, port: int | None, fallback: Destination | None = None) -> ResponseRoute:
        destination = Destination(host=host, port=port, transport=transport.value)
        return ResponseRoute(transport, transport.reliable, destination, fallback)

    if transport.reliable:
        # Existing connection first; if it closed, connect to received at the sent-by
        # port (or the default), and failing that, resolve sent-by (RFC 3263 §5).
        if via.received:
            by_name = Destination(host=sent_by, port=via.port, transport=transport.value)
            return to(unbracket(via.received), via.port or default_port(transport), by_name)
        return to(sent_by, via.port)
    if via.maddr:
        return to(unbracket(via.maddr), via.port or default_port(transport))
    if via.received:
        # RFC 3581 §4: rport carries the source port the request really came from.
        return to(unbracket(via.received), via.rport or via.port or default_port(transport))
    return to(sent_by, via.port)
