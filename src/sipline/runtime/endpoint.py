"""The endpoint: where core events become callbacks and futures (docs/architecture.md).

It owns the transaction layer, the transports and the timers. Every entry point (a
datagram, a timer, a command from an application) calls into the core and then
`_pump`s: hand events up, send what the core queued, re-arm the timer to the core's
next deadline. Its parts: ingress.py (Via fix-up), flood.py and admission.py (at the
door), handles.py and handlers.py (what applications see and run), addresses.py
(which address to name, Via building), timers.py, siblings.py (a worker's branches).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from sipline.core.builders import new_branch, new_call_id, new_tag
from sipline.core.clock import Clock, Entropy
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import DEFAULT_LIMITS, Limits, Message, Request, Response, parse_message
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
from sipline.core.transaction.matching import ClientKey, ServerKey
from sipline.core.uri import SipUri
from sipline.runtime.addresses import LocalAddress, LocalAddresses, open_address
from sipline.runtime.admission import Admission
from sipline.runtime.flood import FloodConfig, FloodGuard
from sipline.runtime.handlers import (
    AckHandler,
    Address,
    CancelHandler,
    MessageTap,
    RequestHandler,
    StatelessHandler,
    StrayHandler,
    cancel_by_default,
    run_handler,
)
from sipline.runtime.handles import ClientTransaction, ServerTransaction
from sipline.runtime.ingress import Inbound, inbound_for, is_response, malformed_answer
from sipline.runtime.overload import OverloadConfig, OverloadGuard
from sipline.runtime.siblings import Siblings
from sipline.runtime.stats import EndpointStats
from sipline.runtime.system import SystemClock, SystemEntropy
from sipline.runtime.timers import Timer, Timers
from sipline.transport import Source, Target, TransportError, TransportLayer
from sipline.transport.base import ErrorCallback

__all__ = [
    "Address",
    "ClientTransaction",
    "Endpoint",
    "EndpointConfig",
    "EndpointStats",
    "Inbound",
    "LocalAddress",
    "ServerTransaction",
]

log = logging.getLogger("sipline.endpoint")


@dataclass(slots=True)
class EndpointConfig:
    timers: TimerConfig = field(default_factory=TimerConfig)
    limits: Limits = DEFAULT_LIMITS
    advertise: str | None = None  # host to put in Via/Contact when bound to a wildcard
    user_agent: str = "sipline"


class Endpoint:
    """One SIP element on asyncio: transports + transaction layer + timers."""

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
        self.addresses = LocalAddresses()
        # Our Via for a request to a target (§8.1.1.7); bound once: the proxy asks per hop.
        self.via_value: Callable[[Target, str], str] = self.addresses.via_value
        self.on_request: RequestHandler | None = None
        # Consulted before any transaction exists: a response it returns is sent at once
        # and no state is kept (a stateless UAS, §8.2.7; e.g. OPTIONS to the server).
        self.stateless_handler: StatelessHandler | None = None
        self._pumping = False
        self.on_cancel: CancelHandler | None = None
        self.on_ack: AckHandler | None = None
        self.on_stray_response: StrayHandler | None = None
        # Handles the applications hold, under the core's keys; the transactions
        # themselves are the core's. A client handle carries the future its final
        # response resolves; an INVITE's server handle is what its CANCEL finds (§9.2),
        # until the core ends the transaction.
        self._clients: dict[ClientKey, ClientTransaction] = {}
        self._invites: dict[ServerKey, ServerTransaction] = {}
        # Server transactions (not CANCEL) without a final response yet: the core does
        # not tell answered ones apart, and overload control counts these.
        self._unanswered: set[ServerKey] = set()
        self._timer: Timer | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Overload control (runtime/overload.py, admission.py): `enable_overload`.
        self.overload: OverloadGuard | None = None
        self.admission: Admission | None = None
        self.flood: FloodGuard | None = None  # per-source, in front (runtime/flood.py)
        # Handler exceptions meaning "busy" (a full store queue): 503 + Retry-After, not 500.
        self.busy_errors: tuple[type[BaseException], ...] = ()
        # Sees every message in and out (server/records/tap.py): (sent, data, transport,
        # local, remote); local is None when the transport picks the socket.
        self.tap: MessageTap | None = None
        self.siblings: Siblings | None = None  # a worker's (runtime/siblings.py)
        self.branch_mark = ""

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
    def local_addresses(self) -> list[LocalAddress]:
        return list(self.addresses.items)

    async def bind(
        self,
        transport: str,
        host: str,
        port: int,
        *,
        ssl_context: object = None,
        sock: socket.socket | None = None,
    ) -> tuple[str, int]:
        """Receive on `transport` at (host, port); returns the address bound (port 0
        picks a free one). `sock`: see `runtime.addresses.open_address`."""
        advertise = self.config.advertise
        item = await open_address(
            self.transports, transport, host, port, advertise, ssl_context, sock
        )
        self.addresses.add(item)
        return item.host, item.port

    def local_address(
        self, transport: str | None = None, family: int | None = None
    ) -> LocalAddress:
        """The address to name in our Contact/Record-Route/Via."""
        return self.addresses.pick(transport, family)

    def local_uri(self, transport: str = "UDP", user: str | None = None) -> SipUri:
        return self.addresses.local_uri(transport, user)

    @property
    def live_transactions(self) -> int:
        return self.transactions.live_count

    @property
    def pending_transactions(self) -> int:
        """Server transactions still waiting for their final response."""
        return len(self._unanswered)

    def enable_overload(self, config: OverloadConfig) -> OverloadGuard:
        """Shed new requests with 503 + Retry-After when overloaded (§21.5.4)."""
        guard = OverloadGuard(
            config,
            pending=lambda: len(self._unanswered),
            live=lambda: self.transactions.server_count,
        )
        guard.queue_fill = self.transports.udp_queue_fill
        self.admission = Admission(guard, self.transactions, self.stats, self.now)
        guard.start(self.timers)
        self.overload = guard
        return guard

    def enable_flood(self, config: FloodConfig) -> FloodGuard:
        """Ban sources sending more than their share, before parsing what they send."""
        guard = FloodGuard(config)
        guard.start(self.timers)
        if config.enabled:
            self.flood = guard
            self.transports.refuse_source = guard.banned
        return guard

    def new_branch(self) -> str:
        return new_branch(self.entropy) + self.branch_mark

    def new_tag(self) -> str:
        return new_tag(self.entropy)

    def new_call_id(self) -> str:
        return new_call_id(self.entropy)

    async def close(self) -> None:
        """Stop: drop every timer (the guards' samplers too), cancel pending client
        transactions' futures, close every socket."""
        self.timers.close()
        self._timer = self._timer_at = None
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
        reliable = source.transport != "UDP"
        tap = self.tap  # after flood control: a flood costs no tracing
        try:
            msg = parse_message(data, limits=self.config.limits, stream=reliable)
        except RemoteProtocolError as exc:
            if tap is not None:
                tap(False, data, source.transport, source.local, source.remote)
            self._reject(data, source, exc)
            return
        if self.siblings is not None and self.siblings.hands_over(msg, data, source):
            return  # a response to a request another worker sent
        if tap is not None:  # before anything changes it (the Via fix-up)
            tap(False, data, source.transport, source.local, source.remote, msg)
        try:
            if isinstance(msg, Request):
                self.stats.requests_in += 1
                if flood is not None and flood.refuse_scanner(msg, source.remote):
                    if source.connection is not None:
                        source.connection.abort()
                    return
                inbound = inbound_for(msg, source)
                method = msg.method
                if self.stateless_handler is not None and method not in ("ACK", "CANCEL"):
                    answer = self.stateless_handler(msg, inbound)
                    if answer is not None:
                        self.stats.stateless_answers += 1
                        self._transmit(answer.to_bytes(), inbound, None)
                        return
                admission = self.admission
                if admission is not None:
                    if method == "ACK":
                        if admission.absorbs_ack(msg):
                            return
                    else:
                        shed = admission.shed(msg, method)
                        if shed is not None:
                            self._transmit(shed.to_bytes(), inbound, None)
                            return
                self.transactions.receive_request(msg, inbound, reliable, self.now())
            else:
                self.stats.responses_in += 1
                self.transactions.receive_response(msg, source, self.now())
        except RemoteProtocolError as exc:
            self._reject(data, source, exc)
            return
        self._pump()

    def _reject(self, data: bytes, source: Source, exc: RemoteProtocolError) -> None:
        if is_response(data):
            self.stats.malformed_responses += 1
            log.debug("dropped malformed response from %s: %s", source.remote, exc.reason)
            return
        self.stats.malformed_requests += 1
        answer = malformed_answer(data, exc, self.entropy)
        if answer is not None:
            self.stats.stateless_rejections += 1
            back = Target(source.transport, source.remote[0], source.remote[1])
            self._transmit(answer, Inbound(source, back), None)

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
        on_error: ErrorCallback = (
            _log_send_failure if key is None else lambda error: self._send_failed(error, key)
        )
        if isinstance(destination, Inbound):
            src = destination.source
            reply = destination.reply
            if self.tap is not None:
                self.tap(True, data, src.transport, src.local, (reply.host, reply.port))
            self.transports.send(
                data,
                reply,
                connection=src.connection,
                local=src.local if src.transport == "UDP" else None,
                on_error=on_error,
            )
        elif isinstance(destination, Target):
            if self.tap is not None:
                remote = (destination.host, destination.port)
                self.tap(True, data, destination.transport, None, remote)
            self.transports.send(data, destination, on_error=on_error)
        else:
            raise LocalProtocolError(f"cannot send to {destination!r}")

    def _send_failed(self, error: TransportError, key: ClientKey | ServerKey) -> None:
        _log_send_failure(error)
        ct = self._clients.get(key) if isinstance(key, ClientKey) else None
        if ct is not None and ct.error is None:
            ct.error = str(error)
        self.transactions.transport_error(key, now=self.now())
        self._pump()

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
                ct.deliver(event.response)
        elif isinstance(event, RequestReceived):
            inbound = event.source
            assert isinstance(inbound, Inbound)  # we pass Inbound for every request
            server = event.key
            st = ServerTransaction(self, server, event.request, inbound)
            self._unanswered.add(server)
            if server.method == "INVITE":
                self._invites[server] = st
            if self.admission is not None:
                self.admission.track(st)
            run_handler(self, st)
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
            failed = event.key
            ct = self._clients.get(failed) if isinstance(failed, ClientKey) else None
            if ct is not None:
                ct.give_up(timed_out=isinstance(event, TransactionTimedOut))
        elif isinstance(event, TransactionTerminated):
            ended = event.key
            if isinstance(ended, ServerKey):
                self._unanswered.discard(ended)
                self._invites.pop(ended, None)
            else:
                self._clients.pop(ended, None)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `coro` as a task the endpoint keeps a reference to (and cancels on close)."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _handle_cancel(self, event: CancelReceived) -> None:
        inbound = event.source
        assert isinstance(inbound, Inbound)
        cancel_st = ServerTransaction(self, event.key, event.request, inbound)
        invite_st = self._invites.get(event.invite_key) if event.invite_key else None
        if invite_st is None and event.other_key is not None:
            # §9.2 / §16.10: the CANCEL found its (non-INVITE) request: 200, and the
            # request runs to its own end; only an INVITE can be cancelled (§9.1).
            cancel_st.respond(200)
            return
        if self.on_cancel is not None:
            self.on_cancel(cancel_st, invite_st)
        else:
            cancel_by_default(cancel_st, invite_st, event.request)

    # -- sending ------------------------------------------------------------------------
    def send_response(self, st: ServerTransaction, response: Response) -> None:
        """Send `response` in the server transaction `st` (what `st.send` does)."""
        self.transactions.send_response(response, now=self.now(), key=st.key)
        if response.status >= 200:
            st.waiting = False
            self._unanswered.discard(st.key)
        self._pump()

    def send_request(
        self,
        request: Request,
        target: Target,
        *,
        on_response: Callable[[Response], None] | None = None,
        add_via: bool = True,
    ) -> ClientTransaction:
        """Send `request` in a new client transaction to `target` (resolved already).

        With `add_via`, a Via naming our address with a fresh branch goes on top (and
        a request too big for UDP goes over TCP when it can, §18.1.1).
        """
        if add_via:
            target = self.addresses.add_via(request, target, self.new_branch())
        key = self.transactions.send_request(
            request, target=target, reliable=target.transport != "UDP", now=self.now()
        )
        ct = ClientTransaction(self, key, request, target, on_response)
        self._clients[key] = ct
        self._pump()
        return ct

    def cancel(self, ct: ClientTransaction, reason: str | None = None) -> None:
        """Cancel the INVITE `ct` (what `ct.cancel` does); the CANCEL's own responses
        matter to no one, so it gets no handle."""
        self.transactions.cancel(ct.key, now=self.now(), reason=reason)
        self._pump()

    def send_stateless(
        self, message: Message, target: Target, *, source: Source | None = None
    ) -> None:
        """Send outside any transaction, through the core's `send_stateless`: an ACK
        for a 2xx (§13.2.2.4, §17.1.1.3), a statelessly forwarded response (from the
        socket its request came on, `source`, RFC 3581 §4)."""
        destination = Inbound(source, target) if source is not None else target
        self.transactions.send_stateless(
            message, destination=destination, reliable=target.transport != "UDP"
        )
        self._pump()

    async def request(self, request: Request, target: Target) -> Response:
        """Send `request` and wait for its final response."""
        return await self.send_request(request, target).final


def _log_send_failure(error: TransportError) -> None:
    log.info("send failed: %s", error)
