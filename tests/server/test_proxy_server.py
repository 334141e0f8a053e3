"""The stateful proxy of `sipline serve` over real UDP sockets (RFC 3261 §16), with
test user agents registered through its registrar."""

from __future__ import annotations

import asyncio
from ipaddress import ip_network

import pytest
from server_helpers import DOMAIN, ServerFactory, UAFactory, eventually
from sipua import HOST, Dialog, Exchange, TestUA, challenges_of, ring_then

from sipline.core.uri import parse_uri
from sipline.runtime.endpoint import ClientTransaction, ServerTransaction
from sipline.server.security.relay import TrustedPeer
from sipline.server.sip_server import SipServer
from sipline.testing import FakeClock, advance

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


async def registered(
    server: SipServer, make_ua: UAFactory, aor: str, **contact_params: str
) -> TestUA:
    ua = await make_ua(server)
    user = aor.partition("@")[0]
    contact = ua.contact(user)
    q = contact_params.pop("q", None)
    header = f"<{contact}>" + (f";q={q}" if q else "")
    request = ua.build("REGISTER", f"sip:{DOMAIN}", from_=aor, extra=[("Contact", header),
                                                                      ("Expires", "600")])  # fmt: skip
    done = await ua.send_authenticated(request, user, PASSWORDS[user])
    assert done.final.status == 200
    return ua


async def invite(
    caller: TestUA, to: str = BOB, from_: str = ALICE, *, extra: list[tuple[str, str]] | None = None
) -> Exchange:
    user = from_.partition("@")[0]
    request = caller.build(
        "INVITE", f"sip:{to}", from_=from_, to=to, contact=caller.contact(user), extra=extra
    )
    if from_.endswith("@" + DOMAIN):
        return await caller.send_authenticated(request, user, PASSWORDS[user])
    return await caller.send(request)


# --- §16.3 validation, authentication, location ----------------------------------------


async def test_local_caller_is_challenged_with_407(server: SipServer, make_ua: UAFactory) -> None:
    bob = await registered(server, make_ua, BOB)
    bob.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    caller = await make_ua(server)
    request = caller.build("INVITE", f"sip:{BOB}", from_=ALICE, to=BOB)
    first = await caller.send(request)
    assert first.final.status == 407
    assert [c.realm for c in challenges_of(first.final, "Proxy-Authenticate")] == [
        DOMAIN
    ]  # MD5 alone by default
    assert bob.requests("INVITE") == []
    # Wrong password: challenged again; right one: forwarded, credentials consumed.
    wrong = await caller.send(caller.answer(request, first.final, "alice", "wrong"))
    assert wrong.final.status == 407
    done = await caller.send(caller.answer(request, first.final, "alice", "alice-pw"))
    assert done.final.status == 486
    [forwarded] = bob.requests("INVITE")
    assert forwarded.headers.get("proxy-authorization") is None


async def test_caller_must_be_who_they_authenticate_as(
    server: SipServer, make_ua: UAFactory
) -> None:
    await registered(server, make_ua, BOB)
    caller = await make_ua(server)
    request = caller.build("INVITE", f"sip:{BOB}", from_=ALICE, to=BOB)
    done = await caller.send_authenticated(request, "carol", "carol-pw")
    assert done.final.status == 403


async def test_foreign_caller_is_not_challenged(server: SipServer, make_ua: UAFactory) -> None:
    bob = await registered(server, make_ua, BOB)
    bob.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    caller = await make_ua(server)
    done = await invite(caller, from_="someone@elsewhere.test")
    assert done.statuses == [100, 486]


async def test_unknown_user_404_known_user_without_binding_480(
    server: SipServer, make_ua: UAFactory
) -> None:
    caller = await make_ua(server)
    assert (await invite(caller, to=f"nobody@{DOMAIN}")).final.status == 404
    assert (await invite(caller, to=f"carol@{DOMAIN}")).final.status == 480


async def test_requests_addressed_to_a_served_domain_itself_end_here(
    server: SipServer, make_ua: UAFactory
) -> None:
    """A Request-URI naming a domain we serve with no user names us: nothing is forwarded
    (nor looked up in DNS). In a dialog we do not have, that is 481 (§12.2.2): SIPp sends
    such a BYE after a stateless 503, whose To tag it takes for a dialog."""
    ua = await make_ua(server)
    bye = ua.build("BYE", f"sip:{DOMAIN}", from_=f"alice@{DOMAIN}", to_tag="ol1234")
    assert (await ua.send(bye)).final.status == 481
    info = ua.build("INFO", f"sip:{DOMAIN}", from_="someone@elsewhere.test")
    assert (await ua.send(info)).final.status == 404
    assert server.endpoint.pending_transactions == 0


async def test_request_validation(server: SipServer, make_ua: UAFactory) -> None:
    """§16.3: 416 for a scheme we cannot route, 483 when Max-Forwards is spent, 420
    for an unsupported Proxy-Require option (naming it in Unsupported)."""
    bob = await registered(server, make_ua, BOB)
    caller = await make_ua(server)
    other = "stranger@elsewhere.test"
    scheme = caller.build("INVITE", f"sip:{BOB}", from_=other, to=BOB)
    scheme.uri = parse_uri("http://x.test/")
    assert (await caller.send(scheme)).final.status == 416
    hops = caller.build("INVITE", f"sip:{BOB}", from_=other, to=BOB, max_forwards=0)
    assert (await caller.send(hops)).final.status == 483
    options = caller.build("OPTIONS", f"sip:{BOB}", from_=other, to=BOB, max_forwards=0)
    assert (await caller.send(options)).final.status == 483
    ext = caller.build("INVITE", f"sip:{BOB}", from_=other, to=BOB,
                       extra=[("Proxy-Require", "path, x-frobnicate")])  # fmt: skip
    refused = await caller.send(ext)
    assert refused.final.status == 420
    assert refused.final.headers.get("unsupported") == "x-frobnicate"
    assert bob.requests("INVITE") == []


async def test_max_forwards_is_decremented(server: SipServer, make_ua: UAFactory) -> None:
    bob = await registered(server, make_ua, BOB)
    bob.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    caller = await make_ua(server)
    await invite(caller, extra=[("X-Probe", "1")])
    [forwarded] = bob.requests("INVITE")
    assert forwarded.max_forwards == 69
    assert forwarded.headers.get("x-probe") == "1"  # unknown headers pass untouched
    assert len(forwarded.vias) == 2


async def test_loop_is_detected_with_482(make_server: ServerFactory, make_ua: UAFactory) -> None:
    """A contact that points back at the proxy with the same Request-URI: the copy
    that comes back hashes to the branch we gave it (§16.3 step 4)."""
    server = await make_server(fix_nated_register=False)
    assert server.store is not None
    store = server.store.store
    await server.store.write(store.add_domain, HOST)
    await server.store.write(store.add_user, "loop", HOST, "loop-pw")
    port = server.endpoint.local_address("UDP").port
    ua = await make_ua(server)
    self_uri = f"sip:loop@{HOST}:{port}"
    reg = ua.build("REGISTER", f"sip:{HOST}", from_=f"loop@{HOST}", contact=self_uri)
    assert (await ua.send_authenticated(reg, "loop", "loop-pw")).final.status == 200
    request = ua.build("INVITE", self_uri, from_="stranger@elsewhere.test", to=f"loop@{HOST}")
    done = await ua.send(request)
    assert done.final.status == 482


# --- calls: Record-Route, ACK and BYE through the proxy --------------------------------


async def test_call_with_record_route(server: SipServer, make_ua: UAFactory) -> None:
    bob = await registered(server, make_ua, BOB)
    bob.on_invite = ring_then(200)
    caller = await make_ua(server)
    call = await invite(caller)
    assert call.statuses == [100, 180, 200]
    answer = call.final
    port = server.endpoint.local_address("UDP").port
    # Signed for this dialog (sipline.server.security.route_sign).
    ours = f"<sip:{HOST}:{port}{server.proxy.route_signer.param(call.request)};lr>"
    assert answer.headers.get_all("record-route") == [ours]
    assert len(answer.vias) == 1  # the proxy took its own off
    [forwarded] = bob.requests("INVITE")
    assert forwarded.headers.get_all("record-route") == [ours]

    dialog = Dialog(caller, call.request, answer)
    ack = dialog.ack()
    await bob.wait_for(lambda: len(bob.acks) == 1)
    [got_ack] = bob.acks
    assert got_ack.call_id == ack.call_id and len(got_ack.vias) == 2  # via the proxy
    assert got_ack.headers.get("route") is None  # the proxy popped its own Route
    bye = await dialog.bye()
    assert bye.final.status == 200
    [got_bye] = bob.requests("BYE")
    assert len(got_bye.vias) == 2 and got_bye.uri_text == bob.contact("uas")


async def test_record_route_can_be_turned_off(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(record_route=False)
    bob = await registered(server, make_ua, BOB)
    bob.on_invite = ring_then(200)
    caller = await make_ua(server)
    call = await invite(caller)
    assert call.final.status == 200
    assert call.final.headers.get_all("record-route") == []
    assert bob.requests("INVITE")[0].headers.get_all("record-route") == []


async def test_strict_route_from_a_strict_router(server: SipServer, make_ua: UAFactory) -> None:
    """§16.4: a request whose Request-URI is our Record-Route (a strict router before
    us) gets its real Request-URI back from the last Route entry."""
    bob = await registered(server, make_ua, BOB)
    bob.on_invite = ring_then(200)
    caller = await make_ua(server)
    call = await invite(caller)
    port = server.endpoint.local_address("UDP").port
    request = Dialog(caller, call.request, call.final)._build("BYE", call.request.cseq.seq + 1)
    request.uri = parse_uri(f"sip:{HOST}:{port}")
    request.headers.remove("Route")
    request.headers.add("Route", f"<{bob.contact('uas')}>", first=True)
    done = await caller.send(request)
    assert done.final.status == 200
    [got] = bob.requests("BYE")
    assert got.uri_text == bob.contact("uas")
    assert got.headers.get("route") is None


# --- forking and response selection (§16.6, §16.7) -------------------------------------


async def two_contacts(
    server: SipServer, make_ua: UAFactory, q1: str | None = None, q2: str | None = None
) -> tuple[TestUA, TestUA]:
    params1 = {"q": q1} if q1 else {}
    params2 = {"q": q2} if q2 else {}
    return (
        await registered(server, make_ua, BOB, **params1),
        await registered(server, make_ua, BOB, **params2),
    )


async def test_parallel_fork_first_200_wins_other_is_cancelled(
    server: SipServer, make_ua: UAFactory
) -> None:
    fast, slow = await two_contacts(server, make_ua)
    fast.on_invite = ring_then(200, delay_s=0.2)
    slow.on_invite = lambda ua, st: ua.answer_invite(st, 180)  # rings until cancelled
    caller = await make_ua(server)
    call = await invite(caller)
    assert call.final.status == 200
    assert 180 in call.statuses
    await slow.wait_for(lambda: len(slow.cancels) == 1)
    assert fast.cancels == []


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        pytest.param(486, 200, 200, id="486+200->200"),
        pytest.param(486, 404, 404, id="486+404->lowest-4xx"),
        pytest.param(503, 486, 486, id="503+486->486"),
        pytest.param(503, 503, 500, id="503-only->500"),
        pytest.param(302, 486, 302, id="3xx-beats-4xx"),
    ],
)
async def test_best_response(
    server: SipServer, make_ua: UAFactory, first: int, second: int, expected: int
) -> None:
    a, b = await two_contacts(server, make_ua)
    a.on_invite = lambda ua, st: ua.answer_invite(st, first)
    b.on_invite = ring_then(second, delay_s=0.1)
    caller = await make_ua(server)
    call = await invite(caller)
    assert call.final.status == expected


async def test_6xx_ends_the_search_and_cancels_the_rest(
    server: SipServer, make_ua: UAFactory
) -> None:
    decliner, ringer = await two_contacts(server, make_ua)
    ringer.on_invite = lambda ua, st: ua.answer_invite(st, 180)
    decliner.on_invite = ring_then(603, delay_s=0.2)
    caller = await make_ua(server)
    call = await invite(caller)
    assert call.final.status == 603
    await ringer.wait_for(lambda: len(ringer.cancels) == 1)


async def test_sequential_fork_by_q(server: SipServer, make_ua: UAFactory) -> None:
    """Higher q first; the next group only after every branch of the first failed."""
    first, second = await two_contacts(server, make_ua, q1="1.0", q2="0.5")
    order: list[str] = []

    def busy(ua: TestUA, st: ServerTransaction) -> None:
        order.append("first")
        ua.answer_invite(st, 486)

    async def answer(ua: TestUA, st: ServerTransaction) -> None:
        order.append("second")
        ua.answer_invite(st, 200)

    first.on_invite, second.on_invite = busy, answer
    caller = await make_ua(server)
    call = await invite(caller)
    assert call.final.status == 200
    assert order == ["first", "second"]


async def test_6xx_stops_the_sequential_search(server: SipServer, make_ua: UAFactory) -> None:
    first, second = await two_contacts(server, make_ua, q1="0.9", q2="0.1")
    first.on_invite = lambda ua, st: ua.answer_invite(st, 600)
    second.on_invite = ring_then(200)
    caller = await make_ua(server)
    call = await invite(caller)
    assert call.final.status == 600
    # The next q-group would have been forked before the 600 went upstream.
    assert server.endpoint.transactions.stats.clients_created == 1
    assert second.requests("INVITE") == []


async def test_cancel_from_the_caller_is_propagated(server: SipServer, make_ua: UAFactory) -> None:
    a, b = await two_contacts(server, make_ua)
    for ua in (a, b):
        ua.on_invite = lambda ua_, st: ua_.answer_invite(st, 180)
    caller = await make_ua(server)
    request = caller.build("INVITE", f"sip:{BOB}", from_="x@elsewhere.test", to=BOB)
    exchange = Exchange(request)
    ct = caller.ep.send_request(request, caller.server, on_response=exchange.responses.append)
    await a.wait_for(lambda: bool(a.requests("INVITE")))
    await b.wait_for(lambda: bool(b.requests("INVITE")))
    await eventually(lambda: 180 in exchange.statuses)
    ct.cancel()
    final = await asyncio.wait_for(ct.final, 10)
    assert final.status == 487
    await a.wait_for(lambda: len(a.cancels) == 1)
    await b.wait_for(lambda: len(b.cancels) == 1)


async def stranger_invite(caller: TestUA) -> tuple[Exchange, ClientTransaction]:
    """An INVITE to Bob from outside our domains (no challenge), sent in the background."""
    request = caller.build("INVITE", f"sip:{BOB}", from_="x@elsewhere.test", to=BOB)
    exchange = Exchange(request)
    ct = caller.ep.send_request(request, caller.server, on_response=exchange.responses.append)
    return exchange, ct


async def test_timer_c_cancels_a_branch_that_rings_too_long(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    """§16.6 step 11: Timer C (180 s) fires at exactly 180 s on the server's clock; the
    ringing branch is CANCELled and its 487 is the answer (§16.8)."""
    clock = FakeClock()
    server = await make_server(clock=clock)
    bob = await registered(server, make_ua, BOB)
    bob.on_invite = lambda ua, st: ua.answer_invite(st, 180)
    caller = await make_ua(server)
    exchange, ct = await stranger_invite(caller)
    await eventually(lambda: 180 in exchange.statuses)
    await advance(clock, 179.9)
    assert bob.cancels == [] and not ct.final.done()
    await advance(clock, 0.1)
    final = await asyncio.wait_for(ct.final, 10)
    assert final.status == 487
    assert len(bob.cancels) == 1


async def test_timer_c_gives_up_on_a_silent_branch(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    """A branch that never answered cannot be CANCELled (§9.1): Timer C gives it up
    with 408, well before its transaction's Timer B (32 s)."""
    clock = FakeClock()
    server = await make_server(clock=clock, timer_c_s=5.0)
    bob = await registered(server, make_ua, BOB)
    bob.on_invite = lambda ua, st: None  # never answers (its transaction sends nothing)
    caller = await make_ua(server)
    _, ct = await stranger_invite(caller)
    await bob.wait_for(lambda: bool(bob.requests("INVITE")))
    await advance(clock, 4.9)
    assert not ct.final.done()
    await advance(clock, 0.1)
    final = await asyncio.wait_for(ct.final, 10)
    assert final.status == 408


# --- the redirect server (§8.3) --------------------------------------------------------


async def test_redirect_mode_answers_302_with_contacts(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(mode="redirect")
    a, b = await two_contacts(server, make_ua, q1="0.8", q2="0.3")
    caller = await make_ua(server)
    call = await invite(caller, from_="x@elsewhere.test")
    assert call.final.status == 302
    contacts = sorted(call.final.headers.get_all("contact"))
    assert contacts == sorted(
        [f"<{a.contact('bob')}>;q=0.8;expires=600", f"<{b.contact('bob')}>;q=0.3;expires=600"]
    )
    assert a.requests("INVITE") == [] and b.requests("INVITE") == []


async def test_redirect_per_user(make_server: ServerFactory, make_ua: UAFactory) -> None:
    server = await make_server(redirect_users=[BOB])
    bob = await registered(server, make_ua, BOB)
    alice = await registered(server, make_ua, ALICE)
    alice.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    caller = await make_ua(server)
    assert (await invite(caller, to=BOB, from_="x@elsewhere.test")).final.status == 302
    assert (await invite(caller, to=ALICE, from_="x@elsewhere.test")).final.status == 486
    assert bob.requests("INVITE") == []


async def test_request_for_another_domain_is_forwarded(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    """A Request-URI outside our domains goes where RFC 3263 says: here an IP literal
    with a port, so no DNS query is needed (§16.5, RFC 3263 §4). Relaying is for
    trusted peers (and our users): loopback is one here."""
    server = await make_server(trusted=[TrustedPeer(ip_network("127.0.0.1/32"))])
    elsewhere = await make_ua(server)
    elsewhere.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    caller = await make_ua(server)
    target = f"sip:dave@{HOST}:{elsewhere.port}"
    request = caller.build("INVITE", target, from_="x@elsewhere.test", to=f"dave@{HOST}")
    done = await caller.send(request)
    assert done.final.status == 486
    [forwarded] = elsewhere.requests("INVITE")
    assert forwarded.uri_text == target and forwarded.max_forwards == 69


async def test_response_with_only_our_via_is_answered_not_forwarded(
    server: SipServer, make_ua: UAFactory
) -> None:
    """§16.7 step 3: a response whose only Via is ours was meant for the proxy and is not
    forwarded as it is (it would leave with no Via); the caller still gets the outcome."""
    bob = await registered(server, make_ua, BOB)

    def broken_busy(ua: TestUA, st: ServerTransaction) -> None:
        response = st.response(486)
        vias = response.headers.get_all("via")
        response.headers.remove("Via")
        response.headers.add("Via", vias[0])  # a callee that kept only the proxy's Via
        st.send(response)

    bob.on_invite = broken_busy
    caller = await make_ua(server)
    done = await asyncio.wait_for(invite(caller), 10)
    assert done.final.status == 486
    assert done.final.headers.get_all("via")  # answered with the caller's own Via
