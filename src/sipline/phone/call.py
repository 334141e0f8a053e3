"""A call: placed (`outgoing.py`) or received (`incoming.py`), then in progress here:
hanging up (BYE, §15), hold and resume by re-INVITE (§14, RFC 3264 §8.4), session
refresh (RFC 4028), DTMF (RFC 4733 or SIP INFO), blind transfer (`transfer.py`), and
the requests the peer sends inside the dialog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from sipline.core.dialog import Dialog
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.phone.call_base import CallBase
from sipline.phone.config import ALLOW
from sipline.phone.events import (
    CallHeld,
    CallResumed,
    CallState,
    DtmfReceived,
    EndedBy,
    SessionRefreshed,
    UserAgentError,
)
from sipline.phone.incoming import IncomingMixin
from sipline.phone.outgoing import OutgoingMixin
from sipline.phone.session_timer import uac_request_headers, uac_timer_from_response, uas_decide
from sipline.phone.transfer import TransferMixin
from sipline.runtime.endpoint import ServerTransaction
from sipline.sdp import Direction

__all__ = ["Call"]


class Call(OutgoingMixin, IncomingMixin, TransferMixin, CallBase):
    """One call. Get one from `UserAgent.call` or from an incoming-call handler.

    Await `answered` (raises `CallFailed` if the call is not answered) and `ended`
    (the `CallEnded` reason); iterate `events()` or `add_listener` for the rest.
    """

    _local_direction: Direction = Direction.SENDRECV
    _uas_reinvite: bool = False  # a re-INVITE of theirs awaits our answer

    # -- ending ---------------------------------------------------------------------------------
    async def hangup(self) -> None:
        """End the call however far it got: CANCEL, reject (603) or BYE."""
        if self.state is CallState.ENDED:
            return
        if self.outgoing and self.state is not CallState.ANSWERED:
            await self._cancel()
            return
        if not self.outgoing and self.state is CallState.INCOMING:
            await self.reject(603, "Decline")
            return
        self._stop_retransmissions()
        await self._bye_and_end("hung up", EndedBy.LOCAL)

    async def wait(self) -> None:
        """Until the call has ended."""
        await asyncio.shield(self.ended)

    # -- hold and resume (RFC 3264 §8.4) ------------------------------------------------------
    async def hold(self, *, inactive: bool = False) -> bool:
        """Put the peer on hold: a re-INVITE offering sendonly (or inactive)."""
        direction = Direction.INACTIVE if inactive else Direction.SENDONLY
        if await self._reinvite(direction):
            self._local_direction = direction
            self._emit(CallHeld(by_remote=False))
            return True
        return False

    async def resume(self) -> bool:
        if await self._reinvite(Direction.SENDRECV):
            self._local_direction = Direction.SENDRECV
            self._emit(CallResumed(by_remote=False))
            return True
        return False

    async def _reinvite(self, direction: Direction) -> bool:
        """One re-INVITE at a time (§14.1); after 491 (glare) wait and retry (§14.1)."""
        if self.state is not CallState.ANSWERED or self.dialog is None:
            raise UserAgentError(f"cannot re-INVITE a call that is {self.state.value}")
        async with self._reinvite_lock:
            for attempt in range(3):
                media = self.media
                previous = (media.local_sdp, media.offered_direction)
                body = media.offer(direction)
                timer = self.session_timer
                policy = self.ua.config.session_timer
                interval = timer.interval_s if timer is not None else None
                refresher = "uac" if timer is not None and timer.we_refresh else None
                extra = uac_request_headers(policy, interval, refresher=refresher)
                self._reinvite_pending = True
                try:
                    response = await self._request(
                        "INVITE",
                        body=body,
                        content_type="application/sdp",
                        extra=extra,
                        contact=True,
                        on_response=self._ack_reinvite,
                    )
                finally:
                    self._reinvite_pending = False
                if 200 <= response.status < 300:
                    if response.body:
                        media.receive_answer(response.body)
                    with contextlib.suppress(RemoteProtocolError):
                        self.session_timer = uac_timer_from_response(response)
                    self._arm_session_timer()
                    return True
                media.restore(*previous)  # §14.1: a failed re-INVITE changes nothing
                if response.status != 491 or attempt == 2 or not self.is_active:
                    return False
                # §14.1: the Call-ID's owner waits 2.1-4 s, the other side 0-2 s.
                low, high = (2.1, 4.0) if self.outgoing else (0.0, 2.0)
                r = int.from_bytes(self.ua.entropy.random_bytes(2), "big") / 65535
                await asyncio.sleep(low + (high - low) * r)
            return False

    def _ack_reinvite(self, request: Request, response: Response) -> None:
        if 200 <= response.status < 300 and request.method == "INVITE" and self.dialog:
            dialog = self.dialog
            self._spawn(self._ack_later(request, dialog))

    async def _ack_later(self, request: Request, dialog: Dialog) -> None:
        target = await self.ua.resolve(dialog.next_hop())
        self._send_ack(dialog, request, target)

    # -- DTMF ---------------------------------------------------------------------------------
    async def send_dtmf(self, digits: str, *, method: str = "rtp", duration_ms: int = 100) -> None:
        """Send DTMF digits: RFC 4733 events in the RTP stream, or SIP INFO requests with
        application/dtmf-relay when `method="info"` (for peers without telephone-event)."""
        if self.state is not CallState.ANSWERED:
            raise UserAgentError("DTMF needs an answered call")
        if method == "info":
            for digit in digits:
                body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
                await self._request("INFO", body=body, content_type="application/dtmf-relay")
            return
        if method != "rtp":
            raise ValueError("method: 'rtp' or 'info'")
        if self.media.session.config.dtmf_payload_type is None:
            raise UserAgentError("the peer did not accept telephone-event; use method='info'")
        await self.media.session.send_dtmf(digits, duration_ms=duration_ms)

    # -- session timers (RFC 4028 §10) --------------------------------------------------------
    def _arm_session_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        timer = self.session_timer
        if timer is None or self.state is not CallState.ANSWERED:
            return
        loop = asyncio.get_running_loop()
        if timer.we_refresh:
            self._timer = loop.call_later(timer.refresh_after(), self._timer_fired, True)
        else:
            self._timer = loop.call_later(timer.expire_after(), self._timer_fired, False)

    def _timer_fired(self, refresh: bool) -> None:
        self._spawn(self._refresh() if refresh else self._expired())

    async def _refresh(self) -> None:
        self._timer = None
        if self.state is not CallState.ANSWERED:
            return
        ok = await self._reinvite(self.media.offered_direction)
        if not self.is_active:
            return
        if ok and self.session_timer is not None:
            self._emit(SessionRefreshed(self.session_timer.interval_s, by_remote=False))
            return
        # §10: a refresh that fails ends the session.
        await self._bye_and_end("session refresh failed (RFC 4028)", EndedBy.NETWORK)

    async def _expired(self) -> None:
        self._timer = None
        if self.state is not CallState.ANSWERED:
            return
        await self._bye_and_end("session expired without a refresh (RFC 4028)", EndedBy.NETWORK)

    # -- requests from the peer ----------------------------------------------------------------
    def _on_request(self, st: ServerTransaction) -> Awaitable[None] | None:
        method = st.request.method
        if method == "BYE":
            return self._on_bye(st)
        if method in ("INVITE", "UPDATE"):
            return self._on_reoffer(st)
        if method == "INFO":
            self._on_info(st)
        elif method == "REFER":
            return self._on_refer(st)
        elif method == "NOTIFY":
            self._on_notify(st)
        elif method == "OPTIONS":
            st.respond(200, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])
        else:
            st.respond(405, extra=[("Allow", ALLOW)])
        return None

    async def _on_bye(self, st: ServerTransaction) -> None:
        st.respond(200)
        if not self.outgoing and self.state is CallState.INCOMING and self._st is not None:
            with contextlib.suppress(LocalProtocolError):
                self._st.respond(487)  # §15.1.2: the pending INVITE is terminated
        self._stop_retransmissions()
        await self._end("the other side hung up", EndedBy.REMOTE)

    async def _on_reoffer(self, st: ServerTransaction) -> None:
        """A re-INVITE or UPDATE (§14.2, RFC 3311): a new offer, a refresh, or both."""
        request = st.request
        reinvite = request.method == "INVITE"
        if self.state is not CallState.ANSWERED:
            st.respond(491 if reinvite else 500)  # nothing to modify before the answer
            return
        if self._reinvite_pending:
            st.respond(491)  # §14.2: glare with our own re-INVITE
            return
        if self._uas_reinvite:
            st.respond(500, extra=[("Retry-After", "1")])  # §14.2: one at a time
            return
        decision = uas_decide(request, self.ua.config.session_timer)
        if decision.reject_min_se is not None:
            st.respond(422, extra=[("Min-SE", str(decision.reject_min_se))])
            return
        held_before = self.media.remote_hold
        self._uas_reinvite = True
        try:
            if request.body:
                body = self.media.answer(request.body, self._local_direction)  # 400/488
            elif reinvite:
                body = self.media.offer(self._local_direction)  # the ACK answers it
                self._expect_answer_in_ack(request.cseq.seq)
            else:
                body = b""
            extra = [("Contact", str(self.ua.contact())), *self.ua.headers(), *decision.headers]
            response = st.response(
                200, extra=extra, body=body, content_type="application/sdp" if body else None
            )
            st.send(response)
        finally:
            self._uas_reinvite = False
        if reinvite:
            self._retransmit_2xx(st, response)
        self.session_timer = decision.timer
        self._arm_session_timer()
        if decision.timer is not None:
            self._emit(SessionRefreshed(decision.timer.interval_s, by_remote=True))
        held_now = self.media.remote_hold
        if held_now != held_before:
            self._emit(CallHeld(by_remote=True) if held_now else CallResumed(by_remote=True))

    def _on_info(self, st: ServerTransaction) -> None:
        request = st.request
        if request.content_type != "application/dtmf-relay":
            st.respond(415, extra=[("Accept", "application/dtmf-relay")])
            return
        st.respond(200)
        for line in request.body.decode("utf-8", "replace").splitlines():
            name, _, value = line.partition("=")
            if name.strip().lower() == "signal" and value.strip():
                self._emit(DtmfReceived(value.strip().upper(), "info"))

    def _on_stray_2xx(self, response: Response) -> None:
        """A 2xx retransmitted after our INVITE transaction ended: ACK it again."""
        cached = self._acks.get(response.cseq.seq)
        if cached is not None:
            self.ua.endpoint.transports.send(cached[0], cached[1])
