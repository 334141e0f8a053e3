"""The two UDP sockets of one RTP session: RTP on an even port, RTCP on the next
(RFC 3550 §11), bound together and read by asyncio datagram endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import cast

from sipline.core.clock import Entropy
from sipline.media.stream import Address

__all__ = ["DEFAULT_PORT_RANGE", "RtpSockets", "bind_pair"]

log = logging.getLogger("sipline.media")

DEFAULT_PORT_RANGE = (16384, 32766)
_RECV_BUFFER = 1 << 18
# Pairs tried from a random start in the range before giving up.
_BIND_ATTEMPTS = 200

Deliver = Callable[[bytes, Address], None]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._deliver(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("media socket: %s", exc)  # ICMP port unreachable while the peer starts

    def sendto(self, data: bytes, addr: Address) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class RtpSockets:
    """An open RTP/RTCP socket pair: `send_rtp`, `send_rtcp`, `close`."""

    def __init__(self, rtp: _Datagrams, rtcp: _Datagrams, local: Address) -> None:
        self._rtp = rtp
        self._rtcp = rtcp
        self.local = local

    @classmethod
    async def open(
        cls,
        loop: asyncio.AbstractEventLoop,
        host: str,
        *,
        on_rtp: Deliver,
        on_rtcp: Deliver,
        entropy: Entropy,
        port: int = 0,
        port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
    ) -> RtpSockets:
        """Bind on `host`: at `port` and `port + 1`, or on a free even/odd pair drawn
        from `port_range` (OSError when there is none)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        pair: tuple[socket.socket, socket.socket] | None = None
        if port:
            pair = bind_pair(family, host, port)
        else:
            low, high = port_range
            span = max(1, (high - low) // 2)
            start = int.from_bytes(entropy.random_bytes(4), "big") % span
            for i in range(min(span, _BIND_ATTEMPTS)):
                candidate = low + 2 * ((start + i) % span)
                with contextlib.suppress(OSError):
                    pair = bind_pair(family, host, candidate)
                    break
        if pair is None:
            raise OSError(f"no free RTP port pair on {host}")
        rtp_sock, rtcp_sock = pair
        _, rtp = await loop.create_datagram_endpoint(lambda: _Datagrams(on_rtp), sock=rtp_sock)
        _, rtcp = await loop.create_datagram_endpoint(lambda: _Datagrams(on_rtcp), sock=rtcp_sock)
        name = rtp_sock.getsockname()
        return cls(rtp, rtcp, (str(name[0]), int(name[1])))

    def send_rtp(self, data: bytes, addr: Address) -> None:
        self._rtp.sendto(data, addr)

    def send_rtcp(self, data: bytes, addr: Address) -> None:
        self._rtcp.sendto(data, addr)

    def close(self) -> None:
        self._rtp.close()
        self._rtcp.close()


def bind_pair(family: int, host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """RTP at `port`, RTCP at `port + 1` (RFC 3550 §11), or OSError."""
    socks: list[socket.socket] = []
    try:
        for p in (port, port + 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            socks.append(sock)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECV_BUFFER)
            sock.bind((host, p))
            sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks[0], socks[1]
