"""The callee's side of a call (RFC 3261 §13.3): checking the INVITE, ringing (which
makes the early dialog), answering with the 2xx and retransmitting it until the ACK
comes (§13.3.1.4), rejecting, and being cancelled (§9.2).
"""

from __future__ import annotations

import asyncio
import contextlib

from sipline.core.dialog import Dialog
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.media_io.sources import SinkLike, SourceLike
from sipline.phone.call_base import CallBase
from sipline.phone.cancel_reason import cancel_text
from sipline.phone.events import CallAnswered, CallState, EndedBy, UserAgentError
from sipline.phone.session_timer import TimerDecision, uas_decide
from sipline.runtime.endpoint import ServerTransaction

__all__ = ["IncomingMixin"]

# Option tags we can honour in a Require header (RFC 3261 §8.2.2.3).
_UNDERSTOOD = frozenset({"timer"})


class IncomingMixin(CallBase):
    """Receiving a call, and the 2xx retransmissions of every INVITE we answer."""

    _st: ServerTransaction | None = None
    _answer_sdp: bytes | None = None
    _offer_in_2xx: bool = False
    _decision: TimerDecision | None = None
    # 2xx responses we retransmit until their ACK, by INVITE CSeq (§13.3.1.4)
    _unacked: dict[int, asyncio.TimerHandle] | None = None
    _offers_in_2xx: set[int] | None = None  # INVITEs (CSeq) whose answer is in the ACK

    @property
    def invite(self) -> Request | None:
        """The INVITE of an incoming call (its Request-URI, To, History-Info, ...)."""
        return self._st.request if self._st is not None else None

    async def _receive(self, st: ServerTransaction) -> bool:
        """Check a new INVITE and ring; False when it was rejected here."""
        request = st.request
        self._st = st
        unknown = [t for t in request.option_tags("require") if t.lower() not in _UNDERSTOOD]
        if unknown:
            st.respond(420, extra=[("Unsupported", ", ".join(unknown))])
            return False
        decision = uas_decide(request, self.ua.config.session_timer)
        if decision.reject_min_se is not None:
            st.respond(422, extra=[("Min-SE", str(decision.reject_min_se))])
            return False
        self._decision = decision
        await self.media.open()
        if request.body:
            if request.content_type != "application/sdp":
                st.respond(415, extra=[("Accept", "application/sdp")])
                return False
            self._answer_sdp = self.media.answer(request.body)  # 400 or 488 if unusable
        else:
            self._offer_in_2xx = True  # §13.3.1: our offer goes in the 2xx, the ACK answers
        st.on_cancel = self._on_cancel
        # §12.1.1: a dialog-creating response copies the request's Record-Route.
        ringing = st.response(
            180,
            extra=[("Contact", str(self.ua.contact())), *self.ua.headers()],
            copy_record_route=True,
        )
        dialog = Dialog.as_uas(request, ringing)
        self.local = dialog.local
        self.ua.dialogs.add(dialog)
        self.ua.bind_dialog(dialog, self)  # type: ignore[arg-type]
        self.dialog = dialog
        st.send(ringing)
        return True

    async def answer(
        self, *, play: SourceLike | None = None, record: SinkLike | None = None
    ) -> None:
        """Answer an incoming call with 200 OK and start the media."""
        st = self._st
        if self.outgoing or st is None or self.state is not CallState.INCOMING:
            raise UserAgentError(f"cannot answer a call that is {self.state.value}")
        if play is not None:
            self.play(play)
        if record is not None:
            self.record(record)
        if self._offer_in_2xx:
            body = self.media.offer()
            self._expect_answer_in_ack(st.request.cseq.seq)
        else:
            body = self._answer_sdp or b""
        decision = self._decision or TimerDecision(None)
        extra = [("Contact", str(self.ua.contact())), *self.ua.headers(), *decision.headers]
        # RFC 7044 §6.2: a UAS returns the History-Info it received, so the caller
        # learns that (and why) the call was retargeted.
        extra += [("History-Info", v) for v in st.request.headers.get_all("History-Info")]
        response = st.response(
            200, extra=extra, body=body, content_type="application/sdp", copy_record_route=True
        )
        try:
            st.send(response)
        except LocalProtocolError as exc:  # cancelled meanwhile
            raise UserAgentError(f"too late to answer: {exc}") from None
        assert self.dialog is not None
        self.dialog.confirm()
        self.state = CallState.ANSWERED
        self._retransmit_2xx(st, response)
        if not self._offer_in_2xx:
            self.media.start()
        if not self.answered.done():
            self.answered.set_result(None)
        self._emit(CallAnswered(self.media.codec))
        self.session_timer = decision.timer
        self._arm_session_timer()

    async def reject(self, status: int = 486, reason: str | None = None) -> None:
        """Turn an incoming call down (486 Busy Here unless told otherwise)."""
        st = self._st
        if self.outgoing or st is None or self.state is not CallState.INCOMING:
            raise UserAgentError(f"cannot reject a call that is {self.state.value}")
        if not 300 <= status < 700:
            raise UserAgentError("a rejection is a 3xx-6xx status")
        with contextlib.suppress(LocalProtocolError):
            st.respond(status, reason)
        await self._end(f"rejected with {status}", EndedBy.LOCAL, status)

    def _on_cancel(self) -> None:
        """§9.2: the CANCEL got its 200 already; the INVITE gets 487. Once we have
        answered, a CANCEL changes nothing."""
        if self.state is not CallState.INCOMING:
            return
        st = self._st
        why = "cancelled by the caller"
        if st is not None:
            with contextlib.suppress(LocalProtocolError):
                st.respond(487)
            if st.cancel_request is not None:
                why = cancel_text(st.cancel_request.headers.get_all("reason"))
        self._spawn(self._end(why, EndedBy.REMOTE, 487))

    # -- 2xx until ACK (§13.3.1.4) -------------------------------------------------------------
    def _retransmit_2xx(self, st: ServerTransaction, response: Response) -> None:
        if self._unacked is None:
            self._unacked = {}
        cseq = st.request.cseq.seq
        config = self.ua.config.timers
        loop = asyncio.get_running_loop()
        started = loop.time()
        reliable = st.inbound.transport != "UDP"

        def again(interval: float) -> None:
            if self.state is CallState.ENDED or self._unacked is None or cseq not in self._unacked:
                return
            if loop.time() - started >= 64 * config.t1:
                del self._unacked[cseq]
                self._spawn(self._no_ack())
                return
            if not reliable:
                with contextlib.suppress(LocalProtocolError):
                    st.send(response)
            nxt = interval if reliable else min(2 * interval, config.t2)
            self._unacked[cseq] = loop.call_later(nxt, again, nxt)

        first = 64 * config.t1 if reliable else config.t1
        self._unacked[cseq] = loop.call_later(first, again, first)

    async def _no_ack(self) -> None:
        """§13.3.1.4: no ACK for 64*T1: confirm the dialog, then end the session."""
        await self._bye_and_end("no ACK for our 2xx", EndedBy.NETWORK, 408)

    def _on_ack(self, request: Request) -> None:
        cseq = request.cseq.seq
        handle = self._unacked.pop(cseq, None) if self._unacked is not None else None
        if handle is None:
            return  # a retransmitted ACK, or one for a 2xx we did not send
        handle.cancel()
        if request.body and self.media.local_sdp is not None and self._awaiting_ack_answer(cseq):
            try:
                self.media.receive_answer(request.body)
                self.media.start()
            except RemoteProtocolError:
                self._spawn(self._hangup_bad_ack())

    def _expect_answer_in_ack(self, cseq: int) -> None:
        if self._offers_in_2xx is None:
            self._offers_in_2xx = set()
        self._offers_in_2xx.add(cseq)

    def _awaiting_ack_answer(self, cseq: int) -> bool:
        """Our 2xx to this INVITE carried an offer (the INVITE had none)."""
        return self._offers_in_2xx is not None and cseq in self._offers_in_2xx

    async def _hangup_bad_ack(self) -> None:
        await self._bye_and_end("the ACK carried a bad SDP answer", EndedBy.REMOTE, 488)

    def _stop_retransmissions(self) -> None:
        if self._unacked:
            for handle in self._unacked.values():
                handle.cancel()
            self._unacked.clear()
