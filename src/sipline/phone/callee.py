"""The callee's role in a call (RFC 3261 §13.3): checking the INVITE, ringing (which
makes the early dialog), answering with the 2xx (kept until its ACK by the session,
§13.3.1.4), rejecting, and being cancelled (§9.2).
"""

from __future__ import annotations

import contextlib

from sipline.core.dialog import Dialog
from sipline.core.errors import LocalProtocolError
from sipline.core.message import Request
from sipline.phone.call_context import CallContext
from sipline.phone.cancel_reason import cancel_text
from sipline.phone.events import CallAnswered, CallState, EndedBy, UserAgentError
from sipline.phone.services import AgentServices
from sipline.phone.session import InviteSession
from sipline.phone.session_timer import TimerDecision, uas_decide
from sipline.runtime.endpoint import ServerTransaction

__all__ = ["CalleeRole"]

# Option tags we can honour in a Require header (RFC 3261 §8.2.2.3).
_UNDERSTOOD = frozenset({"timer"})


class CalleeRole:
    """Receiving a call: `receive` checks and rings, then `answer` or `reject`."""

    def __init__(
        self,
        call: CallContext,
        agent: AgentServices,
        session: InviteSession,
        st: ServerTransaction,
    ) -> None:
        self.call = call
        self.agent = agent
        self.session = session
        self.st = st
        self._answer_sdp: bytes | None = None
        self._offer_in_2xx = False
        self._decision = TimerDecision(None)

    @property
    def invite(self) -> Request:
        return self.st.request

    async def receive(self) -> bool:
        """Check the INVITE and ring; False when it was rejected here."""
        st, request, media = self.st, self.st.request, self.session.media
        unknown = [t for t in request.option_tags("require") if t.lower() not in _UNDERSTOOD]
        if unknown:
            st.respond(420, extra=[("Unsupported", ", ".join(unknown))])
            return False
        decision = uas_decide(request, self.agent.config.session_timer)
        if decision.reject_min_se is not None:
            st.respond(422, extra=[("Min-SE", str(decision.reject_min_se))])
            return False
        self._decision = decision
        await media.open()
        if request.body:
            if request.content_type != "application/sdp":
                st.respond(415, extra=[("Accept", "application/sdp")])
                return False
            self._answer_sdp = media.answer(request.body)  # 400 or 488 if unusable
        else:
            self._offer_in_2xx = True  # §13.3.1: our offer goes in the 2xx, the ACK answers
        st.on_cancel = self._on_cancel
        # §12.1.1: a dialog-creating response copies the request's Record-Route.
        ringing = st.response(
            180,
            extra=[("Contact", str(self.agent.contact())), *self.agent.headers()],
            copy_record_route=True,
        )
        dialog = Dialog.as_uas(request, ringing)
        self.call.local = dialog.local
        self.agent.dialogs.add(dialog)
        self.call.bind_dialog(dialog)
        self.session.dialog = dialog
        st.send(ringing)
        return True

    async def answer(self) -> None:
        """Answer with 200 OK and start the media."""
        st, call, session, media = self.st, self.call, self.session, self.session.media
        if self._offer_in_2xx:
            body = media.offer()
            session.expect_answer_in_ack(st.request.cseq.seq)
        else:
            body = self._answer_sdp or b""
        decision = self._decision
        extra = [("Contact", str(self.agent.contact())), *self.agent.headers(), *decision.headers]
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
        assert session.dialog is not None
        session.dialog.confirm()
        call.state = CallState.ANSWERED
        session.answers.keep(st, response)
        if not self._offer_in_2xx:
            media.start()
        if not call.answered.done():
            call.answered.set_result(None)
        call.emit(CallAnswered(media.codec))
        session.negotiated(decision.timer)

    async def reject(self, status: int, reason: str | None) -> None:
        with contextlib.suppress(LocalProtocolError):
            self.st.respond(status, reason)
        await self.call.end(f"rejected with {status}", EndedBy.LOCAL, status)

    def terminate_pending(self) -> None:
        """§15.1.2: a BYE before our answer: the pending INVITE gets 487."""
        with contextlib.suppress(LocalProtocolError):
            self.st.respond(487)

    def _on_cancel(self) -> None:
        """§9.2: the CANCEL got its 200 already; the INVITE gets 487. Once we have
        answered, a CANCEL changes nothing."""
        if self.call.state is not CallState.INCOMING:
            return
        st = self.st
        with contextlib.suppress(LocalProtocolError):
            st.respond(487)
        why = "cancelled by the caller"
        if st.cancel_request is not None:
            why = cancel_text(st.cancel_request.headers.get_all("reason"))
        self.call.spawn(self.call.end(why, EndedBy.REMOTE, 487))
