"""The UDP listener: one datagram is one message (RFC 3261 §18.3).

This is the hot path, so `datagram_received` hands each datagram straight to the
layer's callback: no task, no copy, one `Source` built per packet.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import cast

from sipline.transport.base import Address, MessageCallback, Source, TransportStats
from sipline.transport.stun import binding_response, is_stun

__all__ = ["UdpProtocol", "bind_udp_socket"]

logger = logging.getLogger("sipline.transport")

_SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux: sk_meminfo, rmem_alloc first


def bind_udp_socket(
    host: str, port: int, buffer_bytes: int, *, reuse_port: bool = False
) -> socket.socket:
    """A non-blocking UDP socket bound to (host, port), with large buffers.

    Big SO_RCVBUF/SO_SNDBUF absorb bursts (the kernel caps them at
    net.core.rmem_max/wmem_max; best effort). With `reuse_port`, several sockets
    (one per worker process) share the address and the kernel spreads datagrams
    over them by a hash of the 4-tuple, so one peer's datagrams reach one socket.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            # Bind IPv6 only: an IPv4 listener is a separate socket, as asyncio does.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
            except OSError:
                logger.debug("could not set UDP buffer option %s", option)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class UdpProtocol(asyncio.DatagramProtocol):
    """Receives datagrams on one socket and answers keep-alives itself."""

    def __init__(
        self,
        on_message: MessageCallback,
        stats: TransportStats,
        on_open: Callable[[UdpProtocol], None] | None = None,
    ) -> None:
        self._on_message = on_message
        self._stats = stats
        self._on_open = on_open
        self.local: Address = ("", 0)
        self.transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        name = transport.get_extra_info("sockname")
        self.local = (name[0], name[1])
        # Before the first datagram: uvloop may deliver one before the endpoint
        # coroutine returns, and its answer needs this socket to go out from.
        if self._on_open is not None:
            self._on_open(self)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        stats = self._stats
        stats.bytes_in += len(data)
        # Every SIP message starts with a letter: anything lower is a keep-alive.
        if not data or data[0] <= 0x20:
            data = self._keepalive(data, addr)
            if not data:
                return
        stats.messages_in += 1
        try:
            self._on_message(data, Source("UDP", (addr[0], addr[1]), self.local))
        except Exception:
            logger.exception("on_message raised for a datagram from %s", addr)

    def _keepalive(self, data: bytes, addr: tuple[str, int]) -> bytes:
        """Answer or drop a keep-alive; return what is left to deliver."""
        if is_stun(data):
            self._stats.keepalives_in += 1
            response = binding_response(data, (addr[0], addr[1]))
            if response is not None and self.transport is not None:
                self.transport.sendto(response, addr)
            return b""
        # RFC 3261 §7.5 lets CRLFs precede a message; CRLFs alone are a keep-alive.
        stripped = data.lstrip(b"\r\n")
        if not stripped:
            self._stats.keepalives_in += 1
        return stripped

    def receive_queue_fill(self) -> float | None:
        """How full this socket's receive queue is, as a share of its buffer (Linux
        SO_MEMINFO: bytes allocated to queued datagrams, then the buffer size); 0 once
        closed, None where the kernel does not tell."""
        if self.transport is None:
            return 0.0
        sock = self.transport.get_extra_info("socket")
        try:
            rmem, rcvbuf = struct.unpack("2I", sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, 8))
        except (OSError, AttributeError, struct.error):
            return None
        return rmem / rcvbuf if rcvbuf else 0.0

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (where the kernel reports them) cannot be tied to one send.
        self._stats.send_errors += 1
        logger.debug("UDP %s: %s", self.local, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
