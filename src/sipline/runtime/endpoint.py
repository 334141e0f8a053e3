"""The endpoint: where core events become callbacks and futures (ARCHITECTURE.md).

It owns the transaction layer, the transports and one timer handle. Every entry
point (a datagram, a timer, a command from an application) calls into the core and
then `_pump`s: hand events up, send what the core queued, re-arm the timer to the
core's next deadline. Applications see `ServerTransaction`s (answer a request) and
`ClientTransaction`s (await a final response).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import inspect
import logging
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sipline.core.builders import build_response, new_branch, new_call_id, new_tag
from sipline.core.clock import Clock, Entropy
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import DEFAULT_LIMITS, Limits, Message, Request, Response, parse_message
from sipline.core.reject import minimal_response
from sipline.core.timers import TimerConfig
from sipline.core.transaction.events import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)
from sipline.core.transaction.layer import TransactionLayer
from sipline.core.transaction.matching import ClientKey, ServerKey, server_key
from sipline.core.uri import SipUri, format_host
from sipline.runtime.flood import FloodConfig, FloodGuard
from sipline.runtime.overload import OverloadConfig, OverloadGuard
from sipline.runtime.system import SystemClock, SystemEntropy
from sipline.runtime.timers import Timer, Timers
from sipline.transport import Source, Target, TransportError, TransportLayer
from sipline.transport.base import normalize_host

__all__ = [
    "ClientTransaction",
    "Endpoint",
    "EndpointStats",
    "Inbound",
    "ServerTransaction",
]

log = logging.getLogger("sipline.endpoint")

# §18.1.1: a request within 200 bytes of a 1500-byte path MTU goes over a congestion
# controlled transport.
UDP_SIZE_LIMIT = 1300

_DEFAULT_PORT = {"UDP": 5060, "TCP": 5060, "TLS": 5061}
_SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux: sk_meminfo, rmem_alloc first


class Inbound:
    """Where a request came from and where its responses go (§18.2.2, RFC 3581)."""

    __slots__ = ("reply", "source")

    def __init__(self, source: Source, reply: Target) -> None:
        self.source = source
        self.reply = reply

    @property
    def transport(self) -> str:
        return self.source.transport

    @property
    def remote(self) -> tuple[str, int]:
        return self.source.remote


@dataclass(slots=True)
class EndpointStats:
    requests_in: int = 0
    responses_in: int = 0
    malformed_requests: int = 0
    malformed_responses: int = 0
    stateless_rejections: int = 0
    stateless_answers: int = 0
    handler_errors: int = 0
    overload_rejections: int = 0  # new requests answered 503 + Retry-After (§21.5.4)
    shed_acks: int = 0  # ACKs for those 503s, absorbed here


RequestHandler = Callable[["ServerTransaction"], Awaitable[None] | None]
StatelessHandler = Callable[[Request, "Inbound"], Response | None]
CancelHandler = Callable[["ServerTransaction", "ServerTransaction | None"], None]
AckHandler = Callable[[Request, Inbound], None]
StrayHandler = Callable[[Response, Source], None]
Address = tuple[str, int]
MessageTap = Callable[[bool, bytes, str, Address | None, Address], None]


class ServerTransaction:
    """A request to answer. `respond` builds the §8.2.6 response; `send` sends one."""

    __slots__ = (
        "_endpoint",
        "_to_tag",
        "cancel_request",
        "cancelled",
        "inbound",
        "key",
        "on_cancel",
        "pending",
        "request",
        "waiting",
    )

    def __init__(
        self, endpoint: Endpoint, key: ServerKey, request: Request, inbound: Inbound
    ) -> None:
        self._endpoint = endpoint
        self.key = key
        self.request = request
        self.inbound = inbound
        self._to_tag: str | None = None
        self.cancelled = False
        self.cancel_request: Request | None = None  # the CANCEL, for its Reason (RFC 3326)
        self.on_cancel: Callable[[], None] | None = None
        self.pending = False  # counted among the transactions awaiting a final response
        # Still waiting for this element's own work (not yet answered, nor relayed to a
        # next hop whose answer it then waits for): the overload guard's wait signal.
        self.waiting = False

    def relayed(self) -> None:
        """The request went on to a next hop: the time from here is that hop's."""
        self.waiting = False

    @property
    def to_tag(self) -> str:
        """The tag this element puts in To for its responses (one per transaction)."""
        if self._to_tag is None:
            self._to_tag = self.request.to.tag or new_tag(self._endpoint.entropy)
        return self._to_tag

    def response(
        self,
        status: int,
        reason: str | None = None,
        *,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        copy_record_route: bool = False,
    ) -> Response:
        return build_response(
            self.request,
            status,
            reason,
            to_tag=self.to_tag,
            extra=extra,
            body=body,
            content_type=content_type,
            copy_record_route=copy_record_route,
        )

    def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        copy_record_route: bool = False,
    ) -> None:
        self.send(
            self.response(
                status,
                reason,
                extra=extra,
                body=body,
                content_type=content_type,
                copy_record_route=copy_record_route,
            )
        )

    def send(self, response: Response) -> None:
        self._endpoint._send_response(self, response)


class ClientTransaction:
    """A request sent in a client transaction. `final` resolves with the first final
    response (a 408 or 503 is synthesised on timeout or transport failure, §8.1.3.1);
    `on_response` sees every response, including 2xx retransmissions from forks."""

    __slots__ = ("_endpoint", "error", "final", "key", "on_response", "request", "target")

    def __init__(
        self,
        endpoint: Endpoint,
        key: ClientKey,
        request: Request,
        target: Target,
        on_response: Callable[[Response], None] | None,
    ) -> None:
        self._endpoint = endpoint
        self.key = key
        self.request = request
        self.target = target
        self.on_response = on_response
        self.error: str | None = None  # why sending failed, for the synthesised 503
        self.final: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

    def cancel(self, reason: str | None = None) -> None:
        """Send CANCEL for a pending INVITE (§9.1); a no-op once it has a final response.
        `reason`: a Reason header value for the CANCEL (RFC 3326)."""
        self._endpoint._cancel(self, reason)

    def _deliver(self, response: Response) -> None:
        if self.on_response is not None:
            self.on_response(response)
        if response.status >= 200 and not self.final.done():
            self.final.set_result(response)

    def _fail(self, status: int, reason: str) -> None:
        self._deliver(build_response(self.request, status, reason))


@dataclass(slots=True)
class Listening:
    transport: str
    host: str  # the address bound
    port: int
    advertise: str  # the host named in Via/Contact/Record-Route
    # A worker's private UDP port: named only in the Via of the requests this process
    # sends (and their source), never in Contact or Record-Route (docs/architecture.md).
    private: bool = False


@dataclass(slots=True)
class EndpointConfig:
    timers: TimerConfig = field(default_factory=TimerConfig)
    limits: Limits = DEFAULT_LIMITS
    advertise: str | None = None  # host to put in Via/Contact when bound to a wildcard
    user_agent: str = "sipline"


class Endpoint:
    """One SIP element on asyncio: transports + transaction layer + a single timer."""

    def __init__(
        self,
        config: EndpointConfig | None = None,
        *,
        entropy: Entropy | None = None,
        clock: Clock | None = None,
        transports: TransportLayer | None = None,
    ) -> None:
        self.config = config if config is not None else EndpointConfig()
        self.entropy: Entropy = entropy if entropy is not None else SystemEntropy()
        self.clock: Clock = clock if clock is not None else SystemClock()
        # Every timer above the core runs on this clock (runtime/timers.py); the core's
        # own next deadline is one of them.
        self.timers = Timers(self.clock)
        self.transactions = TransactionLayer(self.config.timers)
        self.transports = transports if transports is not None else TransportLayer(self._on_message)
        self.transports.on_message = self._on_message
        self.stats = EndpointStats()
        self.on_request: RequestHandler | None = None
        # Consulted before any transaction exists: a response it returns is sent at once
        # and no state is kept (a stateless UAS, §8.2.7; e.g. OPTIONS to the server).
        self.stateless_handler: StatelessHandler | None = None
        self._pumping = False
        self.on_cancel: CancelHandler | None = None
        self.on_ack: AckHandler | None = None
        self.on_stray_response: StrayHandler | None = None
        self._servers: dict[ServerKey, ServerTransaction] = {}
        self._clients: dict[ClientKey, ClientTransaction] = {}
        self._listening: list[Listening] = []
        self._timer: Timer | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = 0  # server transactions (not CANCEL) without a final response yet
        # Non-INVITE server transactions in arrival order, with when they came, for the
        # overload guard's response-wait signal (only kept while it is enabled).
        self._waiting: collections.deque[tuple[float, ServerTransaction]] = collections.deque()
        # Overload control (runtime/overload.py): None until `enable_overload`.
        self.overload: OverloadGuard | None = None
        # Per-source flood control in front of it (runtime/flood.py): `enable_flood`.
        self.flood: FloodGuard | None = None
        # Exceptions from a request handler that mean "busy, not broken": answered 503
        # with Retry-After rather than 500 (e.g. a full store queue).
        self.busy_errors: tuple[type[BaseException], ...] = ()
        # Sees every message received and sent, as bytes (call records, SIP trace, HEP:
        # server/records/tap.py): (sent, data, transport, local, remote); local is None
        # when the transport picks the socket.
        self.tap: MessageTap | None = None

    # -- set-up -----------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        """Monotonic seconds on the injected clock (what every `now=` receives)."""
        return self.clock.monotonic()

    def wall(self) -> float:
        """Wall-clock seconds (binding expiry, Date headers, schedules)."""
        return self.clock.wall()

    @property
    def listeners(self) -> list[Listening]:
        return list(self._listening)

    async def listen(
        self,
        transport: str,
        host: str,
        port: int,
        *,
        ssl_context: object = None,
        sock: socket.socket | None = None,
        private: bool = False,
    ) -> tuple[str, int]:
        """Open a listener; returns the address bound (port 0 picks a free one).

        `sock` is a socket bound already (by a supervising process); `private` (UDP
        only) makes it this process's own port: the requests it sends go from there
        and name it in their Via, so their responses come back here.
        """
        transport = transport.upper()
        if private and transport != "UDP":
            raise LocalProtocolError("only a UDP listener can be private")
        if transport == "UDP":
            listener = await self.transports.listen_udp(host, port, sock=sock, outbound=private)
        elif transport == "TCP":
            listener = await self.transports.listen_tcp(host, port, sock=sock)
        elif transport == "TLS":
            if not isinstance(ssl_context, ssl.SSLContext):
                raise LocalProtocolError("a TLS listener needs an ssl.SSLContext")
            listener = await self.transports.listen_tls(host, port, ssl_context, sock=sock)
        else:
            raise LocalProtocolError(f"unknown transport {transport}")
        bound_host, bound_port = listener.local[0], listener.local[1]
        advertise = self.config.advertise or bound_host
        if advertise in ("0.0.0.0", "::"):
            advertise = "127.0.0.1" if advertise == "0.0.0.0" else "::1"
        self._listening.append(Listening(transport, bound_host, bound_port, advertise, private))
        return bound_host, bound_port

    @property
    def live_transactions(self) -> int:
        return self.transactions.live_count

    @property
    def pending_transactions(self) -> int:
        """Server transactions still waiting for their final response."""
        return self._pending

    def enable_overload(self, config: OverloadConfig) -> OverloadGuard:
        """Shed new requests with 503 + Retry-After when overloaded (§21.5.4); call it
        from a coroutine (the lag sampler runs on this loop)."""
        guard = OverloadGuard(
            config,
            pending=lambda: self._pending,
            live=lambda: self.transactions.server_count,
        )
        guard.queue_fill = self._udp_queue_fill
        guard.response_wait = self._oldest_wait
        guard.start(self.loop)
        self.overload = guard
        return guard

    def enable_flood(self, config: FloodConfig) -> FloodGuard:
        """Ban sources sending more than their share, before parsing what they send;
        call it from a coroutine (the guard's tick runs on this loop)."""
        guard = FloodGuard(config)
        guard.start(self.loop)
        if config.enabled:
            self.flood = guard
            self.transports.refuse_source = guard.banned
        return guard

    def _oldest_wait(self) -> float:
        """Seconds the oldest non-INVITE server transaction has waited for its final
        response (the queue is trimmed lazily here, at each overload sample)."""
        waiting = self._waiting
        while waiting and not waiting[0][1].waiting:
            waiting.popleft()
        return self.now() - waiting[0][0] if waiting else 0.0

    def _udp_queue_fill(self) -> float:
        """The fullest UDP receive queue as a share of its buffer (Linux SO_MEMINFO:
        bytes allocated to queued datagrams, then the buffer size); 0 elsewhere."""
        fill = 0.0
        for listener in self.transports.listeners:
            udp = listener._udp
            if udp is None or udp.transport is None:
                continue
            sock = udp.transport.get_extra_info("socket")
            try:
                rmem, rcvbuf = struct.unpack(
                    "2I", sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, 8)
                )
            except (OSError, AttributeError, struct.error):
                return 0.0
            if rcvbuf:
                fill = max(fill, rmem / rcvbuf)
        return fill

    def listening(
        self, transport: str | None = None, family: int | None = None, *, via: bool = False
    ) -> Listening:
        """The listener to name in our Contact/Record-Route for `transport` (and IP
        family); with `via`, the one to name in the Via of a request we send: the
        private port when there is one."""
        if via:
            for item in self._listening:
                if (
                    item.private
                    and (transport is None or item.transport == transport.upper())
                    and (family is None or (":" in item.host) == (family == 6))
                ):
                    return item
        for item in self._listening:
            if item.private:
                continue
            if transport is not None and item.transport != transport.upper():
                continue
            if family is not None and (":" in item.host) != (family == 6):
                continue
            return item
        if family is not None:
            return self.listening(transport, via=via)
        if transport is not None:
            raise LocalProtocolError(f"no {transport} listener")
        raise LocalProtocolError("no listener")

    def local_uri(self, transport: str = "UDP", user: str | None = None) -> SipUri:
        item = self.listening(transport)
        uri = SipUri("sips" if transport.upper() == "TLS" else "sip", user, None, item.advertise)
        uri.port = item.port
        if transport.upper() == "TCP":
            uri.params.set("transport", "tcp")
        return uri

    def new_branch(self) -> str:
        return new_branch(self.entropy)

    def new_tag(self) -> str:
        return new_tag(self.entropy)

    def new_call_id(self) -> str:
        return new_call_id(self.entropy)

    async def close(self) -> None:
        """Stop: cancel pending client transactions' futures, close every socket."""
        if self._timer is not None:
            self._timer.cancel()
        if self.overload is not None:
            self.overload.stop()
        if self.flood is not None:
            self.flood.stop()
        for ct in list(self._clients.values()):
            if not ct.final.done():
                ct.final.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.transports.close()

    # -- receiving --------------------------------------------------------------------
    def _on_message(self, data: bytes, source: Source) -> None:
        flood = self.flood
        if flood is not None and not flood.admit(source.remote, data):
            if source.connection is not None:
                source.connection.abort()  # a banned source keeps no connection either
            return
        if self.tap is not None:  # after flood control: a flood costs no tracing
            self.tap(False, data, source.transport, source.local, source.remote)
        reliable = source.transport != "UDP"
        try:
            msg = parse_message(data, limits=self.config.limits, stream=reliable)
            if isinstance(msg, Request):
                self.stats.requests_in += 1
                if flood is not None and flood.refuse_scanner(msg, source.remote):
                    if source.connection is not None:
                        source.connection.abort()
                    return
                inbound = self._inbound(msg, source)
                method = msg.method
                if self.stateless_handler is not None and method not in ("ACK", "CANCEL"):
                    answer = self.stateless_handler(msg, inbound)
                    if answer is not None:
                        self.stats.stateless_answers += 1
                        self._transmit(answer.to_bytes(), inbound, None)
                        return
                if self.overload is not None and self._shed(msg, method, inbound):
                    return
                self.transactions.receive(msg, source=inbound, reliable=reliable, now=self.now())
            else:
                self.stats.responses_in += 1
                self.transactions.receive(msg, source=source, reliable=reliable, now=self.now())
        except RemoteProtocolError as exc:
            self._reject(data, source, exc)
            return
        self._pump()

    def _inbound(self, request: Request, source: Source) -> Inbound:
        """§18.2.1: note the real source in the top Via (received, RFC 3581 rport), and
        work out where responses go (§18.2.2)."""
        via = request.top_via
        host, port = source.remote
        changed = False
        if normalize_host(via.host) != host:
            via.params.set("received", host)
            changed = True
        if via.has_rport:
            via.params.set("rport", str(port))
            if "received" not in via.params:
                via.params.set("received", host)
            changed = True
        if changed:
            request.replace_top_via(via)
        if source.transport == "UDP":
            reply_port = port if via.has_rport else (via.port or 5060)
            reply = Target("UDP", host, reply_port)
        else:
            reply = Target(source.transport, host, via.port or _DEFAULT_PORT[source.transport])
        return Inbound(source, reply)

    def _shed(self, request: Request, method: str, inbound: Inbound) -> bool:
        """Overload control (§21.5.4): answer a new request 503 with Retry-After
        (§20.33), statelessly (§8.2.7: no transaction, so shedding holds no memory),
        when the guard says we are overloaded. ACK, CANCEL, in-dialog requests and
        retransmissions of requests we are working on are never shed. Returns True
        when the request was dealt with here."""
        guard = self.overload
        assert guard is not None
        to_tag = request.to.tag
        if method == "ACK":
            # The ACK for one of our 503s ends there (§17.1.1.3: it is hop by hop).
            if (
                to_tag is not None
                and to_tag.startswith("ol")
                and to_tag == _shed_tag(request)
                and self.transactions.get(server_key(request, "INVITE")) is None
            ):
                self.stats.shed_acks += 1
                return True
            return False
        if to_tag is not None:
            if to_tag.startswith("ol") and to_tag == _shed_tag(request):
                # §12.1: a 503 makes no dialog, so none has this tag (SIPp sends a BYE
                # in it after a failed call): §12.2.2, 481, statelessly like the 503.
                answer = build_response(request, 481, to_tag=to_tag)
                self._transmit(answer.to_bytes(), inbound, None)
                return True
            return False
        if method == "CANCEL":
            return False
        # §22: credentials answer a challenge of ours, so the work is half done. (Only
        # looked for while something is shed: most requests never need it.)
        headers = request.headers
        continued = guard.shed_fraction > 0.0 and (
            "authorization" in headers or "proxy-authorization" in headers
        )
        why = guard.reason(continued=continued)
        if why is None or self.transactions.get(server_key(request, method)) is not None:
            return False
        retry = guard.config.retry_after_s
        answer = build_response(
            request,
            503,
            f"Service Unavailable ({why})",
            to_tag=_shed_tag(request),
            extra=[("Retry-After", str(retry))],
        )
        self.stats.overload_rejections += 1
        guard.stats.rejected += 1
        self._transmit(answer.to_bytes(), inbound, None)
        return True

    def _reject(self, data: bytes, source: Source, exc: RemoteProtocolError) -> None:
        if data.lstrip(b"\r\n")[:4].upper() == b"SIP/":
            self.stats.malformed_responses += 1
            log.debug("dropped malformed response from %s: %s", source.remote, exc.reason)
            return
        self.stats.malformed_requests += 1
        answer = minimal_response(data, exc.status, exc.reason, to_tag=self.new_tag())
        if answer is None:
            return
        self.stats.stateless_rejections += 1
        target = Target(source.transport, source.remote[0], source.remote[1])
        if self.tap is not None:
            self.tap(True, answer, source.transport, source.local, source.remote)
        self.transports.send(answer, target, connection=source.connection, local=source.local)

    # -- the pump ---------------------------------------------------------------------
    def _pump(self) -> None:
        """Dispatch the transaction layer's events and send its datagrams until both run
        dry. Not reentrant: a handler that sends (and so pumps) while an event is being
        dispatched leaves the work to the pump already running. Recursing instead let a
        burst of timeouts (each 408 relayed, each relay pumping the next timeout) exhaust
        the stack under overload."""
        if self._pumping:
            return
        self._pumping = True
        txl = self.transactions
        try:
            while True:
                event = txl.next_event()
                if event is not None:
                    self._dispatch(event)
                outs = txl.datagrams_to_send()
                for out in outs:
                    self._transmit(out.data, out.destination, out.key)
                if event is None and not outs:
                    break
        finally:
            self._pumping = False
        self._arm()

    def _transmit(
        self, data: bytes, destination: object, key: ClientKey | ServerKey | None
    ) -> None:
        def failed(error: TransportError) -> None:
            log.info("send failed: %s", error)
            ct = self._clients.get(key) if isinstance(key, ClientKey) else None
            if ct is not None and ct.error is None:
                ct.error = str(error)
            if key is not None:
                self.transactions.transport_error(key, now=self.now())
                self._pump()

        if isinstance(destination, Inbound):
            src = destination.source
            if self.tap is not None:
                reply = destination.reply
                self.tap(True, data, src.transport, src.local, (reply.host, reply.port))
            self.transports.send(
                data,
                destination.reply,
                connection=src.connection,
                local=src.local if src.transport == "UDP" else None,
                on_error=failed,
            )
        elif isinstance(destination, Target):
            if self.tap is not None:
                self.tap(
                    True, data, destination.transport, None, (destination.host, destination.port)
                )
            self.transports.send(data, destination, on_error=failed)
        else:
            raise LocalProtocolError(f"cannot send to {destination!r}")

    def _arm(self) -> None:
        deadline = self.transactions.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.timers.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.transactions.handle_timers(now=self.now())
        self._pump()

    def _dispatch(self, event: object) -> None:
        if isinstance(event, ResponseReceived):
            ct = self._clients.get(event.key)
            if ct is not None:
                ct._deliver(event.response)
        elif isinstance(event, RequestReceived):
            inbound = event.source
            assert isinstance(inbound, Inbound)  # we pass Inbound for every request
            st = ServerTransaction(self, event.key, event.request, inbound)
            self._servers[event.key] = st
            st.pending = True
            self._pending += 1
            if self.overload is not None and st.request.method != "INVITE":
                st.waiting = True
                self._waiting.append((self.now(), st))
            self._handle(st)
        elif isinstance(event, CancelReceived):
            self._handle_cancel(event)
        elif isinstance(event, AckReceived):
            if self.on_ack is not None:
                inbound = event.source
                assert isinstance(inbound, Inbound)
                self.on_ack(event.request, inbound)
        elif isinstance(event, StrayResponse):
            if self.on_stray_response is not None:
                source = event.source
                assert isinstance(source, Source)
                self.on_stray_response(event.response, source)
        elif isinstance(event, TransactionTimedOut | TransportFailed):
            ct = self._clients.get(event.key)  # type: ignore[arg-type]
            if ct is not None:
                if isinstance(event, TransactionTimedOut):
                    ct._fail(408, "Request Timeout")
                else:
                    # The cause (a refused connection, a certificate that failed its
                    # check) is what a user can act on.
                    why = " ".join((ct.error or "transport failure").split())[:200]
                    ct._fail(503, f"Service Unavailable ({why})")
        elif isinstance(event, TransactionTerminated):
            if isinstance(event.key, ServerKey):
                gone = self._servers.pop(event.key, None)
                if gone is not None and gone.pending:
                    gone.pending = gone.waiting = False
                    self._pending -= 1
            else:
                self._clients.pop(event.key, None)

    def _handle(self, st: ServerTransaction) -> None:
        handler = self.on_request
        if handler is None:
            st.respond(501)
            return
        try:
            result = handler(st)
        except RemoteProtocolError as exc:
            st.respond(exc.status, exc.reason)
            return
        except self.busy_errors:
            self._respond_busy(st)
            return
        except Exception:
            self.stats.handler_errors += 1
            log.exception("request handler failed for %r", st.request)
            st.respond(500)
            return
        if inspect.isawaitable(result):
            self.spawn(self._await_handler(st, result))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `coro` as a task the endpoint keeps a reference to (and cancels on close)."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _await_handler(self, st: ServerTransaction, pending: Awaitable[None]) -> None:
        try:
            await pending
        except RemoteProtocolError as exc:
            self._respond_if_open(st, exc.status, exc.reason)
        except asyncio.CancelledError:
            raise
        except self.busy_errors:
            self._respond_busy(st)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("request handler failed for %r", st.request)
            self._respond_if_open(st, 500, None)

    def _respond_if_open(self, st: ServerTransaction, status: int, reason: str | None) -> None:
        with contextlib.suppress(LocalProtocolError):  # already answered
            st.respond(status, reason)

    def _respond_busy(self, st: ServerTransaction) -> None:
        """§21.5.4: temporarily unable to take the request; try again later (§20.33)."""
        retry = self.overload.config.retry_after_s if self.overload is not None else 5
        self.stats.overload_rejections += 1
        with contextlib.suppress(LocalProtocolError):
            st.respond(503, extra=[("Retry-After", str(retry))])

    def _handle_cancel(self, event: CancelReceived) -> None:
        inbound = event.source
        assert isinstance(inbound, Inbound)
        cancel_st = ServerTransaction(self, event.key, event.request, inbound)
        self._servers[event.key] = cancel_st
        invite_st = self._servers.get(event.invite_key) if event.invite_key else None
        if invite_st is None and event.other_key is not None:
            # §9.2 / §16.10: the CANCEL found its (non-INVITE) request: 200, and the
            # request runs to its own end; only an INVITE can be cancelled (§9.1).
            cancel_st.respond(200)
            return
        if self.on_cancel is not None:
            self.on_cancel(cancel_st, invite_st)
            return
        # §9.2 UAS default: 200 for the CANCEL, 487 for the INVITE if still pending.
        if invite_st is None:
            cancel_st.respond(481)
            return
        cancel_st.respond(200)
        invite_st.cancelled = True
        invite_st.cancel_request = event.request
        if invite_st.on_cancel is not None:
            invite_st.on_cancel()
        else:
            self._respond_if_open(invite_st, 487, None)

    # -- sending ------------------------------------------------------------------------
    def _send_response(self, st: ServerTransaction, response: Response) -> None:
        self.transactions.send_response(response, now=self.now(), key=st.key)
        if response.status >= 200:
            if st.pending:
                st.pending = st.waiting = False
                self._pending -= 1
            if st.key.method != "INVITE" and self._servers.get(st.key) is st:
                # Only an INVITE is looked up again (by its CANCEL): the core answers
                # retransmissions from the bytes it kept, so let the request go now
                # rather than at Timer J, 32 s later.
                del self._servers[st.key]
        self._pump()

    def via_value(self, target: Target, branch: str) -> str:
        """Our Via for a request to `target` (§8.1.1.7), asking for rport (RFC 3581)."""
        family = 6 if ":" in target.host else 4
        item = self.listening(target.transport, family, via=True)
        return f"SIP/2.0/{target.transport} {format_host(item.advertise)}:{item.port};branch={branch};rport"

    def send_request(
        self,
        request: Request,
        target: Target,
        *,
        on_response: Callable[[Response], None] | None = None,
        add_via: bool = True,
    ) -> ClientTransaction:
        """Send `request` in a new client transaction to `target` (resolved already).

        With `add_via`, a Via naming our listener with a fresh branch goes on top.
        """
        if add_via:
            branch = self.new_branch()
            request.headers.add("Via", self.via_value(target, branch), first=True)
            if target.transport == "UDP" and len(request.to_bytes()) > UDP_SIZE_LIMIT:
                tcp = self._stream_fallback(target)
                if tcp is not None:
                    request.headers.pop_first_value("Via")
                    request.headers.add("Via", self.via_value(tcp, branch), first=True)
                    target = tcp
        key = self.transactions.send_request(
            request, target=target, reliable=target.transport != "UDP", now=self.now()
        )
        ct = ClientTransaction(self, key, request, target, on_response)
        self._clients[key] = ct
        self._pump()
        return ct

    def _stream_fallback(self, target: Target) -> Target | None:
        """§18.1.1: the TCP equivalent of a UDP target, if we can send over TCP."""
        try:
            self.listening("TCP")
        except LocalProtocolError:
            return None
        return Target("TCP", target.host, target.port, target.server_name)

    def _cancel(self, ct: ClientTransaction, reason: str | None = None) -> None:
        cancel_key = self.transactions.cancel(ct.key, now=self.now(), reason=reason)
        if cancel_key is not None and cancel_key not in self._clients:
            # The CANCEL's own responses matter to no one; keep a handle for clean-up.
            txn = self.transactions.get(cancel_key)
            if txn is not None and txn.request is not None:  # a client's: always kept
                self._clients[cancel_key] = ClientTransaction(
                    self, cancel_key, txn.request, ct.target, None
                )
        self._pump()

    def send_stateless(
        self, message: Message, target: Target, *, source: Source | None = None
    ) -> None:
        """Send outside any transaction: a 2xx ACK, a statelessly forwarded response
        (from the socket its request came on, `source`, RFC 3581 §4)."""
        data = message.to_bytes()
        if self.tap is not None:
            local = source.local if source is not None else None
            self.tap(True, data, target.transport, local, (target.host, target.port))
        self.transports.send(
            data,
            target,
            connection=source.connection if source is not None else None,
            local=source.local if source is not None and source.transport == "UDP" else None,
        )

    async def request(self, request: Request, target: Target) -> Response:
        """Send `request` and wait for its final response."""
        return await self.send_request(request, target).final


def _shed_tag(request: Request) -> str:
    """The To tag of a 503 sent while shedding: the same for a retransmission, for the
    ACK that follows and for any later request that takes it for a dialog's (Call-ID
    and From tag), "ol" to tell it apart."""
    key = f"{request.call_id}\x00{request.from_.tag or ''}"
    return "ol" + hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
