"""The sockets a transport layer receives on: a UDP socket or a stream server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from sipline.transport.base import Address
from sipline.transport.udp import UdpProtocol

__all__ = ["BoundSocket", "udp_queue_fill"]


@dataclass(slots=True, eq=False)
class BoundSocket:
    """A socket bound to receive on: a UDP socket, or a TCP/TLS/WS/WSS server
    accepting connections. `local` is the address actually bound (port 0 resolved)."""

    transport: str
    local: Address
    _udp: UdpProtocol | None = field(default=None, repr=False)
    _server: asyncio.Server | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        if self._udp is not None:
            await self._udp.closed
        if self._server is not None:
            await self._server.wait_closed()


def udp_queue_fill(bound_sockets: Iterable[BoundSocket]) -> float:
    """The fullest UDP receive queue, as a share of its socket's buffer (0 where
    the kernel does not tell)."""
    fill = 0.0
    for bound in bound_sockets:
        udp = bound._udp
        if udp is None:
            continue
        share = udp.receive_queue_fill()
        if share is None:
            return 0.0
        fill = max(fill, share)
    return fill
