"""The transport layer: bound sockets, connections, and one `send` for all of them.

RFC 3261 §18 in asyncio. Received messages go to one callback, `on_message(data,
source)`; nothing here parses SIP beyond stream framing. Stream connections are
indexed by (transport, host, port) so a request reuses an open connection to its
target, a response goes back over the connection its request came on (§18.2.2),
and an alias added from a peer's Via sent-by makes the peer's own connection
reusable for requests to it (RFC 5923 §5). Failures never escape a background
task: they reach the `on_error` callback of the send that suffered them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Final

from sipline.core.framing import FramingLimits
from sipline.transport.base import (
    ACCEPT_ONLY,
    FLOW_FAILED,
    STREAM_TRANSPORTS,
    Address,
    ErrorCallback,
    FlowRelay,
    MessageCallback,
    Source,
    StreamLink,
    Target,
    TransportError,
    TransportStats,
    ip_version,
    normalize_host,
    report_send_error,
)
from sipline.transport.bound import BoundSocket, udp_queue_fill
from sipline.transport.security_log import security_event
from sipline.transport.stream import Connection, ConnectionKey
from sipline.transport.udp import UdpProtocol, bind_udp_socket
from sipline.transport.websocket import WsConnection, WsPolicy

__all__ = ["BoundSocket", "TransportLayer"]

logger = logging.getLogger("sipline.transport")

DEFAULT_IDLE_TIMEOUT_S: Final = 300.0
DEFAULT_MESSAGE_TIMEOUT_S: Final = 10.0
DEFAULT_MAX_CONNECTIONS: Final = 4096
_CLOSE_GRACE_S: Final = 1.0


class TransportLayer:
    """Owns every socket of an endpoint: UDP, TCP and TLS, over IPv4 and IPv6.

    `tls_client_context` verifies servers we connect to (default: the system's
    trust store with hostname checks). `idle_timeout_s` closes connections that
    carried nothing for that long (None: never); `message_timeout_s` those where a
    message began (or, accepted, the first one was due) and was not complete that
    long after. At `max_connections` a new inbound connection takes the place of the
    oldest one that never completed a message, else of the least active one of the
    source holding most connections (so clients still get in while attackers hold
    the limit), else it is refused; new outbound sends fail. One source address holds
    at most `max_connections_per_source` inbound connections (None: no cap) unless
    `exempt_source` says it is trusted; `refuse_source` refuses a source outright.
    """

    def __init__(
        self,
        on_message: MessageCallback,
        *,
        limits: FramingLimits | None = None,
        idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S,
        message_timeout_s: float | None = DEFAULT_MESSAGE_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_connections_per_source: int | None = None,
        connect_timeout_s: float = 10.0,
        tls_client_context: ssl.SSLContext | None = None,
        socket_buffer_bytes: int = 4 * 1024 * 1024,
        max_write_buffer_bytes: int = 1024 * 1024,
    ) -> None:
        self.on_message = on_message
        self.limits = limits if limits is not None else FramingLimits()
        self.idle_timeout_s = idle_timeout_s
        self.message_timeout_s = message_timeout_s
        self.max_connections = max_connections
        self.max_connections_per_source = max_connections_per_source
        self.refuse_source: Callable[[str], bool] | None = None
        self.siblings: FlowRelay | None = None  # the other workers (transport/channel.py)
        self.exempt_source: Callable[[str], bool] | None = None
        self.ws_policy = WsPolicy()  # allowed origins and keep-alive of WebSockets
        self._per_source: dict[str, int] = {}  # inbound connections by source address
        self._refusals_logged: dict[str, float] = {}
        self.connect_timeout_s = connect_timeout_s
        self.max_write_buffer_bytes = max_write_buffer_bytes
        self.stats = TransportStats()
        self._tls_client_context = tls_client_context
        self._socket_buffer_bytes = socket_buffer_bytes
        self._bound: list[BoundSocket] = []
        self._udp_v4: UdpProtocol | None = None  # the first per family; all by address:
        self._udp_v6: UdpProtocol | None = None
        self._udp_by_local: dict[Address, UdpProtocol] = {}
        self._by_key: dict[ConnectionKey, Connection] = {}
        self._connections: set[Connection] = set()
        self._connecting: set[asyncio.Task[None]] = set()
        self._limit_logged = False
        self._closed = False

    @property
    def bound_sockets(self) -> tuple[BoundSocket, ...]:
        return tuple(self._bound)

    def udp_queue_fill(self) -> float:
        """The fullest UDP receive queue, as a share of its socket's buffer (0 where
        the kernel does not tell)."""
        return udp_queue_fill(self._bound)

    @property
    def connections(self) -> frozenset[Connection]:
        """Connections open or being opened."""
        return frozenset(self._connections)

    # -- listening -------------------------------------------------------------

    async def listen_udp(
        self, host: str, port: int = 5060, *, sock: socket.socket | None = None
    ) -> BoundSocket:
        """Listen for UDP on (host, port), or on `sock`, a UDP socket bound already
        (one a supervising process prepared). Requests sent without a `local`
        address go from the first UDP socket of their address family."""
        loop = asyncio.get_running_loop()
        host = normalize_host(host)

        def opened(protocol: UdpProtocol) -> None:
            if ":" in host:
                self._udp_v6 = self._udp_v6 or protocol
            else:
                self._udp_v4 = self._udp_v4 or protocol
            self._udp_by_local[protocol.local] = protocol

        try:
            if sock is None:
                sock = bind_udp_socket(host, port, self._socket_buffer_bytes)
            else:
                sock.setblocking(False)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: UdpProtocol(self.deliver, self.stats, on_open=opened), sock=sock
            )
        except OSError as exc:
            raise TransportError(f"cannot listen on UDP {host}:{port}: {exc}") from exc
        bound = BoundSocket("UDP", protocol.local, _udp=protocol)
        self._bound.append(bound)
        return bound

    async def listen_tcp(
        self, host: str, port: int = 5060, *, sock: socket.socket | None = None
    ) -> BoundSocket:
        """Listen for TCP on (host, port), or on `sock`, a bound TCP socket."""
        return await self._listen_stream("TCP", host, port, None, sock)

    async def listen_tls(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        *,
        sock: socket.socket | None = None,
    ) -> BoundSocket:
        """Listen for TLS (RFC 3261 §26.2); `ssl_context` from `tls.server_context`."""
        return await self._listen_stream("TLS", host, port, ssl_context, sock)

    async def listen_ws(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        *,
        sock: socket.socket | None = None,
    ) -> BoundSocket:
        """Listen for SIP over WebSocket (RFC 7118): WSS with `ssl_context`, else WS;
        connections follow `ws_policy` as it is when they are accepted."""
        kind = "WS" if ssl_context is None else "WSS"
        return await self._listen_stream(kind, host, port, ssl_context, sock, websocket=True)

    async def _listen_stream(
        self,
        transport: str,
        host: str,
        port: int,
        context: ssl.SSLContext | None,
        sock: socket.socket | None,
        *,
        websocket: bool = False,
    ) -> BoundSocket:
        loop = asyncio.get_running_loop()
        host = normalize_host(host)

        def accept() -> Connection:
            if websocket:
                return WsConnection(self, transport, loop, self.ws_policy)
            return Connection(self, transport, loop)

        handshake_s = self.connect_timeout_s if context else None
        try:
            if sock is not None:
                sock.setblocking(False)
                server = await loop.create_server(
                    accept, sock=sock, ssl=context, ssl_handshake_timeout=handshake_s, backlog=1024
                )
            else:
                server = await loop.create_server(
                    accept, host, port, ssl=context, ssl_handshake_timeout=handshake_s, backlog=1024
                )
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot listen on {transport} {host}:{port}: {exc}") from exc
        name = server.sockets[0].getsockname()
        bound = BoundSocket(transport, (name[0], name[1]), _server=server)
        self._bound.append(bound)
        return bound

    # -- sending ---------------------------------------------------------------

    def send(
        self,
        data: bytes,
        target: Target,
        *,
        connection: StreamLink | None = None,
        local: Address | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        """Send one message; never raises for network failures, never blocks.

        UDP is sent at once, from the socket bound at `local` if given, else the
        first one of the target's address family. On streams, `connection` (the one
        a request came on) is used while open; else an open connection to the target,
        the worker holding it (`target.worker`), or a new one opened in the background.
        """
        if self._closed:
            error = TransportError("transport layer closed", target)
            report_send_error(error, on_error, self.stats)
            return
        kind = target.transport.upper()
        if kind == "UDP":
            self._send_udp(data, target, local, on_error)
            return
        if kind not in STREAM_TRANSPORTS:
            error = TransportError(f"unknown transport {kind}", target)
            report_send_error(error, on_error, self.stats)
            return
        if connection is None or connection.is_closed:
            connection = self.connection_for(target)
        if connection is None and target.worker is not None:
            # A flow: its worker sends; gone, it is not dialled (RFC 5626 §5.3: 430).
            if self.siblings is None or not self.siblings.forward(data, target, on_error):
                report_send_error(TransportError(FLOW_FAILED, target), on_error, self.stats)
            return
        if connection is None and kind in ACCEPT_ONLY:
            error = TransportError("no open WebSocket connection to it", target)
            report_send_error(error, on_error, self.stats)
            return
        if connection is None:
            connection = self._connect(kind, target, on_error)
            if connection is None:
                return
        connection.send(data, on_error)

    def connection_for(self, target: Target) -> Connection | None:
        """The open (or opening) connection indexed under the target, if any."""
        key = (target.transport.upper(), normalize_host(target.host), target.port)
        return self._by_key.get(key)

    def add_alias(self, connection: Connection, host: str, port: int) -> None:
        """Index `connection` under (host, port) too, e.g. a peer's Via sent-by
        (RFC 5923 §5), so requests to that address reuse it. For TLS the caller
        checks the certificate covers the name first (RFC 5923 §5.2)."""
        if connection.is_closed:
            return
        key = (connection.transport, normalize_host(host), port)
        if key not in connection.keys:
            connection.keys.append(key)
        self._by_key[key] = connection

    def _send_udp(
        self, data: bytes, target: Target, local: Address | None, on_error: ErrorCallback | None
    ) -> None:
        host = normalize_host(target.host)
        version = ip_version(host)
        if version is None:
            # A name would make sendto() resolve it, blocking the loop: resolve first.
            error = TransportError("UDP target is not an IP address", target)
            report_send_error(error, on_error, self.stats)
            return
        protocol = self._udp_by_local.get(local) if local is not None else None
        if protocol is None:
            protocol = self._udp_v6 if version == 6 else self._udp_v4
        udp = protocol.transport if protocol is not None else None
        if udp is None or udp.is_closing():
            error = TransportError("no UDP socket for this address family", target)
            report_send_error(error, on_error, self.stats)
            return
        try:
            udp.sendto(data, (host, target.port))
        except (OSError, ValueError, TypeError) as exc:
            error = TransportError(f"UDP send failed: {exc}", target)
            report_send_error(error, on_error, self.stats)
            return
        self.stats.messages_out += 1
        self.stats.bytes_out += len(data)

    def _connect(
        self, kind: str, target: Target, on_error: ErrorCallback | None
    ) -> Connection | None:
        if len(self._connections) >= self.max_connections:
            self._log_limit()
            self.stats.connections_refused += 1
            report_send_error(TransportError("too many connections", target), on_error, self.stats)
            return None
        context: ssl.SSLContext | None = None
        if kind == "TLS":
            if self._tls_client_context is None:
                self._tls_client_context = ssl.create_default_context()
            context = self._tls_client_context
        loop = asyncio.get_running_loop()
        host = normalize_host(target.host)
        connection = Connection(self, kind, loop, remote=(host, target.port), outbound=True)
        self._connections.add(connection)
        self.add_alias(connection, host, target.port)
        task = loop.create_task(self._open(connection, target, context))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)
        return connection

    async def _open(
        self, connection: Connection, target: Target, context: ssl.SSLContext | None
    ) -> None:
        loop = asyncio.get_running_loop()
        host, port = connection.remote
        server_name = (target.server_name or host) if context is not None else None
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                await loop.create_connection(
                    lambda: connection,
                    host,
                    port,
                    ssl=context,
                    server_hostname=server_name,
                )
        except asyncio.CancelledError:
            connection.abort()
            raise
        except (OSError, ssl.SSLError, TimeoutError, ValueError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or repr(exc)
            error = TransportError(f"cannot connect: {reason}", target)
            error.__cause__ = exc
            logger.debug("%s", error)
            connection.fail_pending(error)
            connection.abort()  # unindexes it through connection_closed

    def _log_limit(self) -> None:
        if not self._limit_logged:
            self._limit_logged = True
            logger.warning("connection limit (%d) reached; refusing more", self.max_connections)

    # -- ConnectionOwner -------------------------------------------------------

    def deliver(self, data: bytes, source: Source) -> None:
        try:
            self.on_message(data, source)
        except Exception:
            logger.exception("on_message raised for a message from %s", source.remote)

    def connection_opened(self, connection: Connection) -> bool:
        if self._closed:
            return False
        if not connection.outbound:
            host, port = connection.remote
            host = normalize_host(host)
            why = self._refusal(host)
            if why is not None:
                self.stats.connections_refused += 1
                self._log_refusal(connection, why)
                return False
            if len(self._connections) >= self.max_connections and not self._evict():
                self._log_limit()
                self.stats.connections_refused += 1
                return False
            self._connections.add(connection)
            self._per_source[host] = self._per_source.get(host, 0) + 1
            self.add_alias(connection, host, port)
        self.stats.connections_open += 1
        self.stats.connections_total += 1
        return True

    def connection_closed(self, connection: Connection) -> None:
        if connection not in self._connections:
            return
        self._connections.discard(connection)
        if connection.counted:
            self.stats.connections_open -= 1
        if not connection.outbound:
            host = normalize_host(connection.remote[0])
            left = self._per_source.get(host, 0) - 1
            if left > 0:
                self._per_source[host] = left
            else:
                self._per_source.pop(host, None)
        for key in connection.keys:
            if self._by_key.get(key) is connection:
                del self._by_key[key]
        if len(self._connections) < self.max_connections:
            self._limit_logged = False

    def _refusal(self, host: str) -> str | None:
        """Why a new inbound connection from `host` is refused, if it is."""
        if self.refuse_source is not None and self.refuse_source(host):
            return "source banned"
        cap = self.max_connections_per_source
        over = cap is not None and self._per_source.get(host, 0) >= cap
        if over and (self.exempt_source is None or not self.exempt_source(host)):
            return f"over {cap} connections from this address"
        return None

    def _evict(self) -> bool:
        """At the limit: close the inbound connection that never completed a message and
        is the oldest such, else the least recently active one of the source holding
        the most connections (when it holds more than one). True if one was closed."""
        inbound = [c for c in self._connections if not c.outbound and not c.closing]
        never = [c for c in inbound if c.messages == 0]
        if never:
            victim = min(never, key=lambda c: c.opened_at)
        else:
            if not self._per_source:
                return False
            host = max(self._per_source, key=self._per_source.__getitem__)
            if self._per_source[host] <= 1:
                return False
            mine = [c for c in inbound if normalize_host(c.remote[0]) == host]
            if not mine:
                return False
            victim = min(mine, key=lambda c: c.last_activity)
        self.stats.connections_evicted += 1
        logger.info("connection limit: closing %r to make room", victim)
        victim.abort()  # unindexed at connection_lost, on the next turn of the loop
        return True

    def _log_refusal(self, connection: Connection, why: str) -> None:
        """One security-log line per refused source and second at most."""
        host, port = connection.remote
        now = asyncio.get_running_loop().time()
        logged = self._refusals_logged
        if now - logged.get(host, -2.0) < 1.0:
            return
        if len(logged) > 10_000:
            logged.clear()
        logged[host] = now
        security_event("conn-limit", (host, port), None, None, why)

    # -- shutdown --------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening, close every connection (flushing what is queued), and
        wait for the sockets to be released; stragglers are aborted."""
        if self._closed:
            return
        self._closed = True
        if self.siblings is not None:
            self.siblings.close()
        for bound in self._bound:
            bound.close()
        for task in list(self._connecting):
            task.cancel()
        connections = list(self._connections)
        for connection in connections:
            connection.close()
        waits = [c.wait_closed() for c in connections] + [
            bound.wait_closed() for bound in self._bound
        ]
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)
        try:
            async with asyncio.timeout(_CLOSE_GRACE_S):
                await asyncio.gather(*waits)
        except TimeoutError:
            for connection in connections:
                connection.abort()
            await asyncio.gather(*(c.wait_closed() for c in connections))
        self._bound.clear()
        self._udp_v4 = self._udp_v6 = None
        self._udp_by_local.clear()
