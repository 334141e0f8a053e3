"""The transaction layer: every client and server transaction of an element (RFC 3261 §17).

Modelled on aioquic's connection: the runtime feeds it parsed messages (`receive`),
commands (`send_request`, `send_response`, `cancel`), transport errors and the time
(`handle_timers`), then drains two queues, `next_event()` for the TU and
`datagrams_to_send()` for the transports, and re-arms its single timer to
`next_deadline()`. The four machines are tables (`client_invite.py` and siblings);
this module only interprets their actions on the records of `records.py`. Each
message is serialised once; the bytes are reused for every retransmission.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import cast

from sipline.core.builders import build_response
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Message, Request, Response
from sipline.core.timers import RETRANSMIT_TIMERS, Timer, TimerConfig
from sipline.core.transaction.client_invite import CLIENT_INVITE
from sipline.core.transaction.client_non_invite import CLIENT_NON_INVITE
from sipline.core.transaction.events import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)
from sipline.core.transaction.matching import (
    ClientKey,
    ServerKey,
    cancel_targets,
    client_key,
    is_legacy,
    legacy_match,
    server_key,
)
from sipline.core.transaction.records import LayerStats, Outgoing, Transaction
from sipline.core.transaction.requests import build_ack, build_cancel
from sipline.core.transaction.server_invite import SERVER_INVITE
from sipline.core.transaction.server_non_invite import SERVER_NON_INVITE
from sipline.core.transaction.tables import Action, Input, State, Step

__all__ = ["LayerStats", "Outgoing", "Transaction", "TransactionLayer"]

_TERMINATED = State.TERMINATED
_SEND_RESPONSE, _PASS_UP, _SEND_REQUEST = Action.SEND_RESPONSE, Action.PASS_UP, Action.SEND_REQUEST
_PROCEEDING = State.PROCEEDING


class TransactionLayer:
    """Owns all transactions of one element. Not thread-safe; one per event loop."""

    def __init__(self, config: TimerConfig | None = None, *, auto_trying: bool = True) -> None:
        self.config = config if config is not None else TimerConfig()
        self.auto_trying = auto_trying  # §17.2.1 100 Trying after `config.trying`
        self.stats = LayerStats()
        self._clients: dict[ClientKey, Transaction] = {}
        self._servers: dict[ServerKey, Transaction] = {}
        self._legacy: dict[ServerKey, list[Transaction]] = {}  # RFC 2543 transactions
        self._events: deque[TransactionEvent] = deque()
        self._out: list[Outgoing] = []
        self._heap: list[tuple[float, int, Transaction, Timer]] = []
        self._armed = 0  # live entries in the heap (the rest are cancelled, popped lazily)
        self._seq = itertools.count()
        self._durations = {r: self.config.durations(r) for r in (False, True)}

    # -- outputs ----------------------------------------------------------------------
    def next_event(self) -> TransactionEvent | None:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When `handle_timers` must next be called (None: no timer armed)."""
        heap = self._heap
        while heap:
            deadline, _, txn, timer = heap[0]
            if txn.timers.get(timer) == deadline:
                return deadline
            heapq.heappop(heap)
        return None

    # -- monitoring -------------------------------------------------------------------
    @property
    def live_count(self) -> int:
        return len(self._clients) + len(self._servers)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    @property
    def server_count(self) -> int:
        return len(self._servers)

    def get(self, key: ClientKey | ServerKey) -> Transaction | None:
        if isinstance(key, ServerKey):
            return self._servers.get(key)
        return self._clients.get(key)

    def state(self, key: ClientKey | ServerKey) -> State | None:
        txn = self.get(key)
        return txn.state if txn is not None else None

    # -- inputs from the wire -----------------------------------------------------------
    def receive(
        self, msg: Request | Response, *, source: object, reliable: bool, now: float
    ) -> None:
        """A parsed message from a transport. Raises `RemoteProtocolError` (before any
        state changes) when a field matching needs is malformed; the runtime answers a
        request statelessly with `exc.status` when it can, and drops a response."""
        if isinstance(msg, Response):
            self.receive_response(msg, source, now)
        else:
            self.receive_request(msg, source, reliable, now)

    def receive_response(self, resp: Response, source: object, now: float) -> None:
        """`receive` of a response (the runtime, which knows which it has, calls this)."""
        key = client_key(resp)
        txn = self._clients.get(key) if key is not None else None
        if txn is None:
            self.stats.stray_responses += 1
            self._events.append(StrayResponse(resp, source))
            return
        status = resp.status
        if status < 200:
            inp = Input.RECV_1XX
        elif status < 300:
            inp = Input.RECV_2XX
        else:
            inp = Input.RECV_3XX_6XX
        before = txn.state
        self._step(txn, inp, now, now, resp, source)
        if inp is not Input.RECV_1XX and before is txn.state:
            self.stats.retransmissions_received += 1
        if txn.cancel_pending and txn.state is _PROCEEDING:
            txn.cancel_pending = False
            self._send_cancel(txn, now)

    def receive_request(self, req: Request, source: object, reliable: bool, now: float) -> None:
        """`receive` of a request."""
        method = req.method
        key = server_key(req, method)
        legacy = is_legacy(key)
        txn = self._match_legacy(key, req) if legacy else self._servers.get(key)
        if method == "ACK":
            # §17.2.3: an ACK matches the INVITE transaction; one matching none is for a 2xx.
            if txn is None:
                self.stats.stray_acks += 1
                self._events.append(AckReceived(req, None, source))
            else:
                if txn.state is State.CONFIRMED:
                    self.stats.retransmissions_received += 1
                self._step(txn, Input.RECV_ACK, now, now, req, source)
            return
        if txn is not None:
            self.stats.retransmissions_received += 1
            self._step(txn, Input.RECV_REQUEST, now, now, req, source)
            return
        machine = SERVER_INVITE if method == "INVITE" else SERVER_NON_INVITE
        invite_key: ServerKey | None = None
        other_key: ServerKey | None = None
        if method == "CANCEL":  # §9.2: the request with the same branch and sent-by
            for target_key in cancel_targets(key):
                found = (
                    self._match_legacy(target_key, req) if legacy else self._servers.get(target_key)
                )
                if found is None:
                    continue
                if target_key.method == "INVITE":
                    invite_key = cast(ServerKey, found.key)
                else:
                    other_key = cast(ServerKey, found.key)
                break
        if legacy:
            # Requests that differ only in Request-URI or To tag share the response-side
            # key: the transaction's own key adds them, the bucket holds them all.
            base = key
            to_tag = req.to.tag
            key = ServerKey(f"{base.branch}\x00{req.uri_text}\x00{to_tag or ''}", *key[1:])
            txn = Transaction(key, machine, req, source, reliable, base)
            txn.response_to_tag = to_tag
            self._legacy.setdefault(base, []).append(txn)
        else:
            txn = Transaction(key, machine, req, source, reliable)
        self._servers[key] = txn
        self.stats.servers_created += 1
        if method == "CANCEL":
            self._events.append(CancelReceived(req, key, invite_key, source, other_key))
        else:
            self._events.append(RequestReceived(req, key, source))
        self._start(txn, now)

    def _match_legacy(self, base: ServerKey, req: Request) -> Transaction | None:
        for txn in self._legacy.get(base, ()):
            assert txn.request is not None  # RFC 2543 transactions keep theirs
            if legacy_match(txn.request, req, txn.response_to_tag):
                return txn
        return None

    # -- commands from the TU -----------------------------------------------------------
    def send_request(
        self, request: Request, *, target: object, reliable: bool, now: float
    ) -> ClientKey:
        """Start a client transaction. The top Via must already carry a fresh branch
        (§8.1.1.7). ACK for a 2xx is not a transaction: use `send_stateless`."""
        method = request.method
        if method == "ACK":
            raise LocalProtocolError("an ACK is not sent in a client transaction of its own")
        try:
            branch = request.top_via.branch
        except RemoteProtocolError as exc:
            raise LocalProtocolError(f"request has no usable Via: {exc.reason}") from exc
        if branch is None:
            raise LocalProtocolError("the top Via of a request needs a branch parameter")
        key = ClientKey(branch, method)
        if key in self._clients:
            raise LocalProtocolError(f"a client transaction with branch {branch} exists")
        machine = CLIENT_INVITE if method == "INVITE" else CLIENT_NON_INVITE
        txn = Transaction(key, machine, request, target, reliable)
        txn.data = request.to_bytes()
        self._clients[key] = txn
        self.stats.clients_created += 1
        self._start(txn, now)
        return key

    def send_response(
        self, response: Response, *, now: float, key: ServerKey | None = None
    ) -> ServerKey:
        """Send `response` in its server transaction, found from the top Via branch,
        sent-by and CSeq method unless `key` is given. Raises `LocalProtocolError` when
        there is none or the machine forbids it (e.g. a second final response)."""
        if key is None:
            try:
                key = server_key(response, response.cseq.method)
            except RemoteProtocolError as exc:
                raise LocalProtocolError(f"cannot match response: {exc.reason}") from exc
        txn = self._servers.get(key)
        if txn is None and is_legacy(key):
            bucket = self._legacy.get(key, ())
            if len(bucket) > 1:
                raise LocalProtocolError("ambiguous RFC 2543 transaction: pass its key")
            txn = bucket[0] if bucket else None
        if txn is None:
            raise LocalProtocolError("no server transaction for this response")
        status = response.status
        if status < 200:
            inp = Input.SEND_1XX
        elif status < 300:
            inp = Input.SEND_2XX
        else:
            inp = Input.SEND_3XX_6XX
        self._step(txn, inp, now, now, response)
        return cast(ServerKey, txn.key)

    def cancel(self, key: ClientKey, *, now: float, reason: str | None = None) -> ClientKey | None:
        """Cancel a pending INVITE (§9.1): send a CANCEL now if a provisional response
        arrived, else as soon as one does. Returns the CANCEL's client key, or None when
        the INVITE already has a final response (nothing left to cancel). `reason` is
        the CANCEL's Reason header value (RFC 3326), e.g. why a proxy gave up a branch."""
        txn = self._clients.get(key)
        if txn is None:
            return None
        if txn.machine is not CLIENT_INVITE:
            raise LocalProtocolError("only an INVITE can be cancelled")
        if reason is not None and txn.cancel_reason is None:
            txn.cancel_reason = reason
        cancel_key = ClientKey(key.branch, "CANCEL")
        if txn.state is State.CALLING:
            txn.cancel_pending = True
            return cancel_key
        if txn.state is _PROCEEDING:
            return self._send_cancel(txn, now)
        return None

    def _send_cancel(self, txn: Transaction, now: float) -> ClientKey:
        cancel_key = ClientKey(txn.key.branch, "CANCEL")
        if cancel_key in self._clients:
            return cancel_key
        assert txn.request is not None  # client transactions keep theirs
        cancel = build_cancel(txn.request)
        if txn.cancel_reason is not None:
            cancel.headers.add("Reason", txn.cancel_reason)
        return self.send_request(cancel, target=txn.peer, reliable=txn.reliable, now=now)

    def send_stateless(self, msg: Message, *, destination: object, reliable: bool) -> None:
        """Queue a message outside any transaction: an ACK for a 2xx, a response a proxy
        forwards statelessly (§16.11, §18.1.2)."""
        self._out.append(Outgoing(msg.to_bytes(), destination, reliable, None))

    def transport_error(self, key: ClientKey | ServerKey, *, now: float) -> None:
        """The runtime could not send for `key` (§17.1.4, §17.2.4). Unknown keys are
        ignored: the transaction may have ended meanwhile."""
        txn = self.get(key)
        if txn is not None:
            self._step(txn, Input.TRANSPORT_ERROR, now, now)

    def terminate(self, key: ClientKey | ServerKey) -> None:
        """Drop a transaction the TU has given up on (e.g. an INVITE that got no final
        response 64*T1 after its CANCEL, §9.1). Reports `TransactionTerminated`."""
        txn = self.get(key)
        if txn is not None:
            self._terminate(txn)

    def handle_timers(self, *, now: float) -> None:
        """Fire every timer due at `now`, in deadline order. A retransmission timer is
        re-armed from the deadline that fired, so a late call does not shift the
        schedule (it catches up instead)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, txn, timer = heapq.heappop(heap)
            if txn.timers.get(timer) != deadline:
                continue  # cancelled
            del txn.timers[timer]
            self._armed -= 1
            self._step(txn, timer, now, deadline)

    # -- the interpreter ----------------------------------------------------------------
    def _start(self, txn: Transaction, now: float) -> None:
        immediate = self._run(txn, txn.machine.start, None, now, now, None, None)
        if immediate is not None:
            self._step(txn, immediate, now, now)

    def _step(
        self,
        txn: Transaction,
        inp: Input | Timer,
        now: float,
        base: float,
        msg: Message | None = None,
        source: object = None,
    ) -> None:
        actions, nxt = txn.machine.table[txn.state, inp]
        if actions and actions[0] is Action.REJECT:
            raise LocalProtocolError(
                f"{txn.machine.name} transaction in {txn.state.value} cannot send that response"
            )
        if nxt is not txn.state:
            txn.state = nxt
            if txn.timers:
                allowed = txn.machine.timers[nxt]
                for timer in [t for t in txn.timers if t not in allowed]:
                    self._disarm(txn, timer)
        immediate = self._run(txn, actions, inp, now, base, msg, source) if actions else None
        if nxt is _TERMINATED:
            self._terminate(txn)
        elif immediate is not None:
            self._step(txn, immediate, now, now)

    def _run(
        self,
        txn: Transaction,
        actions: tuple[Step, ...],
        inp: Input | Timer | None,
        now: float,
        base: float,
        msg: Message | None,
        source: object,
    ) -> Timer | None:
        """Carry out `actions`; return a zero-duration timer to fire at once, if any."""
        immediate: Timer | None = None
        # The commonest actions first; the keys are typed by the machine (a PASS_UP of
        # a response is a client's, of an ACK a server's), so no `cast` call is paid.
        for action in actions:
            if action.__class__ is Timer:
                if self._arm(txn, action, base):
                    immediate = action
            elif action is _SEND_RESPONSE:
                if isinstance(msg, Response):
                    self._send(txn, self._store_response(txn, msg), False)
            elif action is _PASS_UP:
                if isinstance(msg, Response):
                    provisional = inp is Input.RECV_1XX
                    self._events.append(ResponseReceived(msg, txn.key, provisional))  # type: ignore[arg-type]
                elif isinstance(msg, Request):
                    self._events.append(AckReceived(msg, txn.key, source))  # type: ignore[arg-type]
            elif action is _SEND_REQUEST:
                self._send(txn, txn.data, inp.__class__ is Timer)
            elif action is Action.SEND_ACK:
                if txn.ack_data is None:
                    if not isinstance(msg, Response):
                        continue
                    assert txn.request is not None  # client transactions keep theirs
                    txn.ack_data = build_ack(txn.request, msg).to_bytes()
                    self._send(txn, txn.ack_data, False)
                else:
                    self._send(txn, txn.ack_data, True)
            elif action is Action.RESEND_RESPONSE:
                if txn.response_data is not None:
                    self._send(txn, txn.response_data, True)
            elif action is Action.SEND_TRYING:
                # §17.2.1; build_response never adds a To tag to a 100 (§8.2.6.2).
                assert txn.request is not None  # kept until the final response
                self._send(txn, self._store_response(txn, build_response(txn.request, 100)), False)
            elif action is Action.STOP_TRYING:
                self._disarm(txn, Timer.TRYING)
            elif action is Action.TIMED_OUT:
                self.stats.timeouts += 1
                self._events.append(TransactionTimedOut(txn.key, cast(Timer, inp)))
            elif action is Action.TRANSPORT_FAILED:
                self.stats.transport_failures += 1
                self._events.append(TransportFailed(txn.key))
        return immediate

    def _store_response(self, txn: Transaction, response: Response) -> bytes:
        data = txn.response_data = response.to_bytes()
        if response.status >= 200:
            if txn.legacy_base is not None:
                txn.response_to_tag = response.to.tag
            else:
                txn.request = None  # see Transaction.__init__
        return data

    def _send(self, txn: Transaction, data: bytes, retransmission: bool) -> None:
        if retransmission:
            self.stats.retransmissions_sent += 1
        self._out.append(Outgoing(data, txn.peer, txn.reliable, txn.key))

    def _arm(self, txn: Transaction, timer: Timer, base: float) -> bool:
        """Arm `timer` counting from `base`; True when its duration is zero (fire now)."""
        if timer in RETRANSMIT_TIMERS:
            if txn.reliable:  # §17.1.1.2, §17.1.2.2, §17.2.1: no A, E or G
                return False
            t1, t2 = self.config.t1, self.config.t2
            iv = txn.interval
            if iv == 0.0:
                iv = t1
            elif timer is Timer.A:
                iv *= 2  # §17.1.1.2: doubles with no cap (Timer B ends it)
            elif timer is Timer.E and txn.state is _PROCEEDING:
                iv = t2  # §17.1.2.2
            else:
                iv = min(iv * 2, t2)
            txn.interval = iv
            deadline = base + iv
        else:
            if timer is Timer.TRYING and not self.auto_trying:
                return False
            duration = self._durations[txn.reliable][timer]
            if duration <= 0.0:
                return True
            deadline = base + duration
        if timer in txn.timers:
            self._armed -= 1
        txn.timers[timer] = deadline
        self._armed += 1
        heap = self._heap
        heapq.heappush(heap, (deadline, next(self._seq), txn, timer))
        if 4 * self._armed < len(heap) > 1024:
            self._compact()
        return False

    def _disarm(self, txn: Transaction, timer: Timer) -> None:
        if txn.timers.pop(timer, None) is not None:
            self._armed -= 1

    def _compact(self) -> None:
        """Drop cancelled entries so that the heap stays proportional to live timers."""
        # In place: `handle_timers` may be iterating over this very list.
        self._heap[:] = [e for e in self._heap if e[2].timers.get(e[3]) == e[0]]
        heapq.heapify(self._heap)

    def _terminate(self, txn: Transaction) -> None:
        self._armed -= len(txn.timers)
        txn.timers.clear()
        txn.state = _TERMINATED
        key = txn.key
        if isinstance(key, ServerKey):
            if self._servers.get(key) is txn:
                del self._servers[key]
            base = txn.legacy_base
            if base is not None:
                bucket = self._legacy[base]
                bucket.remove(txn)
                if not bucket:
                    del self._legacy[base]
        elif self._clients.get(key) is txn:
            del self._clients[key]
        self.stats.terminated += 1
        self._events.append(TransactionTerminated(key))
