"""Call detail records from the messages the server sends and receives.

The proxy forwards; it keeps no dialog state. What a call record needs is on the
wire, seen from the server (RFC 3261 §13, §15, §16):
- an INVITE received without To tag starts a call (caller: the From AOR; callee: the
  Request-URI as dialled; the source address);
- the INVITE forwarded onwards names the target and, after a forward, who diverted
  it (RFC 5806 Diversion; RFC 7044 History-Info);
- the final response sent back to the caller: a 2xx answers (its Contact is the device
  that answered, §13.3.1.4), anything else ends the attempt (487 after the caller's
  CANCEL, §9.2; 401/407 asks for credentials, and the caller's next INVITE on the same
  Call-ID re-opens the record);
- a BYE received ends an answered call; whose it was is told by its From tag (§12.2.1.1).

Each step becomes one store update keyed by Call-ID (storage/sqlite_ops.py), written
in batches, so several workers complete one record between them.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import SipUri
from sipline.server.records.metrics import Metrics
from sipline.storage.ops import CallUpdate

__all__ = ["CallTracker"]

log = logging.getLogger("sipline.calls")

_KEEP = 20_000  # calls remembered in memory (for log lines and who hung up)
_ANGLE = re.compile(r"<([^>]*)>")


@dataclass(slots=True)
class _Call:
    started_at: float
    answered_at: float | None = None
    target: str | None = None
    forwarded_by: str | None = None
    downstream_final: int | None = None
    final_sent: tuple[int, int] | None = None  # (CSeq, status): retransmissions are skipped


def _aor(message: Request | Response, which: str) -> str:
    try:
        uri = (message.from_ if which == "from" else message.to).uri
    except RemoteProtocolError:
        return "?"
    return uri.aor if isinstance(uri, SipUri) else str(uri)


def _uri_of(value: str) -> str:
    """The URI of a name-addr or addr-spec as written (`"Bob" <sip:b@x;lr>;p=1`)."""
    found = _ANGLE.search(value)
    return found.group(1) if found else value.split(";", maxsplit=1)[0].strip()


def _diverted_by(request: Request) -> str | None:
    """Who forwarded the call: the top Diversion (RFC 5806 §4: the last diversion is
    listed first) or the History-Info entry before the target (RFC 7044)."""
    diversion = request.headers.get_all("Diversion")
    if diversion:
        return _uri_of(diversion[0].split(",")[0])
    history = request.headers.get_all("History-Info")
    entries = [e for h in history for e in h.split(",")]
    if len(entries) >= 2:
        return _uri_of(entries[-2]).split("?")[0]
    return None


def _contact(message: Request | Response) -> str | None:
    """The first Contact's URI (§13.3.1.4: the device that answered)."""
    try:
        contacts = message.contacts
    except RemoteProtocolError:
        return None
    return contacts[0].uri_text if contacts else None


class CallTracker:
    def __init__(self, metrics: Metrics | None, write: Callable[[CallUpdate], None]) -> None:
        self.metrics = metrics
        self.write = write
        self.calls: OrderedDict[str, _Call] = OrderedDict()
        self.ended: OrderedDict[str, None] = OrderedDict()  # BYEs seen (retransmissions)

    def _remember(self, call_id: str, call: _Call) -> None:
        self.calls[call_id] = call
        self.calls.move_to_end(call_id)
        while len(self.calls) > _KEEP:
            self.calls.popitem(last=False)

    def downstream_final(self, call_id: str, status: int) -> None:
        """A final response ≥ 300 to an INVITE we forwarded: the callee's answer."""
        call = self.calls.get(call_id)
        if call is not None:
            call.downstream_final = status

    def observe(self, sent: bool, message: Request | Response, source: str, at: float) -> None:
        """One INVITE-dialog message, `source` (transport:host:port) is the peer."""
        try:
            call_id = message.call_id
            cseq = message.cseq
        except RemoteProtocolError:
            return
        if isinstance(message, Request):
            self._request(sent, message, call_id, source, at)
        elif cseq.method == "INVITE":
            self._invite_response(sent, message, call_id, cseq.seq, at)

    def _request(self, sent: bool, request: Request, call_id: str, source: str, at: float) -> None:
        method = request.method
        try:
            to_tag = request.to.tag
            from_tag = request.from_.tag or ""
        except RemoteProtocolError:
            return
        if method == "INVITE" and to_tag is None:
            if sent:  # forwarded onwards: the target, and who diverted the call there
                call = self.calls.get(call_id)
                if call is not None:
                    call.target = request.uri_text
                    call.forwarded_by = _diverted_by(request) or call.forwarded_by
                return
            if call_id in self.calls and self.calls[call_id].answered_at is None:
                # a retransmission, or the same call again with credentials
                pass
            else:
                caller, callee = _aor(request, "from"), request.uri_text
                if self.metrics is not None:
                    self.metrics.calls_started.inc()
                log.info(
                    "call started call_id=%s from=%s to=%s src=%s",
                    call_id,
                    caller,
                    callee,
                    source,
                    extra={
                        "event": "call_started",
                        "call_id": call_id,
                        "user": caller,
                        "src": source,
                    },
                )
            self._remember(call_id, self.calls.get(call_id) or _Call(at))
            caller, callee = _aor(request, "from"), request.uri_text
            self.write(("cdr_start", (call_id, caller, from_tag, callee, source, at)))
        elif method == "BYE" and not sent:
            if call_id in self.ended:
                return  # a retransmission (§17.2.2), or the other side's BYE too
            self.ended[call_id] = None
            while len(self.ended) > _KEEP:
                self.ended.popitem(last=False)
            call = self.calls.pop(call_id, None)
            if call is not None and call.answered_at is not None:
                duration = f" duration={at - call.answered_at:.1f}s"
            else:
                duration = ""
            log.info(
                "call ended call_id=%s by=%s src=%s%s",
                call_id,
                _aor(request, "from"),
                source,
                duration,
                extra={"event": "call_ended", "call_id": call_id, "src": source},
            )
            self.write(("cdr_ended", (call_id, at, from_tag)))

    def _invite_response(
        self, sent: bool, response: Response, call_id: str, seq: int, at: float
    ) -> None:
        status = response.status
        call = self.calls.get(call_id)
        if not sent:
            if call is not None and status >= 300:
                call.downstream_final = status
            return
        if status < 200:
            if status in (180, 183):
                self.write(("cdr_ringing", (call_id, at)))
            return
        if status < 300:
            if call is None or call.answered_at is not None:
                return  # a 2xx retransmission (§13.3.1.4)
            call.answered_at = at
            by = _contact(response) or call.target
            forwarded = call.forwarded_by
            if self.metrics is not None:
                self.metrics.calls.labels("answered").inc()
            log.info(
                "call answered call_id=%s by=%s after=%.1fs",
                call_id,
                by,
                at - call.started_at,
                extra={"event": "call_answered", "call_id": call_id},
            )
            self.write(("cdr_answered", (call_id, at, by, forwarded)))
            return
        if call is None or call.final_sent == (seq, status):
            return  # a retransmission (§17.2.1), or a call this process did not start
        call.final_sent = (seq, status)
        reason = response.reason
        if status in (401, 407):
            outcome = "challenged"
        elif status == 487:
            outcome = "cancelled"
        else:
            outcome = "failed"
        if self.metrics is not None:
            self.metrics.calls.labels(outcome).inc()
        if outcome != "challenged":
            self.calls.pop(call_id, None)
            log.info(
                "call %s call_id=%s status=%d %s",
                outcome,
                call_id,
                status,
                reason,
                extra={"event": f"call_{outcome}", "call_id": call_id, "status": status},
            )
        if status == 487:
            hangup: str | None = "caller"
        elif status in (401, 407):
            hangup = None
        elif call.downstream_final == status:
            hangup = "callee"
        else:
            hangup = "server"
        self.write(("cdr_failed", (call_id, at, status, reason, hangup)))
