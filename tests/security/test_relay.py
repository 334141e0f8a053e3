"""No relaying for strangers (README "Running on the Internet"), against a real
`SipServer` over loopback UDP.

A request whose target comes from the request itself (a Request-URI outside our
domains, a Route past ours) is proxied only for an authenticated local user or a
trusted peer; loopback and internal addresses are never such a target unless a
`[[trusted]]` rule names them. Our users' registered contacts (here on loopback)
stay reachable: they come from the location service.
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_network

import pytest
from server_helpers import DOMAIN, USERS, ServerFactory, UAFactory, server_target
from sipua import HOST, TestUA

from sipline.runtime.endpoint import Endpoint
from sipline.server.security.dialog_targets import DialogTargets
from sipline.server.security.relay import TrustedPeer
from sipline.server.sip_server import SipServer
from sipline.transport import Target

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
STRANGER = "anyone@evil.test"


async def registered(server: SipServer, make_ua: UAFactory, user: str) -> TestUA:
    ua = await make_ua(server)
    done = await ua.register(f"{user}@{DOMAIN}", USERS[user])
    assert done.final.status == 200
    return ua


@pytest.mark.parametrize("method", ["INVITE", "MESSAGE", "OPTIONS"])
async def test_stranger_cannot_relay_to_a_loopback_target(
    server: SipServer, make_ua: UAFactory, method: str
) -> None:
    """The attack of the report: no credentials, a foreign From, a Request-URI naming
    a number at a loopback port. Refused with 403, nothing reaches the target."""
    target = await make_ua(server)
    target.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    attacker = await make_ua(server)
    ruri = f"sip:+4930123456@{HOST}:{target.port}"
    request = attacker.build(method, ruri, from_=STRANGER, to=f"+4930123456@{HOST}")
    done = await attacker.send(request)
    assert done.final.status == 403
    assert target.requests(method) == []
    print(f"{method} relay attempt from a stranger: {done.final.status} {done.final.reason}")


@pytest.mark.parametrize("method", ["INVITE", "MESSAGE", "OPTIONS"])
async def test_stranger_to_a_foreign_domain_is_challenged_then_refused(
    server: SipServer, make_ua: UAFactory, method: str
) -> None:
    """A foreign Request-URI (not an internal address): a stranger is challenged in our
    realm, and refused once the credentials fail."""
    attacker = await make_ua(server)
    request = attacker.build(method, "sip:+4930123456@203.0.113.9", from_=STRANGER)
    first = await attacker.send(request)
    assert first.final.status == 407
    assert DOMAIN in (first.final.headers.get("proxy-authenticate") or "")
    wrong = await attacker.send(attacker.answer(request, first.final, "alice", "guess"))
    assert wrong.final.status == 403


async def test_stranger_cannot_relay_through_a_route(server: SipServer, make_ua: UAFactory) -> None:
    """A Route past ours names the next hop: the same rule as a foreign Request-URI."""
    target = await make_ua(server)
    attacker = await make_ua(server)
    item = server.endpoint.local_address("UDP")
    request = attacker.build(
        "INVITE",
        f"sip:{BOB}",
        from_=STRANGER,
        to=BOB,
        extra=[
            ("Route", f"<sip:{item.host}:{item.port};lr>"),
            ("Route", f"<sip:{HOST}:{target.port};lr>"),
        ],
    )
    assert (await attacker.send(request)).final.status == 403
    assert target.requests("INVITE") == []


async def test_authenticated_local_user_may_call_a_foreign_domain(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    """Our user, authenticated, reaches a foreign target: here a loopback peer standing
    for another domain's proxy, which a trusted rule names (loopback is never a target
    otherwise). The rule names the peer's port only, so its requests are not trusted."""
    peer_ep = Endpoint()
    await peer_ep.bind("UDP", HOST, 0)
    elsewhere = TestUA(peer_ep, Target("UDP", HOST, 9), "UDP")
    elsewhere.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    try:
        rule = TrustedPeer(ip_network(f"{HOST}/32"), "other-domain", port=elsewhere.port)
        server = await make_server(trusted=[rule])
        caller = await make_ua(server)
        ruri = f"sip:dave@{HOST}:{elsewhere.port}"
        stranger = caller.build("INVITE", ruri, from_=STRANGER, to=f"dave@{HOST}")
        first = await caller.send(stranger)
        assert first.final.status == 407  # a stranger: challenged, not relayed
        request = caller.build("INVITE", ruri, from_=ALICE, to=f"dave@{HOST}")
        done = await caller.send_authenticated(request, "alice", USERS["alice"])
        assert done.final.status == 486
        [forwarded] = elsewhere.requests("INVITE")
        assert forwarded.headers.get("proxy-authorization") is None  # consumed
    finally:
        await elsewhere.close()


async def test_local_user_without_credentials_cannot_relay(
    server: SipServer, make_ua: UAFactory
) -> None:
    caller = await make_ua(server)
    request = caller.build("INVITE", "sip:+4930123456@203.0.113.9", from_=ALICE)
    first = await caller.send(request)
    assert first.final.status == 407
    wrong = await caller.send(caller.answer(request, first.final, "alice", "nope"))
    assert wrong.final.status == 407  # a local user's typo is challenged again (§22.3)


async def test_calls_to_our_users_still_reach_their_loopback_contacts(
    server: SipServer, make_ua: UAFactory
) -> None:
    """Registered contacts on loopback come from the location service: reachable from
    a stranger and from a local user alike."""
    bob = await registered(server, make_ua, "bob")
    bob.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    stranger = await make_ua(server)
    invite = stranger.build("INVITE", f"sip:{BOB}", from_=STRANGER, to=BOB)
    assert (await stranger.send(invite)).final.status == 486
    alice = await make_ua(server)
    invite = alice.build("INVITE", f"sip:{BOB}", from_=ALICE, to=BOB)
    assert (await alice.send_authenticated(invite, "alice", USERS["alice"])).final.status == 486
    assert len(bob.requests("INVITE")) == 2


async def test_trusted_peer_relays_without_credentials(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    """A `[[trusted]]` peer (a trunk): proxied without credentials, to a target the rule
    names, even with one of our domains in From."""
    server = await make_server(trusted=[TrustedPeer(ip_network("127.0.0.0/8"), "trunk")])
    target = await make_ua(server)
    target.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    peer = await make_ua(server)
    for from_ in (STRANGER, ALICE):
        ruri = f"sip:+4930123456@{HOST}:{target.port}"
        request = peer.build("INVITE", ruri, from_=from_, to=f"+4930123456@{HOST}")
        assert (await peer.send(request)).final.status == 486
    assert len(target.requests("INVITE")) == 2


async def test_internal_networks_are_never_a_target_named_by_a_request(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    """`[security] internal_networks`: refused even for an authenticated user."""
    server = await make_server(internal_networks=[ip_network("10.0.0.0/8")])
    caller = await make_ua(server)
    for host in ("10.1.2.3", "169.254.1.1", "[::1]", "[::ffff:127.0.0.1]"):
        request = caller.build("INVITE", f"sip:x@{host}:5060", from_=ALICE)
        done = await caller.send_authenticated(request, "alice", USERS["alice"])
        assert done.final.status == 403, host


@pytest.mark.parametrize("ruri", ["urn:service:sos", f"sip:112@{DOMAIN}"])
async def test_emergency_calls_are_never_refused_by_the_relay_rule(
    make_server: ServerFactory, ruri: str
) -> None:
    """A stranger's emergency call reaches the PSAP (RFC 5031, README "Emergency
    calls"), though the PSAP is on loopback and the caller has no credentials."""
    psap_ep = Endpoint()
    await psap_ep.bind("UDP", HOST, 0)
    psap = TestUA(psap_ep, Target("UDP", HOST, 9), "UDP")
    psap.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    try:
        server = await make_server(emergency_psap=f"sip:psap@{HOST}:{psap.port}")
        caller = await TestUA.start(server_target(server))
        try:
            request = caller.build("INVITE", ruri, from_=STRANGER, to=f"sos@{DOMAIN}")
            done = await caller.send(request)
        finally:
            await caller.close()
        assert done.final.status == 486  # the PSAP's answer
        assert len(psap.requests("INVITE")) == 1
    finally:
        await psap.close()


async def test_trusted_peer_may_learn_and_leave_messages_strangers_may_not(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    """For an offline user a trusted peer gets what our users get (480 for a known user,
    a stored message); a stranger gets 404 whether the user exists or not."""
    trusting = await make_server(trusted=[TrustedPeer(ip_network(f"{HOST}/32"))])
    stranger_server = await make_server()
    for server, expected in ((trusting, (480, 404, 202)), (stranger_server, (404, 404, 404))):
        ua = await make_ua(server)
        known = ua.build("INVITE", f"sip:carol@{DOMAIN}", from_=STRANGER, to=f"carol@{DOMAIN}")
        missing = ua.build("INVITE", f"sip:nobody@{DOMAIN}", from_=STRANGER, to=f"x@{DOMAIN}")
        message = ua.build("MESSAGE", f"sip:carol@{DOMAIN}", from_=STRANGER, to=f"carol@{DOMAIN}")
        message.set_body(b"hi", "text/plain")
        got = [(await ua.send(r)).final.status for r in (known, missing, message)]
        assert tuple(got) == expected


async def test_a_strangers_ack_is_not_relayed(server: SipServer, make_ua: UAFactory) -> None:
    """An ACK for a 2xx is forwarded statelessly (§16.11): a stranger's naming its own
    target (no dialog of ours) is dropped, like any request it would have relayed."""
    target = await make_ua(server)
    attacker = await make_ua(server)
    ack = attacker.build(
        "ACK", f"sip:+4930123456@{HOST}:{target.port}", from_=STRANGER, to_tag="2xx"
    )
    to_server = server_target(server)
    ack.headers.add("Via", attacker.ep.via_value(to_server, "z9hG4bK-ack-1"), first=True)
    attacker.ep.send_stateless(ack, to_server)
    control = attacker.build("OPTIONS", f"sip:{HOST}:{target.port}", from_=STRANGER)
    await attacker.send(control, Target("UDP", HOST, target.port))  # sent straight to it
    await asyncio.sleep(0.2)  # time for a relayed ACK to arrive
    assert target.acks == []


async def test_in_dialog_request_reaches_the_contact_learnt_from_the_dialog(
    server: SipServer, make_ua: UAFactory
) -> None:
    """A caller that ignores the route set (pyVoIP sends its BYE straight to the
    callee's Contact) reaches the callee's loopback device: that target came from the
    dialog's 2xx, not from the request. A stranger's own Contact teaches nothing, and a
    loopback target named in a request outside any dialog we saw stays refused."""
    bob = await registered(server, make_ua, "bob")
    bob.on_invite = lambda ua, st: ua.answer_invite(st, 200)
    stranger = await make_ua(server)
    forged = f"sip:x@{HOST}:{stranger.port + 1}"
    invite = stranger.build("INVITE", f"sip:{BOB}", from_=STRANGER, to=BOB, contact=forged)
    answered = await stranger.send(invite)
    assert answered.final.status == 200
    answer_contact = answered.final.contacts[0].uri_text
    to_tag = answered.final.to.tag
    bye = stranger.build("BYE", answer_contact, from_=STRANGER, to=BOB, to_tag=to_tag)
    bye.headers.set("Call-ID", invite.call_id)
    assert (await stranger.send(bye)).final.status != 403
    assert len(bob.requests("BYE")) == 1
    # The stranger's INVITE Contact was not learnt: an in-dialog request to it is refused.
    back = stranger.build("BYE", forged, from_=STRANGER, to=BOB, to_tag="x")
    assert (await stranger.send(back)).final.status == 403


def test_dialog_targets_are_bounded_and_expire() -> None:
    targets = DialogTargets(capacity=2, ttl_s=10.0)
    for n in range(3):
        targets.learn(f"sip:d{n}@127.0.0.1", now=0.0)
    assert len(targets) == 2
    assert not targets.knows("sip:d0@127.0.0.1", now=1.0)
    assert targets.knows("sip:d2@127.0.0.1", now=1.0)
    assert not targets.knows("sip:d2@127.0.0.1", now=11.0)
    assert len(targets) == 1
