"""One TCP or TLS connection: framing, keep-alive answers, idle timeout, bounds.

A `Connection` is the asyncio protocol of its socket. It exists before the
socket does on the outbound side, so sends made while connecting are queued on
it and flushed once connected (or each reported through its `on_error`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Protocol, cast

from sipline.core.errors import RemoteProtocolError
from sipline.core.framing import FramingLimits, StreamFramer
from sipline.transport.base import (
    Address,
    ErrorCallback,
    Source,
    TransportError,
    TransportStats,
    report_send_error,
)

__all__ = ["Connection", "ConnectionOwner", "error_response"]

logger = logging.getLogger("sipline.transport")

# RFC 5626 §3.5.1: the answer to a double-CRLF ping.
_PONG = b"\r\n"

ConnectionKey = tuple[str, str, int]


class ConnectionOwner(Protocol):
    """What a connection needs from the layer that owns it."""

    stats: TransportStats
    limits: FramingLimits
    idle_timeout_s: float | None
    message_timeout_s: float | None
    max_write_buffer_bytes: int

    def deliver(self, data: bytes, source: Source) -> None: ...

    def connection_opened(self, connection: Connection) -> bool: ...

    def connection_closed(self, connection: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """A stream connection, inbound (accepted) or outbound (opened by `send`).

    `transport` is "TCP" or "TLS"; `remote` and `local` are (host, port).
    Endpoints pass a received `Source.connection` back to `TransportLayer.send`
    so responses travel over the connection the request came on.
    """

    def __init__(
        self,
        owner: ConnectionOwner,
        transport: str,
        loop: asyncio.AbstractEventLoop,
        *,
        remote: Address = ("", 0),
        outbound: bool = False,
    ) -> None:
        self.transport = transport
        self.remote = remote
        self.local: Address = ("", 0)
        self.outbound = outbound
        # Index keys under which the owning layer finds this connection.
        self.keys: list[ConnectionKey] = []
        self._owner = owner
        self._loop = loop
        self._stream: asyncio.Transport | None = None
        self._framer = StreamFramer(owner.limits)
        # Sends made before the socket exists; None once connected.
        self._pending: list[tuple[bytes, ErrorCallback | None]] | None = []
        self._open = False  # counted by the owner (not refused)
        self._closed = False
        self._broken = False  # framing failed: closing, ignore further input
        self._last_activity = loop.time()
        self._idle_handle: asyncio.TimerHandle | None = None
        self.opened_at = loop.time()
        self.messages = 0  # complete messages received
        # When the message being received began (for an accepted connection: when it
        # was accepted, until its first message), None between messages.
        self._partial_since: float | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None
        self._lost: asyncio.Future[None] = loop.create_future()
        self._source = Source(transport, remote, self.local, self)

    def __repr__(self) -> str:
        direction = "to" if self.outbound else "from"
        return f"<Connection {self.transport} {direction} {self.remote[0]}:{self.remote[1]}>"

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def closing(self) -> bool:
        """Closed, or closing (aborted, the loss not yet reported)."""
        return self._closed or (self._stream is not None and self._stream.is_closing())

    @property
    def is_connected(self) -> bool:
        return self._stream is not None and not self._closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The socket's details (e.g. "peercert", "ssl_object"), as asyncio gives them."""
        if self._stream is None:
            return default
        return self._stream.get_extra_info(name, default)

    # -- sending -------------------------------------------------------------

    def send(self, data: bytes, on_error: ErrorCallback | None = None) -> None:
        """Write a framed message; queue it while connecting."""
        if self._closed:
            report_send_error(TransportError(f"{self!r} is closed"), on_error, self._owner.stats)
            return
        if self._pending is not None:
            self._pending.append((data, on_error))
            return
        self._write(data, on_error)

    def _write(self, data: bytes, on_error: ErrorCallback | None) -> None:
        stream = self._stream
        if stream is None:  # unreachable: only called once connected
            return
        stream.write(self._encode(data))
        stats = self._owner.stats
        stats.messages_out += 1
        stats.bytes_out += len(data)
        self._last_activity = self._loop.time()
        # A peer that stops reading must not make our write buffer grow forever.
        if stream.get_write_buffer_size() > self._owner.max_write_buffer_bytes:
            logger.warning("%r: peer not reading, write buffer over limit; closing", self)
            report_send_error(
                TransportError(f"{self!r}: write buffer over limit"), on_error, self._owner.stats
            )
            stream.abort()

    def _encode(self, data: bytes) -> bytes:
        """The bytes that carry one message: itself on TCP and TLS (a WebSocket frames it)."""
        return data

    def fail_pending(self, error: TransportError) -> None:
        """Report every queued send as failed (connect failed or closed early)."""
        pending, self._pending = self._pending or [], None
        for _data, on_error in pending:
            report_send_error(error, on_error, self._owner.stats)

    def close(self) -> None:
        """Close after the queued writes are flushed (TLS: with a close_notify)."""
        if self._stream is not None:
            self._stream.close()
        elif not self._closed:
            self._mark_closed(TransportError(f"{self!r} closed before connecting"))

    def abort(self) -> None:
        """Close at once, dropping anything unsent."""
        if self._stream is not None:
            self._stream.abort()
        elif not self._closed:
            self._mark_closed(TransportError(f"{self!r} closed before connecting"))

    async def wait_closed(self) -> None:
        await asyncio.shield(self._lost)

    # -- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream protocol always gets a stream transport (uvloop's are not
        # registered as asyncio.Transport subclasses, hence a cast, not a check).
        transport = cast(asyncio.Transport, transport)
        self._stream = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if peer:
            self.remote = (peer[0], peer[1])
        if sock:
            self.local = (sock[0], sock[1])
        self._source = Source(self.transport, self.remote, self.local, self)
        if self._closed or not self._owner.connection_opened(self):
            transport.abort()
            return
        self._open = True
        self._last_activity = self.opened_at = self._loop.time()
        self._arm_idle_timer()
        if not self.outbound:
            # A client connects to send: its first message is due within the deadline too.
            self._partial_since = self.opened_at
            self._arm_deadline()
        pending, self._pending = self._pending or [], None
        for data, on_error in pending:
            if transport.is_closing():
                report_send_error(TransportError(f"{self!r} closed"), on_error, self._owner.stats)
            else:
                self._write(data, on_error)

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return  # closing after a framing error: the rest is noise
        stats = self._owner.stats
        stats.bytes_in += len(data)
        now = self._last_activity = self._loop.time()
        try:
            messages = self._framer.feed(data)
        except RemoteProtocolError as exc:
            self._framing_failed(exc)
            return
        if messages:
            self.messages += len(messages)
        if self._framer.buffered:
            if messages or self._partial_since is None:
                self._partial_since = now  # a new message has begun
            self._arm_deadline()
        else:
            self._partial_since = None
        pings = self._framer.take_pings()
        if pings and self._stream is not None:
            stats.keepalives_in += pings
            self._stream.write(_PONG * pings)
        source = self._source
        for message in messages:
            stats.messages_in += 1
            self._owner.deliver(message, source)

    def eof_received(self) -> bool | None:
        return None  # half-closed by the peer: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._mark_closed(TransportError(f"{self!r} lost: {exc}" if exc else f"{self!r} closed"))

    # -- internals -----------------------------------------------------------

    def _mark_closed(self, error: TransportError) -> None:
        if self._closed:
            return
        self._closed = True
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()
            self._deadline_handle = None
        self.fail_pending(error)
        self._owner.connection_closed(self)
        if not self._lost.done():
            self._lost.set_result(None)

    @property
    def counted(self) -> bool:
        """Whether the owner counted this connection as open (it was not refused)."""
        return self._open

    def _framing_failed(self, exc: RemoteProtocolError) -> None:
        self._broken = True
        self._owner.stats.dropped += 1
        logger.info("%r: %s %s; closing", self, exc.status, exc.reason)
        stream = self._stream
        if stream is None:
            return
        header = self._framer.failed_header
        response = error_response(header, exc.status, exc.reason) if header else None
        if response is not None:
            stream.write(response)
        stream.close()

    @property
    def last_activity(self) -> float:
        return self._last_activity

    def _arm_deadline(self) -> None:
        """The whole message is due `message_timeout_s` after it began: a peer sending
        a byte now and then (slowloris) is not idle, but never finishes either."""
        timeout = self._owner.message_timeout_s
        if timeout is None or self._deadline_handle is not None or self._closed:
            return
        since = self._partial_since
        if since is not None:
            self._deadline_handle = self._loop.call_at(since + timeout, self._check_deadline)

    def _check_deadline(self) -> None:
        self._deadline_handle = None
        timeout = self._owner.message_timeout_s
        since = self._partial_since
        if timeout is None or since is None or self._closed:
            return
        if self._loop.time() - since >= timeout:
            self._owner.stats.message_timeouts += 1
            logger.info("%r: no complete message within %.0f s; closing", self, timeout)
            self.abort()
        else:
            self._arm_deadline()

    def _arm_idle_timer(self) -> None:
        timeout = self._owner.idle_timeout_s
        if timeout is None or self._closed:
            return
        self._idle_handle = self._loop.call_at(self._last_activity + timeout, self._check_idle)

    def _check_idle(self) -> None:
        # Re-armed once per period rather than on every packet: cheap on busy links.
        self._idle_handle = None
        timeout = self._owner.idle_timeout_s
        if timeout is None or self._closed:
            return
        if self._loop.time() - self._last_activity >= timeout:
            logger.debug("%r idle for %.1f s; closing", self, timeout)
            self.close()
        else:
            self._arm_idle_timer()


# Headers a response copies from its request (RFC 3261 §8.2.6.2), long and compact.
_COPIED = re.compile(rb"^(via|v|from|f|to|t|call-id|i|cseq)[ \t]*:", re.IGNORECASE)
_REQUIRED = frozenset({b"via"})  # enough to answer on the connection (RFC 4475 §3.1.2.4)
_COMPACT = {b"v": b"via", b"f": b"from", b"t": b"to", b"i": b"call-id"}


def error_response(header: bytes, status: int, reason: str) -> bytes | None:
    """A minimal error response to a request whose header block framed but whose
    length was wrong, or None when it is a response or has no Via."""
    if header.startswith(b"SIP/"):
        return None
    lines = []
    seen = set()
    for line in header.splitlines():
        match = _COPIED.match(line)
        if match:
            name = match.group(1).lower()
            seen.add(_COMPACT.get(name, name))
            lines.append(line)
    if not seen.issuperset(_REQUIRED):
        return None
    status_line = f"SIP/2.0 {status} {reason}".encode("ascii", "replace")
    return b"\r\n".join([status_line, *lines, b"Content-Length: 0", b"", b""])
