"""The caller's role in a call (RFC 3261 §13.2): the INVITE with an SDP offer,
provisional responses (with early media), the 2xx and its ACK, forks, redirects
(§8.1.3.4), digest challenges (§22.2, by the agent's `RequestSender`), 422 from
session timers (RFC 4028 §7.4), and CANCEL (§9.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sipline.core.builders import build_request
from sipline.core.dialog import Dialog
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import Uri, parse_uri
from sipline.core.views import NameAddr
from sipline.phone.answerer import who_answered
from sipline.phone.call_context import CallContext
from sipline.phone.events import (
    CallAnswered,
    CallEnded,
    CallProgressed,
    CallState,
    EndedBy,
    UserAgentError,
)
from sipline.phone.requests import renew
from sipline.phone.services import AgentServices
from sipline.phone.session import InviteSession
from sipline.phone.session_timer import parse_min_se, uac_request_headers, uac_timer_from_response
from sipline.runtime.endpoint import ClientTransaction
from sipline.transport import TransportError
from sipline.transport.resolver import ResolutionError

__all__ = ["CallerRole"]

log = logging.getLogger("sipline.ua")


class CallerRole:
    """Placing a call. `place` runs as the call's task until a final response."""

    def __init__(self, call: CallContext, agent: AgentServices, session: InviteSession) -> None:
        self.call = call
        self.agent = agent
        self.session = session
        self._invite_ct: ClientTransaction | None = None
        self._cancel_requested = False
        self._confirming: set[str] = set()  # remote tags whose 2xx we acknowledged

    def _build_invite(self, uri: Uri, body: bytes, extra: list[tuple[str, str]]) -> Request:
        policy = self.agent.config.session_timer
        headers = [*self.agent.headers(), *uac_request_headers(policy), *extra]
        return build_request(
            "INVITE",
            uri,
            from_=self.call.local,
            to=self.call.remote,
            call_id=self.call.call_id,
            cseq=1,
            via=[],
            contact=self.agent.contact(),
            routes=self.agent.initial_routes(),
            body=body,
            content_type="application/sdp",
            extra=headers,
        )

    async def place(self, uri: Uri, extra: list[tuple[str, str]]) -> None:
        call = self.call
        try:
            await self._place(uri, extra)
        except (ResolutionError, TransportError, OSError) as exc:
            await call.end(f"cannot reach {uri}: {exc}", EndedBy.NETWORK, 503)
        except UserAgentError as exc:  # e.g. the outbound proxy's name does not resolve
            await call.end(str(exc), EndedBy.NETWORK, 503)
        except (RemoteProtocolError, LocalProtocolError, ValueError) as exc:
            await call.end(f"call failed: {exc}", EndedBy.LOCAL, 500)

    async def _place(self, uri: Uri, extra: list[tuple[str, str]]) -> None:
        media = self.session.media
        await media.open()
        request = self._build_invite(uri, media.offer(), extra)
        tried = {str(uri)}
        redirects = 0
        while True:
            if self._cancel_requested:
                await self.call.end("cancelled", EndedBy.LOCAL, 487)
                return
            target = await self.agent.first_hop(request.uri)
            final = await self.agent.sender.send(
                request,
                target,
                on_response=self._on_response,
                on_transaction=self._sent,
                proceed=self._may_go_on,
            )
            status = final.status
            if status < 300:
                return  # the 2xx is handled as it arrives (_on_response)
            if self._cancel_requested or self.call.state is CallState.ENDED:
                await self.call.end("cancelled", EndedBy.LOCAL, status)
                return
            if 300 <= status < 400 and redirects < self.agent.config.max_redirects:
                contact = _next_contact(final, tried)
                if contact is not None:
                    redirects += 1
                    tried.add(str(contact))
                    request.uri = contact
                    renew(request)  # §8.1.3.4: same Call-ID and tags, a higher CSeq
                    continue
            min_se = final.headers.get("min-se")
            if status == 422 and min_se is not None:
                with contextlib.suppress(RemoteProtocolError):
                    interval = parse_min_se(min_se)
                    request.headers.set("Session-Expires", str(interval))
                    request.headers.set("Min-SE", str(interval))
                    renew(request)
                    continue
            await self.call.end(f"{status} {final.reason}".strip(), EndedBy.REMOTE, status)
            return

    def _sent(self, ct: ClientTransaction) -> None:
        self._invite_ct = ct

    def _may_go_on(self) -> bool:
        return not self._cancel_requested and self.call.state is not CallState.ENDED

    # -- responses ----------------------------------------------------------------------------
    def _on_response(self, request: Request, response: Response) -> None:
        status = response.status
        try:
            dialog = self.agent.dialogs.receive_uac_response(request, response)
        except RemoteProtocolError as exc:
            log.info("ignoring %s: %s", response, exc.reason)
            return
        if status < 200:
            self._progress(response, dialog)
        elif status < 300 and dialog is not None:
            self._on_2xx(request, response, dialog)

    def _progress(self, response: Response, dialog: Dialog | None) -> None:
        call = self.call
        if call.state is CallState.ENDED or call.state is CallState.ANSWERED:
            return
        early = False
        if dialog is not None:
            call.bind_dialog(dialog)
            media = self.session.media
            if response.body and response.content_type == "application/sdp":
                try:
                    media.receive_answer(response.body)
                    media.start()
                    early = True  # RFC 3960: play what the network sends before the answer
                except RemoteProtocolError as exc:
                    log.info("early media SDP ignored: %s", exc.reason)
        call.state = CallState.PROCEEDING if response.status == 100 else CallState.RINGING
        call.emit(CallProgressed(response.status, response.reason, early))

    def _on_2xx(self, request: Request, response: Response, dialog: Dialog) -> None:
        self.call.bind_dialog(dialog)
        session = self.session
        if dialog.remote_tag in self._confirming:
            # A retransmission (the ACK was lost): the same ACK again (§13.2.2.4).
            if dialog is session.dialog:
                session.resend_ack(request.cseq.seq)
            return
        self._confirming.add(dialog.remote_tag)
        ours = session.dialog
        if ours is None or ours.is_early or ours is dialog:
            if ours is not None and ours is not dialog and ours.is_early:
                ours.terminate()  # another fork answered first (§13.2.2.4)
            session.dialog = dialog
            self.call.spawn(self._confirm(request, response, dialog))
        else:
            self.call.spawn(self._ack_and_bye(request, dialog))

    async def _confirm(self, request: Request, response: Response, dialog: Dialog) -> None:
        call, session, media = self.call, self.session, self.session.media
        target = await self.agent.resolve(dialog.next_hop())
        session.send_ack(dialog, request, target)
        if call.state is CallState.ENDED:
            await session.bye(dialog)
            return
        if response.body:
            try:
                media.receive_answer(response.body)
            except RemoteProtocolError as exc:
                await session.bye(dialog)
                await call.end(f"bad SDP answer: {exc.reason}", EndedBy.REMOTE, 488)
                return
        elif media.stream is None:
            await session.bye(dialog)
            await call.end("the 2xx carried no SDP answer", EndedBy.REMOTE, 488)
            return
        timer = session.timer
        with contextlib.suppress(RemoteProtocolError):
            timer = uac_timer_from_response(response)
        call.state = CallState.ANSWERED
        media.start()
        if not call.answered.done():
            call.answered.set_result(None)
        who = who_answered(response)
        call.emit(
            CallAnswered(
                media.codec, who.identity, who.contact, who.forwarded_from, who.forward_reason
            )
        )
        session.negotiated(timer)
        if self._cancel_requested:  # the 2xx crossed our CANCEL: the call goes anyway
            await session.bye(dialog)
            await call.end("cancelled (answered as the CANCEL went out)", EndedBy.LOCAL)

    async def _ack_and_bye(self, request: Request, dialog: Dialog) -> None:
        """A second fork answered: confirm its dialog, then end it (§13.2.2.4)."""
        await self.session.ack_when_resolved(dialog, request)
        await self.session.bye(dialog)

    # -- CANCEL (§9.1) ---------------------------------------------------------------------
    async def cancel(self, ended: asyncio.Future[CallEnded]) -> None:
        self._cancel_requested = True
        ct = self._invite_ct
        if ct is None:
            return  # place() sees the flag before sending
        ct.cancel()
        endpoint = self.agent.endpoint
        try:
            await endpoint.timers.wait_for(asyncio.shield(ended), 64 * self.agent.config.timers.t1)
        except TimeoutError:
            # §9.1: no final response 64*T1 after the CANCEL: the INVITE is over.
            endpoint.transactions.terminate(ct.key)
            await self.call.end("cancelled (no answer to CANCEL)", EndedBy.LOCAL, 487)


def _next_contact(response: Response, tried: set[str]) -> Uri | None:
    """§8.1.3.4: the highest-q Contact of a 3xx not tried yet."""
    try:
        contacts: list[NameAddr] = response.contacts
    except RemoteProtocolError:
        return None
    ranked = sorted(contacts, key=lambda c: -(_q(c)))
    for contact in ranked:
        if contact.uri_text in tried:
            continue
        try:
            return parse_uri(contact.uri_text)
        except RemoteProtocolError:
            continue
    return None


def _q(contact: NameAddr) -> float:
    try:
        q = contact.q
    except RemoteProtocolError:
        return 0.0
    return 1.0 if q is None else q
