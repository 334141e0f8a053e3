"""Ending an answered call from the server (the API's DELETE /api/calls/ID): a BYE to
each side, built from the call's messages as the server saw them.

The server is a proxy in the path (it record-routed, §16.6 step 4), not a UA: it sends
each side a BYE as if from the other, in that dialog (§12.2.1.1): toward the callee
From = the caller's From (with tag), To = the 2xx's To (with the callee's tag), the
Request-URI the callee's Contact; toward the caller the mirror image, to the Contact
of its INVITE. Each goes to the address that side's messages came from (a registered
device: over its flow, whichever worker or node holds it), with a CSeq above any that
side's peer used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from sipline.core.builders import build_request
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response, parse_message
from sipline.core.uri import parse_uri
from sipline.core.views import NameAddr
from sipline.runtime.endpoint import Endpoint
from sipline.server.hops import Hop
from sipline.storage.ops import TracedMessage
from sipline.transport.base import Target

__all__ = ["ContactHops", "plan_hangup", "send_hangup"]

log = logging.getLogger("sipline.calls")


def _contact(message: Request | Response) -> str | None:
    try:
        contacts = message.contacts
    except RemoteProtocolError:
        return None
    return contacts[0].uri_text if contacts else None


def plan_hangup(messages: list[TracedMessage]) -> list[tuple[Request, str, str]] | None:
    """The two BYEs (request without Via, transport, host:port to send to), or None
    when the call was not answered (nothing to end)."""
    invite_in: tuple[TracedMessage, Request] | None = None
    ok: tuple[TracedMessage, Response] | None = None
    caller_cseq = 0
    for m in messages:
        try:
            parsed = parse_message(m.data, stream=m.transport != "UDP")
        except RemoteProtocolError:
            continue
        if isinstance(parsed, Request) and not m.sent:
            if parsed.method == "INVITE" and invite_in is None:
                invite_in = (m, parsed)
            with contextlib.suppress(RemoteProtocolError):
                if invite_in is not None and parsed.from_.tag == invite_in[1].from_.tag:
                    caller_cseq = max(caller_cseq, parsed.cseq.seq)
        elif isinstance(parsed, Response) and not m.sent and ok is None:
            with contextlib.suppress(RemoteProtocolError):
                if 200 <= parsed.status < 300 and parsed.cseq.method == "INVITE":
                    ok = (m, parsed)
    if invite_in is None or ok is None:
        return None
    inv_msg, invite = invite_in
    ok_msg, answer = ok
    callee_contact, caller_contact = _contact(answer), _contact(invite)
    if callee_contact is None or caller_contact is None:
        return None
    try:
        caller, callee = invite.from_, answer.to
        call_id = invite.call_id
    except RemoteProtocolError:
        return None
    to_callee = build_request(
        "BYE",
        parse_uri(callee_contact),
        from_=caller,
        to=callee,
        call_id=call_id,
        cseq=caller_cseq + 1,
        via="SIP/2.0/UDP 0.0.0.0",
        extra=[("Reason", 'SIP;cause=200;text="Ended by the operator"')],
    )
    to_caller = build_request(
        "BYE",
        parse_uri(caller_contact),
        from_=NameAddr(callee.uri_text, callee.display_name, callee.params.copy(), True),
        to=caller,
        call_id=call_id,
        cseq=1_000_001,
        via="SIP/2.0/UDP 0.0.0.0",
        extra=[("Reason", 'SIP;cause=200;text="Ended by the operator"')],
    )
    for request in (to_callee, to_caller):
        request.headers.remove("Via")  # ours goes on when it is sent
    return [
        (to_callee, ok_msg.transport, ok_msg.remote),
        (to_caller, inv_msg.transport, inv_msg.remote),
    ]


class ContactHops(Protocol):
    """Where a registered device is reached (`ServerBackend.contact_hop`)."""

    def contact_hop(self, request: Request) -> Hop | None: ...


async def send_hangup(
    endpoint: Endpoint, messages: list[TracedMessage], hops: ContactHops | None = None
) -> bool:
    """Send both BYEs and wait (briefly) for their answers; False if not answered. A
    side that is a registered device is reached over its flow (`hops`: whichever
    worker or node holds its connection); any other at the address its messages
    came from."""
    plan = plan_hangup(messages)
    if plan is None:
        return False
    waits = []
    for request, transport, address in plan:
        found = hops.contact_hop(request) if hops is not None else None
        h, _, p = address.rpartition(":")
        target = found.target if found is not None else Target(transport, h.strip("[]"), int(p))
        waits.append(endpoint.request(request, target))
    results = await asyncio.gather(*waits, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            log.info("BYE to end a call: %s", result)
    return True
