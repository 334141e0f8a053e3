"""The caller's side of a call (RFC 3261 §13.2): the INVITE with an SDP offer,
provisional responses (with early media), the 2xx and its ACK, forks, redirects
(§8.1.3.4), digest challenges (§22.2), 422 from session timers (RFC 4028 §7.4), and
CANCEL (§9.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

from sipline.core.builders import build_request
from sipline.core.dialog import Dialog
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import Uri, parse_uri
from sipline.core.views import NameAddr
from sipline.phone.answerer import who_answered
from sipline.phone.call_base import CallBase, log
from sipline.phone.events import (
    CallAnswered,
    CallProgressed,
    CallState,
    EndedBy,
    UserAgentError,
)
from sipline.phone.session_timer import parse_min_se, uac_request_headers, uac_timer_from_response
from sipline.runtime.endpoint import ClientTransaction
from sipline.transport import Target, TransportError
from sipline.transport.resolver import ResolutionError

__all__ = ["OutgoingMixin"]


class OutgoingMixin(CallBase):
    """Placing a call. `_place` runs as the call's task until a final response."""

    _invite: Request | None = None
    _invite_ct: ClientTransaction | None = None
    _invite_target: Target | None = None
    _cancel_requested: bool = False
    _confirming: set[str] | None = None

    def _build_invite(self, uri: Uri, body: bytes, extra: list[tuple[str, str]]) -> Request:
        policy = self.ua.config.session_timer
        headers = [*self.ua.headers(), *uac_request_headers(policy), *extra]
        return build_request(
            "INVITE",
            uri,
            from_=self.local,
            to=self.remote,
            call_id=self.call_id,
            cseq=1,
            via=[],
            contact=self.ua.contact(),
            routes=self.ua.initial_routes(),
            body=body,
            content_type="application/sdp",
            extra=headers,
        )

    async def _place(self, uri: Uri, extra: list[tuple[str, str]]) -> None:
        try:
            await self._place_inner(uri, extra)
        except (ResolutionError, TransportError, OSError) as exc:
            await self._end(f"cannot reach {uri}: {exc}", EndedBy.NETWORK, 503)
        except UserAgentError as exc:  # e.g. the outbound proxy's name does not resolve
            await self._end(str(exc), EndedBy.NETWORK, 503)
        except (RemoteProtocolError, LocalProtocolError, ValueError) as exc:
            await self._end(f"call failed: {exc}", EndedBy.LOCAL, 500)

    async def _place_inner(self, uri: Uri, extra: list[tuple[str, str]]) -> None:
        await self.media.open()
        offer = self.media.offer()
        request = self._build_invite(uri, offer, extra)
        config = self.ua.config
        tried = {str(uri)}
        redirects = auth_tries = 0
        while True:
            if self._cancel_requested:
                await self._end("cancelled", EndedBy.LOCAL, 487)
                return
            target = await self.ua.first_hop(request.uri)
            if self.ua.digest is not None and request.cseq.seq == 1:
                self.ua.digest.apply_cached(request)  # §22.3: known realms up front
            self._invite, self._invite_target = request, target
            ct = self.ua.endpoint.send_request(
                request, target, on_response=functools.partial(self._on_response, request)
            )
            self._invite_ct = ct
            final = await ct.final
            status = final.status
            if status < 300:
                return  # the 2xx is handled as it arrives (_on_response)
            if self._cancel_requested or self.state is CallState.ENDED:
                await self._end("cancelled", EndedBy.LOCAL, status)
                return
            digest = self.ua.digest
            if status in (401, 407) and digest is not None and auth_tries < 3:
                auth_tries += 1
                if digest.authorize(request, final):
                    self._next_attempt(request)
                    continue
            if 300 <= status < 400 and redirects < config.max_redirects:
                contact = _next_contact(final, tried)
                if contact is not None:
                    redirects += 1
                    tried.add(str(contact))
                    request.uri = contact
                    self._next_attempt(request, fresh_credentials=True)
                    continue
            min_se = final.headers.get("min-se")
            if status == 422 and min_se is not None:
                with contextlib.suppress(RemoteProtocolError):
                    interval = parse_min_se(min_se)
                    request.headers.set("Session-Expires", str(interval))
                    request.headers.set("Min-SE", str(interval))
                    self._next_attempt(request, fresh_credentials=True)
                    continue
            await self._end(f"{status} {final.reason}".strip(), EndedBy.REMOTE, status)
            return

    def _next_attempt(self, request: Request, *, fresh_credentials: bool = False) -> None:
        """§8.1.3.4, §22.2: the same Call-ID and tags, a higher CSeq and a new branch;
        credentials computed again for a changed request (a new nonce count)."""
        request.headers.remove("Via")
        request.headers.set("CSeq", f"{request.cseq.seq + 1} INVITE")
        if fresh_credentials and self.ua.digest is not None:
            self.ua.digest.apply_cached(request)

    # -- responses ----------------------------------------------------------------------------
    def _on_response(self, request: Request, response: Response) -> None:
        status = response.status
        try:
            dialog = self.ua.dialogs.receive_uac_response(request, response)
        except RemoteProtocolError as exc:
            log.info("ignoring %s: %s", response, exc.reason)
            return
        if status < 200:
            self._progress(response, dialog)
        elif status < 300 and dialog is not None:
            self._on_2xx(request, response, dialog)

    def _progress(self, response: Response, dialog: Dialog | None) -> None:
        if self.state is CallState.ENDED or self.state is CallState.ANSWERED:
            return
        early = False
        if dialog is not None:
            self.ua.bind_dialog(dialog, self)  # type: ignore[arg-type]
            if response.body and response.content_type == "application/sdp":
                try:
                    self.media.receive_answer(response.body)
                    self.media.start()
                    early = True  # RFC 3960: play what the network sends before the answer
                except RemoteProtocolError as exc:
                    log.info("early media SDP ignored: %s", exc.reason)
        self.state = CallState.PROCEEDING if response.status == 100 else CallState.RINGING
        self._emit(CallProgressed(response.status, response.reason, early))

    def _on_2xx(self, request: Request, response: Response, dialog: Dialog) -> None:
        self.ua.bind_dialog(dialog, self)  # type: ignore[arg-type]
        if self._confirming is None:
            self._confirming = set()
        key = dialog.remote_tag
        if key in self._confirming:
            # A retransmission (the ACK was lost): the same ACK again (§13.2.2.4).
            cached = self._acks.get(request.cseq.seq)
            if cached is not None and dialog is self.dialog:
                self.ua.endpoint.transports.send(cached[0], cached[1])
            return
        self._confirming.add(key)
        if self.dialog is None or self.dialog.is_early or self.dialog is dialog:
            if self.dialog is not None and self.dialog is not dialog and self.dialog.is_early:
                self.dialog.terminate()  # another fork answered first (§13.2.2.4)
            self.dialog = dialog
            self._spawn(self._confirm(request, response, dialog))
        else:
            self._spawn(self._ack_and_bye(request, dialog))

    async def _confirm(self, request: Request, response: Response, dialog: Dialog) -> None:
        target = await self.ua.resolve(dialog.next_hop())
        self._send_ack(dialog, request, target)
        if self.state is CallState.ENDED:
            await self._bye(dialog)
            return
        if response.body:
            try:
                self.media.receive_answer(response.body)
            except RemoteProtocolError as exc:
                await self._bye(dialog)
                await self._end(f"bad SDP answer: {exc.reason}", EndedBy.REMOTE, 488)
                return
        elif self.media.stream is None:
            await self._bye(dialog)
            await self._end("the 2xx carried no SDP answer", EndedBy.REMOTE, 488)
            return
        with contextlib.suppress(RemoteProtocolError):
            self.session_timer = uac_timer_from_response(response)
        self.state = CallState.ANSWERED
        self.media.start()
        if not self.answered.done():
            self.answered.set_result(None)
        who = who_answered(response)
        self._emit(
            CallAnswered(
                self.media.codec, who.identity, who.contact, who.forwarded_from, who.forward_reason
            )
        )
        self._arm_session_timer()
        if self._cancel_requested:  # the 2xx crossed our CANCEL: the call goes anyway
            await self._bye(dialog)
            await self._end("cancelled (answered as the CANCEL went out)", EndedBy.LOCAL)

    async def _ack_and_bye(self, request: Request, dialog: Dialog) -> None:
        """A second fork answered: confirm its dialog, then end it (§13.2.2.4)."""
        target = await self.ua.resolve(dialog.next_hop())
        self._send_ack(dialog, request, target)
        await self._bye(dialog)

    # -- CANCEL (§9.1) ---------------------------------------------------------------------
    async def _cancel(self) -> None:
        self._cancel_requested = True
        ct = self._invite_ct
        if ct is None:
            return  # _place sees the flag before sending
        ct.cancel()
        limit = 64 * self.ua.config.timers.t1
        try:
            await asyncio.wait_for(asyncio.shield(self.ended), limit)
        except TimeoutError:
            # §9.1: no final response 64*T1 after the CANCEL: the INVITE is over.
            self.ua.endpoint.transactions.terminate(ct.key)
            await self._end("cancelled (no answer to CANCEL)", EndedBy.LOCAL, 487)


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
