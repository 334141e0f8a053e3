"""Carries out one proxied request's `ProxyContext` (sipline.core.proxy).

The context decides (§16.6-§16.10); the driver does what it asks: sends each branch
in a client transaction, relays responses upstream in the server transaction, sends
CANCELs, hangs up late answers, asks the routing policy for the next step. After
every call into the context it re-arms one timer on the endpoint's clock
(`endpoint.timers`) to the context's next deadline (Timer C, step and hop timeouts).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from sipline.core.errors import LocalProtocolError
from sipline.core.message import Request, Response
from sipline.core.proxy import (
    Action,
    CancelBranch,
    Fork,
    GiveUp,
    HangUp,
    ProxyContext,
    Relay,
    Respond,
    SendResponse,
    State,
    StepEnded,
    strip_top_via,
)
from sipline.runtime.endpoint import ClientTransaction, Endpoint, ServerTransaction
from sipline.runtime.timers import Timer
from sipline.server.bridge.plan import webrtc_contact
from sipline.server.features.decisions import (
    Decision,
    Exhausted,
    Outcome,
    Reject,
    RouteSession,
    classify,
)
from sipline.server.proxy.abandoned import end_abandoned_answer
from sipline.server.proxy.anchoring import MediaAnchor
from sipline.server.proxy.backend import ProxyConfig
from sipline.server.proxy.forward import branch_request
from sipline.server.proxy.local import DEFAULT_PORT, LocalNames
from sipline.server.proxy.targets import Leg, TargetFinder, anchor_legs
from sipline.server.security.gate import RelayGate
from sipline.transport import Source, Target

__all__ = ["ContextDriver", "Element", "send_upstream"]

log = logging.getLogger("sipline.proxy")


class Element(Protocol):
    """The parts of the proxy a driver uses (read when used: the server sets `gate`
    after building the proxy)."""

    endpoint: Endpoint
    config: ProxyConfig
    local: LocalNames
    finder: TargetFinder
    gate: RelayGate | None
    anchor: MediaAnchor | None


class ContextDriver:
    """One proxied request: its server transaction, its context, its branches."""

    __slots__ = (
        "_timer",
        "cts",
        "ctx",
        "element",
        "loop_hash",
        "request",
        "session",
        "st",
        "steps",
    )

    def __init__(
        self,
        element: Element,
        st: ServerTransaction,
        request: Request,
        loop_hash: str,
        *,
        groups: Iterable[list[Leg]] = (),
        session: RouteSession | None = None,
    ) -> None:
        self.element = element
        self.st = st
        self.request = request  # as received (each branch gets its own copy)
        self.loop_hash = loop_hash  # §16.6 step 8: the first part of every branch we create
        self.session = session
        self.steps = 0
        self.ctx: ProxyContext[Leg] = ProxyContext(
            invite=request.method == "INVITE",
            timer_c_s=element.config.timer_c_s,
            groups=groups,
            stepped=session is not None,
        )
        self.cts: list[ClientTransaction | None] = []
        self._timer: Timer | None = None
        # The server transaction holds its context (and so frees it when it ends).
        st.on_cancel = self.cancel

    def _now(self) -> float:
        return self.element.endpoint.now()

    # -- inputs to the context -----------------------------------------------------------
    def start(self) -> None:
        """Fork the first q-group."""
        self.perform(self.ctx.start(now=self._now()))

    def cancel(self) -> None:
        """§16.10: the caller cancelled."""
        self.perform(self.ctx.cancel(now=self._now()))

    def on_response(self, branch: int, response: Response) -> None:
        anchored = self.ctx.branches[branch].target.anchored
        if anchored is not None:
            anchored.response(response)  # the media bridge: the SDP the caller sees
        self.perform(self.ctx.receive_response(branch, response, now=self._now()))

    def _on_timer(self) -> None:
        self._timer = None
        self.perform(self.ctx.handle_timers(now=self._now()))

    async def apply(self, decision: Decision) -> None:
        """Carry out a routing policy's decisions until a step is ringing or the caller
        has an answer (a CANCEL or a late 2xx may answer it while targets resolve)."""
        session = self.session
        assert session is not None  # only contexts with a session get here
        ctx = self.ctx
        while ctx.state is State.WAITING:
            if isinstance(decision, Reject):
                now = self._now()
                self.perform(ctx.reject(decision.status, decision.reason, decision.extra, now=now))
                return
            if isinstance(decision, Exhausted):
                self.perform(ctx.exhausted(decision.status, decision.reason, now=self._now()))
                return
            self.steps += 1
            if self.steps > self.element.config.max_route_steps:
                decision = Exhausted(500, "Server Internal Error (too many routing steps)")
                continue
            finder = self.element.finder
            legs = []
            for t in decision.targets:
                found = await finder.ring_hop(t, self.request)
                if found is not None:
                    hop, path = found
                    b = t.binding
                    webrtc = b is not None and webrtc_contact(b.contact, b.params)
                    legs.append(
                        Leg(
                            t.uri,
                            hop,
                            path,
                            t.headers,
                            decision.set_headers,
                            decision.body,
                            webrtc=webrtc,
                        )
                    )
            legs = await anchor_legs(self.element.anchor, self.request, legs)
            if ctx.state is not State.WAITING:
                return
            if not legs:
                decision = session.step_failed(Outcome.UNAVAILABLE, None)
                continue
            self.perform(
                ctx.fork(
                    legs,
                    timeout_s=decision.timeout_s,
                    hop_timeout_s=decision.hop_timeout_s,
                    now=self._now(),
                )
            )
            return

    # -- actions -------------------------------------------------------------------------
    def perform(self, actions: list[Action[Leg]]) -> None:
        for action in actions:
            if isinstance(action, Relay):
                if action.stateless:
                    self._relay_stateless(action.response)
                else:
                    self._relay(action.response)
            elif isinstance(action, Fork):
                self._fork(action.branch, action.target)
            elif isinstance(action, CancelBranch):
                ct = self._ct(action.branch)
                if ct is not None:
                    ct.cancel(action.reason)
            elif isinstance(action, GiveUp):
                ct = self._ct(action.branch)
                if ct is not None:
                    ct.fail(action.status, action.reason)  # comes back as its response
            elif isinstance(action, Respond):
                self.st.respond(action.status, action.reason, extra=list(action.extra) or None)
            elif isinstance(action, SendResponse):
                self.st.send(action.response)
            elif isinstance(action, HangUp):
                self._hang_up(action)
            else:
                self._step_ended(action)
        self._arm()

    def _ct(self, branch: int) -> ClientTransaction | None:
        """None while the branch's request is still being handed to its transaction."""
        return self.cts[branch] if branch < len(self.cts) else None

    def _arm(self) -> None:
        """One timer at the context's next deadline. A deadline pushed back (Timer C
        after a provisional) keeps the timer: it fires early, finds nothing due and is
        armed again, so a ringing branch costs no new timer per provisional."""
        deadline = self.ctx.next_deadline()
        timer = self._timer
        if deadline is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
        elif timer is None or deadline < timer.when:
            if timer is not None:
                timer.cancel()
            self._timer = self.element.endpoint.timers.call_at(deadline, self._on_timer)

    def _fork(self, branch: int, leg: Leg) -> None:
        element = self.element
        endpoint = element.endpoint
        flows = element.local.flows  # our Record-Route names a stream flow (RFC 5626 §5.3)
        request = branch_request(
            self.request,
            leg,
            endpoint=endpoint,
            local=element.local,
            record_route=element.config.record_route,
            inbound_transport=self.st.inbound.transport,
            loop_hash=self.loop_hash,
            inbound_flow=flows.token_for(self.st.inbound.source) if flows else None,
        )
        ct = endpoint.send_request(
            request, leg.hop, on_response=lambda r: self.on_response(branch, r), add_via=False
        )
        # Branches are forked in order; a response that came during the send (a
        # transport failure) found no transaction here yet (`_ct`).
        self.cts += [None] * (branch + 1 - len(self.cts))
        self.cts[branch] = ct
        self.st.relayed()

    def _relay(self, response: Response) -> None:
        gate = self.element.gate
        if gate is not None and self.request.method == "INVITE" and 100 < response.status < 300:
            gate.learn_dialog(response)  # the callee's Contact: the dialog's target
        out = strip_top_via(response)
        try:
            if out.headers.get("via") is None:
                # §16.7 step 3: no Via left, so it was meant for us and is not forwarded;
                # the caller gets the outcome in a response of our own.
                log.info("response %d with only our Via from %s", response.status, self.st.key)
                self.st.respond(response.status, response.reason)
                return
            self.st.send(out)
        except LocalProtocolError:
            self._relay_stateless(response)  # the transaction moved on (e.g. Accepted)

    def _relay_stateless(self, response: Response) -> None:
        out = strip_top_via(response)
        if out.headers.get("via") is None:
            return  # §16.7 step 3: meant for us; nothing to send upstream
        send_upstream(self.element.endpoint, out, self.st.inbound.source)

    def _hang_up(self, action: HangUp) -> None:
        ct = self._ct(action.branch)
        if ct is None:
            return
        end_abandoned_answer(
            self.element.endpoint,
            ct.request,
            action.response,
            self.ctx.branches[action.branch].target.hop,
            self.element.local.is_me,
            send_bye=action.send_bye,
        )

    def _step_ended(self, action: StepEnded) -> None:
        """Every branch of the step has a final response and none was a 2xx."""
        session = self.session
        assert session is not None  # only stepped contexts end steps
        best = action.best
        outcome = classify(best.status if best else None, timed_out=action.timed_out)
        self.element.endpoint.spawn(self.apply(session.step_failed(outcome, best)))


def send_upstream(endpoint: Endpoint, response: Response, source: Source) -> None:
    """Send a response outside its transaction, back the way its request came."""
    via = response.top_via
    host = via.received or source.remote[0]
    port = via.rport or via.port or DEFAULT_PORT.get(via.transport, 5060)
    if source.transport == "UDP":
        target = Target("UDP", host, port)
    else:
        target = Target(source.transport, source.remote[0], source.remote[1])
    endpoint.send_stateless(response, target, source=source)
