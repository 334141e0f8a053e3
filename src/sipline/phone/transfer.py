"""Blind transfer (RFC 3515, RFC 5589 §6): REFER, and NOTIFY carrying message/sipfrag.

The transferor sends REFER with Refer-To; the transferee answers 202, calls the
target, and reports how that call fares in NOTIFYs (RFC 3515 §2.4.4-§2.4.5). When the
transferor hears the 2xx it hangs up (RFC 5589 §6.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.views import NameAddr, parse_name_addr
from sipline.phone.call_context import CallContext
from sipline.phone.events import (
    CallFailed,
    CallTransferred,
    TransferProgressed,
    TransferRequested,
    UserAgentError,
)
from sipline.phone.session import InviteSession
from sipline.runtime.endpoint import ServerTransaction

__all__ = ["Transfer", "parse_sipfrag_status"]

log = logging.getLogger("sipline.ua")

_SIPFRAG = "message/sipfrag;version=2.0"
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6]\d\d)(?: ([^\r\n]*))?")


def parse_sipfrag_status(body: bytes) -> tuple[int, str] | None:
    """The status line of a message/sipfrag body (RFC 3420), e.g. (200, "OK")."""
    first = body.decode("utf-8", "replace").lstrip().split("\n", 1)[0].strip()
    match = _STATUS_LINE.fullmatch(first)
    if match is None:
        return None
    return int(match.group(1)), (match.group(2) or "").strip()


class Transfer:
    """Blind transfer for one call, both as transferor and as transferee."""

    def __init__(self, call: CallContext, session: InviteSession) -> None:
        self.call = call
        self.session = session
        self._result: asyncio.Future[tuple[int, str]] | None = None

    async def transfer(self, target: str, *, hangup: bool, timeout_s: float) -> bool:
        dialog = self.session.dialog
        if dialog is None or not dialog.is_confirmed:
            raise UserAgentError("only an answered call can be transferred")
        self._result = asyncio.get_running_loop().create_future()
        local: NameAddr = self.call.local
        response = await self.session.request(
            "REFER",
            extra=[("Refer-To", f"<{target}>"), ("Referred-By", f"<{local.uri_text}>")],
            contact=True,
        )
        if not 200 <= response.status < 300:
            self._result = None
            return False
        timers = self.session.agent.endpoint.timers
        try:
            status, _ = await timers.wait_for(asyncio.shield(self._result), timeout_s)
        except TimeoutError:
            return False
        finally:
            self._result = None
        ok = 200 <= status < 300
        if ok and hangup and self.call.is_active:
            await self.call.hangup()
        return ok

    # -- the transferee ----------------------------------------------------------------------
    async def on_refer(self, st: ServerTransaction) -> None:
        call = self.call
        request = st.request
        value = request.headers.get("refer-to")
        if value is None:
            st.respond(400, "Bad Request (REFER without Refer-To)")
            return
        try:
            refer_to = parse_name_addr(value, "Refer-To")
        except RemoteProtocolError as exc:
            st.respond(400, exc.reason)
            return
        target = refer_to.uri_text.split("?", 1)[0]  # no Replaces: a blind transfer
        accepted = await call.allow_transfer(target)
        call.emit(TransferRequested(target, accepted))
        if not accepted:
            st.respond(603, "Decline (transfer refused)")
            return
        st.respond(202)
        event = f"refer;id={request.cseq.seq}"
        await self._notify(event, "SIP/2.0 100 Trying", terminated=False)
        referred_by = request.headers.get("referred-by") or str(call.remote)
        try:
            new_call = await call.place_transfer(target, referred_by)
        except (UserAgentError, ValueError) as exc:
            await self._notify(event, "SIP/2.0 400 Bad Request", terminated=True)
            log.info("transfer to %s failed: %s", target, exc)
            return
        call.emit(CallTransferred(new_call))
        try:
            await new_call.answered
            status, reason = 200, "OK"
        except CallFailed as exc:
            status, reason = exc.status or 500, exc.reason
        await self._notify(event, f"SIP/2.0 {status} {reason}", terminated=True)

    async def _notify(self, event: str, status_line: str, *, terminated: bool) -> None:
        state = "terminated;reason=noresource" if terminated else "active;expires=60"
        dialog = self.session.dialog
        if dialog is None or dialog.terminated:
            return
        with contextlib.suppress(LocalProtocolError, RemoteProtocolError, OSError):
            await self.session.request(
                "NOTIFY",
                body=f"{status_line}\r\n".encode(),
                content_type=_SIPFRAG,
                extra=[("Event", event), ("Subscription-State", state)],
                contact=True,
            )

    # -- the transferor hears back ----------------------------------------------------------
    def on_notify(self, st: ServerTransaction) -> None:
        request = st.request
        event = (request.headers.get("event") or "").split(";", 1)[0].strip().lower()
        if event != "refer":
            st.respond(489, "Bad Event")
            return
        st.respond(200)
        parsed = parse_sipfrag_status(request.body)
        if parsed is None:
            return
        status, reason = parsed
        self.call.emit(TransferProgressed(status, reason))
        result = self._result
        if status >= 200 and result is not None and not result.done():
            result.set_result(parsed)
