"""A request for a domain we serve is routed by the location service, never through
DNS (RFC 3261 §16.5): the 2xx ACK a UA sends to the callee's address-of-record
without a Route (pyVoIP does), a Route naming a served domain, and `localhost` served."""

from __future__ import annotations

import pytest
from server_helpers import USERS, ServerFactory, UAFactory, server_target
from sipua import TestUA, ring_then

from sipline.core.message import Request, Response
from sipline.server.sip_server import SipServer


async def _registered(server: SipServer, make_ua: UAFactory, aor: str) -> TestUA:
    ua = await make_ua(server)
    user = aor.partition("@")[0]
    done = await ua.register(aor, USERS[user], expires=600)
    assert done.final.status == 200, done.final.reason
    return ua


async def _call(server: SipServer, caller: TestUA, frm: str, to: str) -> tuple[Request, Response]:
    request = caller.build(
        "INVITE", f"sip:{to}", from_=frm, to=to, contact=caller.contact(frm.partition("@")[0])
    )
    user = frm.partition("@")[0]
    call = await caller.send_authenticated(request, user, USERS[user])
    assert call.final.status == 200
    return call.request, call.final


def _ack_to(uri: str, invite: Request, answer: Response, routes: list[str]) -> Request:
    """§13.2.2.4 as pyVoIP sends it: to `uri` (not the 2xx's Contact)."""
    ack = Request("ACK", uri)
    h = ack.headers
    h.add("Max-Forwards", "70")
    for route in routes:
        h.add("Route", route)
    h.add("From", invite.headers.get("from") or "")
    h.add("To", answer.headers.get("to") or "")
    h.add("Call-ID", invite.call_id)
    h.add("CSeq", f"{invite.cseq.seq} ACK")
    h.add("Content-Length", "0")
    return ack


def _send(ua: TestUA, request: Request) -> None:
    request.headers.add("Via", ua.ep.via_value(ua.server, ua.ep.new_branch()), first=True)
    ua.ep.send_stateless(request, ua.server)


@pytest.mark.parametrize("domain", ["example.com", "localhost"])
async def test_2xx_ack_to_the_address_of_record_reaches_the_device(
    make_server: ServerFactory, make_ua: UAFactory, domain: str
) -> None:
    server = await make_server(domains=["example.com", "localhost"], record_route=False)
    assert server.store is not None
    for user, password in USERS.items():
        await server.store.write(server.store.store.add_user, user, "localhost", password)
    bob = await _registered(server, make_ua, f"bob@{domain}")
    bob.on_invite = ring_then(200)
    caller = await make_ua(server)
    invite, answer = await _call(server, caller, f"alice@{domain}", f"bob@{domain}")
    _send(caller, _ack_to(f"sip:bob@{domain}", invite, answer, []))
    await bob.wait_for(lambda: len(bob.acks) == 1, timeout=5.0)
    assert bob.acks[0].call_id == invite.call_id


async def test_route_naming_a_served_domain_is_ours(server: SipServer, make_ua: UAFactory) -> None:
    bob = await _registered(server, make_ua, "bob@example.com")
    caller = await make_ua(server)
    request = caller.build(
        "MESSAGE", "sip:bob@example.com", from_="alice@example.com", to="bob@example.com",
        extra=[("Route", "<sip:example.com;lr>"), ("Content-Type", "text/plain")], body=b"hi",
    )  # fmt: skip
    done = await caller.send_authenticated(request, "alice", USERS["alice"])
    assert done.final.status == 200, done.final.reason
    [got] = bob.requests("MESSAGE")
    assert got.headers.get("route") is None
    assert server_target(server).port  # the server is still there


async def test_2xx_ack_to_a_user_with_two_devices_reaches_both(
    server: SipServer, make_ua: UAFactory
) -> None:
    """The proxy cannot tell which device answered: each gets the ACK, and the one
    without the dialog drops it (§12.2.2)."""
    one = await _registered(server, make_ua, "bob@example.com")
    two = await _registered(server, make_ua, "bob@example.com")
    one.on_invite = ring_then(200)
    two.on_invite = lambda ua, st: ua.answer_invite(st, 180)
    caller = await make_ua(server)
    invite, answer = await _call(server, caller, "alice@example.com", "bob@example.com")
    _send(caller, _ack_to("sip:bob@example.com", invite, answer, []))
    await one.wait_for(lambda: len(one.acks) == 1, timeout=5.0)
    await two.wait_for(lambda: len(two.acks) == 1, timeout=5.0)
