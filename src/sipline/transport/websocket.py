"""SIP over WebSocket (RFC 7118): one accepted WS or WSS connection.

A `WsConnection` is a stream `Connection` (transport/stream.py) whose bytes are
WebSocket frames: the layer indexes, limits, times out and evicts it like a TCP or
TLS connection, under the same flow identity (transport, remote host, port). Only
the framing differs: the opening handshake (RFC 6455 §4.2) must offer the `sip`
subprotocol (RFC 7118 §4.1) from an allowed Origin (RFC 6455 §10.2), then each
WebSocket message carries exactly one SIP message (RFC 7118 §5), so no SIP stream
framing is needed; a message of CRLFs alone is an RFC 5626 §3.5.1 ping.

wsproto does the RFC 6455 work (handshake, masking, fragmentation, ping and close):
it is sans-I/O, so it sits inside the same asyncio protocol as TCP and TLS and the
connection keeps the layer's limits, counters and deadlines, where aiohttp's server
would have made each browser a request handler outside the transport layer. WS
connections are never opened from here: a browser is reached only over the
connection it opened (its Contact names a `.invalid` host, RFC 7118 §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalError
from wsproto.utilities import RemoteProtocolError as WsProtocolError

from sipline.transport.base import ErrorCallback, TransportError, report_send_error
from sipline.transport.stream import Connection, ConnectionOwner

__all__ = ["SUBPROTOCOL", "WsConnection", "WsPolicy", "origin_allowed"]

logger = logging.getLogger("sipline.transport")

SUBPROTOCOL: Final = "sip"  # RFC 7118 §4.1 (registered with IANA, RFC 6455 §11.5)
_PONG: Final = b"\r\n"  # RFC 5626 §3.5.1
_MESSAGE_TOO_BIG: Final = 1009  # RFC 6455 §7.4.1


@dataclass(frozen=True, slots=True)
class WsPolicy:
    """Who may open a WebSocket (RFC 6455 §10.2): a browser whose page came from the
    host it dialled (its Host header), whatever scheme or port; or from a host that
    `trusted_host` accepts, or a subdomain of one (the server passes its domains);
    or from one of `origins`, exact origins ("https://phone.example") or "*" for
    any. A client that sends no Origin is not a browser (no other site's page can
    make it connect) and is let in."""

    origins: tuple[str, ...] = ()
    trusted_host: Callable[[str], bool] | None = None
    # A browser sends no keep-alive of its own, and a reverse proxy closes a silent
    # WebSocket (nginx after 60 s): ping after this long without hearing the browser,
    # and close when the ping is not answered within as long again.
    ping_interval_s: float = 25.0

    def allows(self, origin: str | None, host: str) -> bool:
        return origin_allowed(origin, host, self.origins, self.trusted_host)


def origin_allowed(
    origin: str | None,
    host: str,
    allowed: Sequence[str] = (),
    trusted_host: Callable[[str], bool] | None = None,
) -> bool:
    """RFC 6455 §10.2: whether a handshake from `origin` to `host` is accepted."""
    if origin is None:
        return True
    origin = origin.strip().lower().rstrip("/")
    if "*" in allowed or origin in (a.lower().rstrip("/") for a in allowed):
        return True
    if origin == "null":
        return False  # a sandboxed frame or a file: page: no host to compare
    try:
        origin_host = urlsplit(origin).hostname
        dialled = urlsplit(f"//{host}").hostname
    except ValueError:
        return False
    if origin_host is None:
        return False
    if origin_host == dialled:
        return True
    if trusted_host is None:
        return False
    labels = origin_host.split(".")
    return any(trusted_host(".".join(labels[i:])) for i in range(len(labels) - 1))


class WsConnection(Connection):
    """An inbound WebSocket connection ("WS", or "WSS" over TLS) carrying SIP."""

    def __init__(
        self,
        owner: ConnectionOwner,
        transport: str,
        loop: asyncio.AbstractEventLoop,
        policy: WsPolicy,
    ) -> None:
        super().__init__(owner, transport, loop)
        self._policy = policy
        self._ws = WSConnection(ConnectionType.SERVER)
        self._open_ws = False  # handshake accepted
        self._parts: list[bytes | bytearray | str] = []  # fragments of the message being received
        self._part_bytes = 0
        self._last_received = loop.time()

    def __repr__(self) -> str:
        return f"<WsConnection {self.transport} from {self.remote[0]}:{self.remote[1]}>"

    @property
    def handshake_done(self) -> bool:
        return self._open_ws

    # -- sending ---------------------------------------------------------------

    def send(self, data: bytes, on_error: ErrorCallback | None = None) -> None:
        if not self._open_ws and not self.is_closed:
            error = TransportError(f"{self!r}: WebSocket handshake not done")
            report_send_error(error, on_error, self._owner.stats)
            return
        super().send(data, on_error)

    def _encode(self, data: bytes) -> bytes:
        """RFC 7118 §5.1: text frames for UTF-8 messages, binary frames otherwise."""
        try:
            return self._ws.send(Message(data=data.decode("utf-8")))
        except UnicodeDecodeError:
            return self._ws.send(Message(data=data))

    # -- receiving -------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._broken:
            return
        stats = self._owner.stats
        stats.bytes_in += len(data)
        self._last_activity = self._last_received = self._loop.time()
        try:
            self._ws.receive_data(data)
            for event in self._ws.events():
                if self._broken:
                    return
                self._handle(event)
        except WsProtocolError as exc:
            self._reject(exc.event_hint, str(exc))
        if not self._broken and self._open_ws and not self._parts:
            self._partial_since = None

    def _handle(self, event: Event) -> None:
        if isinstance(event, Request):
            self._handshake(event)
        elif isinstance(event, TextMessage | BytesMessage):
            self._fragment(event)
        elif isinstance(event, Ping):
            self._raw_write(self._ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            self._broken = True
            self._raw_write(self._ws.send(event.response()))
            if self._stream is not None:
                self._stream.close()

    def _handshake(self, request: Request) -> None:
        headers = {name.lower(): value for name, value in request.extra_headers}
        raw_origin = headers.get(b"origin")
        origin = raw_origin.decode("latin-1") if raw_origin is not None else None
        if SUBPROTOCOL not in request.subprotocols:
            self._reject(RejectConnection(status_code=400), "no 'sip' subprotocol offered")
            return
        if not self._policy.allows(origin, request.host):
            self._reject(RejectConnection(status_code=403), f"origin {origin!r} not allowed")
            return
        self._raw_write(self._ws.send(AcceptConnection(subprotocol=SUBPROTOCOL)))
        self._open_ws = True

    def _fragment(self, event: TextMessage | BytesMessage) -> None:
        part = event.data
        self._part_bytes += len(part)
        limits = self._owner.limits
        if self._part_bytes > limits.max_header_bytes + limits.max_body_bytes:
            self._close_ws(_MESSAGE_TOO_BIG, "SIP message too big")
            return
        if self._partial_since is None:
            self._partial_since = self._loop.time()
            self._arm_deadline()
        self._parts.append(part)
        if not event.message_finished:
            return
        parts, self._parts, self._part_bytes = self._parts, [], 0
        message = b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in parts)
        stats = self._owner.stats
        if not message.strip(b"\r\n"):
            stats.keepalives_in += 1
            self._write(_PONG, None)
            return
        self.messages += 1
        stats.messages_in += 1
        self._owner.deliver(message, self._source)

    # -- keep-alive ------------------------------------------------------------

    def _arm_idle_timer(self) -> None:
        if not self.is_closed:
            due = self._last_received + self._policy.ping_interval_s
            self._idle_handle = self._loop.call_at(due, self._check_idle)

    def _check_idle(self) -> None:
        """Ping a silent browser (RFC 6455 §5.5.2); close one that stays silent."""
        self._idle_handle = None
        if self.is_closed:
            return
        interval = self._policy.ping_interval_s
        silent = self._loop.time() - self._last_received
        if silent >= 2 * interval:
            logger.debug("%r: no answer to a ping in %.0f s; closing", self, interval)
            self.abort()
            return
        if silent >= interval:
            if self._open_ws:
                self._raw_write(self._ws.send(Ping()))
            due = self._last_received + 2 * interval
        else:
            due = self._last_received + interval
        self._idle_handle = self._loop.call_at(due, self._check_idle)

    # -- failing -------------------------------------------------------------

    def _reject(self, hint: Event | None, why: str) -> None:
        """Refuse a bad handshake with an HTTP error, or close an open WebSocket."""
        self._broken = True
        self._owner.stats.dropped += 1
        logger.info("%r: %s; closing", self, why)
        if not self._open_ws:
            event = hint if isinstance(hint, RejectConnection) else RejectConnection()
            with contextlib.suppress(WsProtocolError, WsLocalError):  # nothing to answer
                self._raw_write(self._ws.send(event))
        if self._stream is not None:
            self._stream.close()

    def _close_ws(self, code: int, reason: str) -> None:
        self._broken = True
        self._owner.stats.dropped += 1
        logger.info("%r: %s; closing", self, reason)
        self._raw_write(self._ws.send(CloseConnection(code=code, reason=reason)))
        if self._stream is not None:
            self._stream.close()

    def _raw_write(self, data: bytes) -> None:
        if self._stream is not None and data and not self._stream.is_closing():
            self._stream.write(data)
