"""Our Record-Route is signed (RFC 3261 §16.6 step 4, §19.1.1): an in-dialog request
passes the relay gate as "in a dialog we record-routed" only when the Route (or the
Request-URI after a strict router, §16.4) naming us carries the signature of its
dialog. A made-up To tag and a Route through us to a target of the sender's choosing
is an ordinary request naming its own target: a stranger gets 403.

Against a real `SipServer` over loopback UDP.
"""

from __future__ import annotations

import asyncio

import pytest
from server_helpers import DOMAIN, USERS, UAFactory, server_target
from sipua import HOST, TestUA

from sipline.core.message import Request
from sipline.core.uri import SipUri
from sipline.server.security.route_sign import PARAM, RouteSigner
from sipline.server.sip_server import SipServer
from sipline.transport import Target

BOB = f"bob@{DOMAIN}"
STRANGER = "anyone@evil.test"
METHODS = ["INVITE", "MESSAGE", "OPTIONS"]


async def registered(server: SipServer, make_ua: UAFactory, user: str) -> TestUA:
    ua = await make_ua(server)
    done = await ua.register(f"{user}@{DOMAIN}", USERS[user])
    assert done.final.status == 200
    return ua


def us(server: SipServer, params: str = "") -> str:
    item = server.endpoint.local_address("UDP")
    return f"sip:{item.host}:{item.port}{params}"


async def stranger_calls_bob(
    server: SipServer, make_ua: UAFactory
) -> tuple[TestUA, TestUA, Request]:
    """A stranger calls our user bob through the server: a dialog we record-route.
    Returns (caller, bob, the INVITE as bob received it)."""
    bob = await registered(server, make_ua, "bob")
    bob.on_invite = lambda ua, st: ua.answer_invite(st, 200)
    caller = await make_ua(server)
    invite = caller.build(
        "INVITE", f"sip:{BOB}", from_=STRANGER, to=BOB, contact=caller.contact("caller")
    )
    answered = await caller.send(invite)
    assert answered.final.status == 200
    [received] = bob.requests("INVITE")
    return caller, bob, received


def our_token(received: Request) -> str:
    [ours, *_] = received.record_routes
    assert isinstance(ours.uri, SipUri)
    token = ours.uri.params.get(PARAM)
    assert token
    return token


@pytest.mark.parametrize("method", METHODS)
async def test_made_up_to_tag_and_route_through_us_is_not_relayed(
    server: SipServer, make_ua: UAFactory, method: str
) -> None:
    """The attack: a foreign Request-URI, a made-up To tag, and a Route through us to
    a target of the sender's choosing (here loopback). Refused; nothing arrives."""
    target = await make_ua(server)
    attacker = await make_ua(server)
    request = attacker.build(
        method,
        "sip:+4930123456@203.0.113.9",
        from_=STRANGER,
        to="+4930123456@203.0.113.9",
        to_tag="made-up",
        extra=[("Route", f"<{us(server, ';lr')}>"), ("Route", f"<sip:{HOST}:{target.port};lr>")],
    )
    done = await attacker.send(request)
    assert done.final.status == 403
    await asyncio.sleep(0.1)
    assert target.requests(method) == []
    print(f"{method} with a To tag and a Route through us: {done.final.status}")


@pytest.mark.parametrize("method", METHODS)
async def test_strict_routed_request_naming_us_is_not_relayed(
    server: SipServer, make_ua: UAFactory, method: str
) -> None:
    """The same through a Request-URI naming us (a strict router's rewrite, §16.4):
    the real Request-URI is the last Route, of the sender's choosing."""
    target = await make_ua(server)
    attacker = await make_ua(server)
    request = attacker.build(
        method,
        us(server),
        from_=STRANGER,
        to="+4930123456@203.0.113.9",
        to_tag="made-up",
        extra=[("Route", f"<sip:+4930123456@{HOST}:{target.port}>")],
    )
    assert (await attacker.send(request)).final.status == 403
    await asyncio.sleep(0.1)
    assert target.requests(method) == []


async def test_forged_signature_is_refused(server: SipServer, make_ua: UAFactory) -> None:
    target = await make_ua(server)
    attacker = await make_ua(server)
    for forged in ("0" * 24, "abc", "ZZ"):
        request = attacker.build(
            "INVITE",
            f"sip:+4930123456@{HOST}:{target.port}",
            from_=STRANGER,
            to="+4930123456@203.0.113.9",
            to_tag="made-up",
            extra=[("Route", f"<{us(server, f';lr;{PARAM}={forged}')}>")],
        )
        assert (await attacker.send(request)).final.status == 403
    assert target.requests("INVITE") == []


async def test_signature_of_another_dialog_is_refused(
    server: SipServer, make_ua: UAFactory
) -> None:
    """A token taken from a real dialog through us, reused with another Call-ID (or
    other tags) to reach a target of the sender's choosing."""
    caller, _bob, received = await stranger_calls_bob(server, make_ua)
    token = our_token(received)
    target = await make_ua(server)
    route = [("Route", f"<{us(server, f';lr;{PARAM}={token}')}>")]
    other_call = caller.build(
        "MESSAGE",
        f"sip:+4930123456@{HOST}:{target.port}",
        from_=STRANGER,
        to="x@203.0.113.9",
        to_tag=received.from_.tag,
        extra=route,
    )
    assert other_call.call_id != received.call_id
    assert (await caller.send(other_call)).final.status == 403
    other_tags = caller.build(
        "MESSAGE",
        f"sip:+4930123456@{HOST}:{target.port}",
        from_=STRANGER,
        to="x@203.0.113.9",
        to_tag="made-up",
        call_id=received.call_id,
        extra=route,
    )
    assert (await caller.send(other_tags)).final.status == 403
    assert target.requests("MESSAGE") == []


async def test_callee_reaches_the_caller_through_our_signed_route(
    server: SipServer, make_ua: UAFactory
) -> None:
    """bob's requests back to a stranger caller (not a target we learnt: the signature
    admits them, checked against the To tag, the caller's): re-INVITE, then BYE."""
    caller, bob, received = await stranger_calls_bob(server, make_ua)
    caller.on_invite = lambda ua, st: ua.answer_invite(st, 200)
    bob_tag = bob.ep.new_tag()  # the callee's tag: signs nothing, the To tag does
    contact = received.contacts[0].uri_text
    for seq, method in enumerate(("INVITE", "BYE"), start=1):
        request = Request(method, contact)
        h = request.headers
        h.add("Max-Forwards", "70")
        for rr in received.record_routes:  # §12.1.1: the UAS's route set, in order
            h.add("Route", str(rr))
        h.add("From", f"<sip:{BOB}>;tag={bob_tag}")
        h.add("To", received.headers.get("from") or "")
        h.add("Call-ID", received.call_id)
        h.add("CSeq", f"{seq} {method}")
        h.add("Content-Length", "0")
        done = await bob.send(request)
        assert done.final.status == 200, method
    assert [st.request.method for st in caller.received] == ["INVITE", "BYE"]


def test_token_binds_call_id_and_tag() -> None:
    signer = RouteSigner(b"k" * 32)
    assert signer.token("c1", "t") == signer.token("c1", "t")
    assert signer.token("c1", "t") != signer.token("c2", "t")
    assert signer.token("c1", "t") != signer.token("c1", "u")
    assert RouteSigner(b"j" * 32).token("c1", "t") != signer.token("c1", "t")
    with pytest.raises(ValueError):
        RouteSigner(b"short")


async def test_ack_with_unsigned_route_through_us_is_not_relayed(
    server: SipServer, make_ua: UAFactory
) -> None:
    """The stateless ACK path (§16.11): a Route through us without our signature does
    not make a stranger's ACK part of our dialog."""
    target = await make_ua(server)
    attacker = await make_ua(server)
    ack = attacker.build(
        "ACK",
        "sip:+4930123456@203.0.113.9",
        from_=STRANGER,
        to_tag="2xx",
        extra=[("Route", f"<{us(server, ';lr')}>"), ("Route", f"<sip:{HOST}:{target.port};lr>")],
    )
    to_server = server_target(server)
    ack.headers.add("Via", attacker.ep.via_value(to_server, "z9hG4bK-ack-rr"), first=True)
    attacker.ep.send_stateless(ack, to_server)
    control = attacker.build("OPTIONS", f"sip:{HOST}:{target.port}", from_=STRANGER)
    await attacker.send(control, Target("UDP", HOST, target.port))  # sent straight to it
    await asyncio.sleep(0.2)  # time for a relayed ACK to arrive
    assert target.acks == []
