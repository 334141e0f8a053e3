"""The INVITE session of one call, whichever side placed it: its dialog and media
(offer/answer, RFC 3264), requests inside the dialog (RFC 3261 §12.2.1), the ACK for
each 2xx we get (§13.2.2.4), re-INVITE and UPDATE both ways with glare (491, §14),
the 2xx we send kept until its ACK (§13.3.1.4, `answer_keeper.py`), the RFC 4028
session timer, and BYE (§15).

The timing rules are the sans-I/O machines of `sipline.core.invite_usage` and
`sipline.core.session_refresh`; this module looks things up and carries out actions,
on the endpoint's timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sipline.core.dialog import Dialog
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.session_refresh import RefreshAction, RefreshState, SessionRefresh, SessionTimer
from sipline.phone.answer_keeper import AnswerKeeper
from sipline.phone.call_context import CallContext
from sipline.phone.events import (
    CallHeld,
    CallResumed,
    CallState,
    EndedBy,
    SessionRefreshed,
    UserAgentError,
)
from sipline.phone.media import CallMedia
from sipline.phone.services import AgentServices
from sipline.phone.session_timer import uac_request_headers, uac_timer_from_response, uas_decide
from sipline.runtime.endpoint import ServerTransaction
from sipline.runtime.timers import Timer
from sipline.sdp import Direction
from sipline.transport import Target

__all__ = ["InviteSession"]

log = logging.getLogger("sipline.ua")


class InviteSession:
    """The dialog, media and INVITE usage of one call (see the module docstring)."""

    def __init__(self, call: CallContext, agent: AgentServices, media: CallMedia) -> None:
        self.call = call
        self.agent = agent
        self.media = media
        self.dialog: Dialog | None = None
        self.local_direction = Direction.SENDRECV
        self.refresh = SessionRefresh()
        self._refresh_timer: Timer | None = None
        self._reinvite_lock = asyncio.Lock()
        self._reinvite_pending = False  # one of ours is in progress (§14.1)
        self._uas_reinvite = False  # one of theirs awaits our answer (§14.2)
        self._acks: dict[int, tuple[Request, Target]] = {}  # 2xx ACKs by INVITE CSeq
        self._offers_in_2xx: set[int] = set()  # INVITEs (CSeq) whose answer is in the ACK
        self.answers = AnswerKeeper(agent.endpoint.timers, agent.config.timers, self._no_ack)

    @property
    def timer(self) -> SessionTimer | None:
        """The RFC 4028 timer the last 2xx negotiated, if any."""
        return self.refresh.timer

    def close(self) -> None:
        """The call ended: no more timers of any kind."""
        self.answers.stop()
        self.refresh.stop(now=self.agent.endpoint.now())
        self._arm_refresh()
        if self.dialog is not None:
            self.dialog.terminate()

    # -- requests in the dialog (§12.2.1) -----------------------------------------------------
    async def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        contact: bool = False,
        on_response: Callable[[Request, Response], None] | None = None,
    ) -> Response:
        """Send a request in the dialog and wait for its final response (challenges
        answered); the call ends when the dialog does (481, 408, §12.2.1.2)."""
        dialog = self.dialog
        if dialog is None or dialog.terminated:
            raise LocalProtocolError("the call has no dialog")
        request = dialog.create_request(
            method,
            contact=self.agent.contact() if contact else None,
            body=body,
            content_type=content_type,
            extra=[*self.agent.headers(), *(extra or [])],
        )
        target = await self.agent.resolve(dialog.next_hop())
        response = await self.agent.sender.send(
            request, target, next_cseq=dialog.next_local_seq, on_response=on_response
        )
        dialog.receive_response(request, response)
        if dialog.terminated and self.call.state is not CallState.ENDED:
            by = EndedBy.REMOTE if response.status == 481 else EndedBy.NETWORK
            await self.call.end(
                f"{method} got {response.status} {response.reason}", by, response.status
            )
        return response

    def send_ack(self, dialog: Dialog, invite: Request, target: Target, body: bytes = b"") -> None:
        """The ACK for a 2xx (§13.2.2.4): a new branch, the INVITE's credentials; kept
        so that a retransmitted 2xx gets the same ACK again."""
        cseq = invite.cseq.seq
        if self.resend_ack(cseq):
            return
        extra = [
            (name, value)
            for name in ("Authorization", "Proxy-Authorization")
            for value in invite.headers.get_all(name)
        ]
        ack = dialog.create_ack(
            cseq, body=body, content_type="application/sdp" if body else None, extra=extra
        )
        endpoint = self.agent.endpoint
        ack.headers.add("Via", endpoint.via_value(target, endpoint.new_branch()), first=True)
        self._acks[cseq] = (ack, target)
        endpoint.send_stateless(ack, target)  # outside any transaction (§13.2.2.4, §17.1.1.3)

    def resend_ack(self, cseq: int) -> bool:
        """A 2xx came again (its ACK was lost): the same ACK again, if we sent one."""
        cached = self._acks.get(cseq)
        if cached is None:
            return False
        self.agent.endpoint.send_stateless(cached[0], cached[1])
        return True

    async def ack_when_resolved(self, dialog: Dialog, invite: Request) -> None:
        target = await self.agent.resolve(dialog.next_hop())
        self.send_ack(dialog, invite, target)

    async def bye(self, dialog: Dialog | None = None, *, wait_s: float = 2.0) -> None:
        """Send BYE (§15.1.1) and give it `wait_s` for an answer; the transaction goes on
        retransmitting after that, but a dead peer does not hold the caller up."""
        dialog = dialog or self.dialog
        if dialog is None or dialog.terminated:
            return
        try:
            bye = dialog.create_request("BYE", extra=self.agent.headers())
            target = await self.agent.resolve(dialog.next_hop())
            ct = self.agent.endpoint.send_request(bye, target)
            with contextlib.suppress(TimeoutError):
                await self.agent.endpoint.timers.wait_for(asyncio.shield(ct.final), wait_s)
        except Exception as exc:  # resolution failures and the like: the call ends anyway
            log.info("BYE not sent: %s", exc)
        dialog.terminate()

    async def bye_and_end(self, reason: str, by: EndedBy, status: int | None = None) -> None:
        await self.bye()
        await self.call.end(reason, by, status)

    # -- our re-INVITE (§14.1) ------------------------------------------------------------
    async def reinvite(self, direction: Direction) -> bool:
        """One re-INVITE at a time (§14.1); after 491 (glare) wait and retry (§14.1)."""
        if self.call.state is not CallState.ANSWERED or self.dialog is None:
            raise UserAgentError(f"cannot re-INVITE a call that is {self.call.state.value}")
        async with self._reinvite_lock:
            for attempt in range(3):
                media = self.media
                previous = (media.local_sdp, media.offered_direction)
                body = media.offer(direction)
                timer = self.timer
                interval = timer.interval_s if timer is not None else None
                refresher = "uac" if timer is not None and timer.we_refresh else None
                policy = self.agent.config.session_timer
                self._reinvite_pending = True
                try:
                    response = await self.request(
                        "INVITE",
                        body=body,
                        content_type="application/sdp",
                        extra=uac_request_headers(policy, interval, refresher=refresher),
                        contact=True,
                        on_response=self._ack_reinvite,
                    )
                finally:
                    self._reinvite_pending = False
                if 200 <= response.status < 300:
                    if response.body:
                        media.receive_answer(response.body)
                    with contextlib.suppress(RemoteProtocolError):
                        timer = uac_timer_from_response(response)
                    self.negotiated(timer)
                    return True
                media.restore(*previous)  # §14.1: a failed re-INVITE changes nothing
                if response.status != 491 or attempt == 2 or not self.call.is_active:
                    return False
                # §14.1: the Call-ID's owner waits 2.1-4 s, the other side 0-2 s.
                low, high = (2.1, 4.0) if self.call.outgoing else (0.0, 2.0)
                r = int.from_bytes(self.agent.entropy.random_bytes(2), "big") / 65535
                await self.agent.endpoint.timers.sleep(low + (high - low) * r)
            return False

    def _ack_reinvite(self, request: Request, response: Response) -> None:
        if 200 <= response.status < 300 and request.method == "INVITE" and self.dialog:
            self.call.spawn(self.ack_when_resolved(self.dialog, request))

    # -- their re-INVITE or UPDATE (§14.2, RFC 3311) -------------------------------------------
    async def on_reoffer(self, st: ServerTransaction) -> None:
        """A re-INVITE or UPDATE: a new offer, a refresh, or both."""
        request = st.request
        reinvite = request.method == "INVITE"
        if self.call.state is not CallState.ANSWERED:
            st.respond(491 if reinvite else 500)  # nothing to modify before the answer
            return
        if self._reinvite_pending:
            st.respond(491)  # §14.2: glare with our own re-INVITE
            return
        if self._uas_reinvite:
            st.respond(500, extra=[("Retry-After", "1")])  # §14.2: one at a time
            return
        decision = uas_decide(request, self.agent.config.session_timer)
        if decision.reject_min_se is not None:
            st.respond(422, extra=[("Min-SE", str(decision.reject_min_se))])
            return
        held_before = self.media.remote_hold
        self._uas_reinvite = True
        try:
            if request.body:
                body = self.media.answer(request.body, self.local_direction)  # 400/488
            elif reinvite:
                body = self.media.offer(self.local_direction)  # the ACK answers it
                self.expect_answer_in_ack(request.cseq.seq)
            else:
                body = b""
            extra = [("Contact", str(self.agent.contact())), *self.agent.headers()]
            response = st.response(
                200,
                extra=[*extra, *decision.headers],
                body=body,
                content_type="application/sdp" if body else None,
            )
            st.send(response)
        finally:
            self._uas_reinvite = False
        if reinvite:
            self.answers.keep(st, response)
        self.negotiated(decision.timer)
        if decision.timer is not None:
            self.call.emit(SessionRefreshed(decision.timer.interval_s, by_remote=True))
        held_now = self.media.remote_hold
        if held_now != held_before:
            self.call.emit(CallHeld(by_remote=True) if held_now else CallResumed(by_remote=True))

    # -- ACKs for the 2xx we sent (§13.3.1.4) --------------------------------------------------
    def expect_answer_in_ack(self, cseq: int) -> None:
        """Our 2xx to INVITE `cseq` carries an offer (the INVITE had none)."""
        self._offers_in_2xx.add(cseq)

    def on_ack(self, request: Request) -> None:
        cseq = request.cseq.seq
        if not self.answers.ack(cseq):
            return
        if request.body and self.media.local_sdp is not None and cseq in self._offers_in_2xx:
            try:
                self.media.receive_answer(request.body)
                self.media.start()
            except RemoteProtocolError:
                self.call.spawn(
                    self.bye_and_end("the ACK carried a bad SDP answer", EndedBy.REMOTE, 488)
                )

    def _no_ack(self) -> None:
        """§13.3.1.4: no ACK for 64*T1: confirm the dialog, then end the session."""
        self.call.spawn(self.bye_and_end("no ACK for our 2xx", EndedBy.NETWORK, 408))

    # -- the session timer (RFC 4028 §10) ------------------------------------------------------
    def negotiated(self, timer: SessionTimer | None) -> None:
        """A 2xx sent or received set the session timer (None: none)."""
        if self.call.state is not CallState.ANSWERED:
            return
        before = self.refresh.state
        self._perform(self.refresh.negotiate(timer, now=self.agent.endpoint.now()), before)

    def _arm_refresh(self) -> None:
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
            self._refresh_timer = None
        deadline = self.refresh.next_deadline()
        if deadline is not None:
            self._refresh_timer = self.agent.endpoint.timers.call_at(deadline, self._refresh_due)

    def _refresh_due(self) -> None:
        self._refresh_timer = None
        before = self.refresh.state
        self._perform(self.refresh.handle_timers(now=self.agent.endpoint.now()), before)

    def _perform(self, actions: tuple[RefreshAction, ...], before: RefreshState) -> None:
        refreshing = before is RefreshState.REFRESHING
        for action in actions:
            if action is RefreshAction.SEND_REFRESH:
                self.call.spawn(self._send_refresh())
            elif action is RefreshAction.REPORT_REFRESHED and self.timer is not None:
                self.call.emit(SessionRefreshed(self.timer.interval_s, by_remote=False))
            elif action is RefreshAction.END_WITH_BYE:
                self.call.spawn(self._expired(refreshing))
        self._arm_refresh()

    async def _send_refresh(self) -> None:
        if self.call.state is not CallState.ANSWERED:
            return
        ok = await self.reinvite(self.media.offered_direction)
        if not ok and self.call.is_active:
            before = self.refresh.state
            self._perform(self.refresh.refresh_failed(now=self.agent.endpoint.now()), before)

    async def _expired(self, refreshing: bool) -> None:
        if self.call.state is not CallState.ANSWERED:
            return
        why = "session refresh failed" if refreshing else "session expired without a refresh"
        await self.bye_and_end(f"{why} (RFC 4028)", EndedBy.NETWORK)
