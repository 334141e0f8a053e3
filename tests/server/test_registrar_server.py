"""The registrar of `sipline serve` over real UDP sockets (RFC 3261 §10.3, RFC 7616,
RFC 8760, RFC 3327, RFC 5626, RFC 3581)."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import replace

import pytest
from server_helpers import DOMAIN, ServerFactory, UAFactory, server_target
from sipua import HOST, challenges_of

from sipline.core.auth import Challenge, answer_challenge
from sipline.core.message import Response, parse_message
from sipline.server.sip_server import SipServer
from sipline.server.upkeep import CREDENTIALS_POLL_S
from sipline.storage import AsyncStore, SqliteStore
from sipline.testing import FakeClock, advance

ALICE = f"alice@{DOMAIN}"


def store_of(server: SipServer) -> AsyncStore:
    assert server.store is not None
    return server.store


async def test_register_is_challenged_then_accepted(server: SipServer, make_ua: UAFactory) -> None:
    ua = await make_ua(server)
    first = await ua.register(ALICE, None)
    assert first.final.status == 401
    done = await ua.register(ALICE, "alice-pw")
    assert done.statuses[-1] == 200, done.final
    assert done.final.headers.get_all("contact") == [f"<{ua.contact('alice')}>;expires=3600"]
    assert done.final.headers.get("date")
    [binding] = store_of(server).bindings(ALICE)
    assert binding.contact == ua.contact("alice")
    # The binding is in the database, not only in the cache.
    stored = await store_of(server).call(store_of(server).store.list_bindings, ALICE)
    assert [b.contact for b in stored] == [ua.contact("alice")]


async def test_one_challenge_per_algorithm_in_the_configured_order(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(auth_algorithms=["SHA-512-256", "SHA-256", "MD5"])
    ua = await make_ua(server)
    first = await ua.register(ALICE, None)
    offered = challenges_of(first.final)
    assert [c.algorithm for c in offered] == ["SHA-512-256", "SHA-256", "MD5"]  # RFC 8760 §2.4
    assert all(c.realm == DOMAIN and c.qop == ("auth",) for c in offered)
    assert len({c.nonce for c in offered}) == 3
    # A client that only knows MD5 answers the last one and is accepted.
    for challenge in offered:
        retry = ua.retry(first.request)
        ua.add_credentials(retry, challenge, "alice", "alice-pw")
        assert (await ua.send(retry)).final.status == 200, challenge.algorithm


async def test_the_default_challenge_is_md5_alone(server: SipServer, make_ua: UAFactory) -> None:
    """baresip, SIPp and sipsak read only the first challenge, twinkle only the last,
    and all of them know only MD5: any other algorithm beside it locks some out."""
    ua = await make_ua(server)
    first = await ua.register(ALICE, None)
    offered = challenges_of(first.final)
    assert [c.algorithm for c in offered] == ["MD5"]
    retry = ua.retry(first.request)
    ua.add_credentials(retry, offered[0], "alice", "alice-pw")
    assert (await ua.send(retry)).final.status == 200


async def test_an_md5_answer_to_the_sha256_challenge_is_accepted_when_md5_is_offered(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    """pyVoIP reads the first challenge and answers it with MD5 whatever it names
    (RFC 7616 §3.7: the client chooses among the offered algorithms)."""
    server = await make_server(auth_algorithms=["SHA-256", "MD5"])
    ua = await make_ua(server)
    first = await ua.register(ALICE, None)
    offered = challenges_of(first.final)
    assert [c.algorithm for c in offered] == ["SHA-256", "MD5"]  # in the order configured
    retry = ua.retry(first.request)
    ua.add_credentials(retry, replace(offered[0], algorithm="MD5"), "alice", "alice-pw")
    assert (await ua.send(retry)).final.status == 200


async def test_a_client_that_keeps_failing_is_named_with_the_likely_cause(
    make_server: ServerFactory, make_ua: UAFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(auth_algorithms=["SHA-256"])
    ua = await make_ua(server)
    caplog.set_level(logging.WARNING, logger="sipline.auth")
    agent = [("User-Agent", "baresip 1.0")]
    # An MD5-only client answering the SHA-256 challenge with MD5, three times.
    for attempt in range(3):
        first = await ua.register(ALICE, None, extra=agent)  # not a failure in itself
        [challenge] = challenges_of(first.final)
        assert challenge.algorithm == "SHA-256"
        retry = ua.retry(first.request)
        ua.add_credentials(retry, replace(challenge, algorithm="MD5"), "alice", "alice-pw")
        assert (await ua.send(retry)).final.status == 401
        logged = [r for r in caplog.records if r.name == "sipline.auth"]
        assert len(logged) == (attempt == 2), attempt
    warnings = [r.getMessage() for r in caplog.records if r.name == "sipline.auth"]
    assert len(warnings) == 1, warnings
    source = f"{HOST}:{ua.port}"
    assert warnings[0] == (
        f"alice@{DOMAIN} from {source} (User-Agent baresip 1.0) answered the SHA-256"
        " challenge with MD5; failed 3 times: the client may support only MD5,"
        " see [auth] algorithms"
    )
    # Success forgets the count; a client that never answers the first challenge is
    # named too.
    done = await ua.register(ALICE, "alice-pw")
    assert done.final.status == 200
    caplog.clear()
    for _ in range(4):  # three challenges left unanswered
        assert (await ua.register(ALICE, None, extra=agent)).final.status == 401
    [warning] = [r.getMessage() for r in caplog.records if r.name == "sipline.auth"]
    assert "did not answer the challenge (SHA-256); failed 3 times" in warning
    assert "the client may not support SHA-256" in warning


async def test_wrong_password_and_unknown_user_look_the_same(
    server: SipServer, make_ua: UAFactory
) -> None:
    ua = await make_ua(server)
    wrong = await ua.register(ALICE, "not-the-password")
    nobody = await ua.register(f"mallory@{DOMAIN}", "whatever")
    assert wrong.final.status == nobody.final.status == 401
    assert not challenges_of(wrong.final)[0].stale
    assert len(challenges_of(wrong.final)) == len(challenges_of(nobody.final))
    assert store_of(server).bindings(ALICE) == []


async def test_expired_nonce_is_answered_stale(server: SipServer, make_ua: UAFactory) -> None:
    ua = await make_ua(server)
    assert server.backend is not None
    verifier = server.backend.auth.verifier(DOMAIN)
    old = verifier.issue_nonce("MD5", now=server.endpoint.now() - 3600)
    request = ua.build("REGISTER", f"sip:{DOMAIN}", from_=ALICE, contact=ua.contact("alice"))
    ua.add_credentials(
        request, Challenge(realm=DOMAIN, nonce=old, algorithm="MD5", qop=("auth",)),
        "alice", "alice-pw",
    )  # fmt: skip
    stale = await ua.send(request)
    assert stale.final.status == 401
    assert all(c.stale for c in challenges_of(stale.final))  # RFC 7616 §3.3
    assert store_of(server).bindings(ALICE) == []
    # The fresh nonce works at once, without asking the user again.
    retry = ua.retry(request)
    retry.headers.remove("Authorization")
    ua.add_credentials(retry, challenges_of(stale.final)[0], "alice", "alice-pw")
    assert (await ua.send(retry)).final.status == 200


async def test_nonce_count_replay_is_refused(server: SipServer, make_ua: UAFactory) -> None:
    ua = await make_ua(server)
    first = await ua.register(ALICE, None)
    challenge = challenges_of(first.final)[0]
    accepted = ua.retry(first.request)
    ua.add_credentials(accepted, challenge, "alice", "alice-pw", nc=1)
    assert (await ua.send(accepted)).final.status == 200
    # The same credentials again (a captured request replayed, new transaction).
    replay = await ua.send(ua.retry(accepted))
    assert replay.final.status == 401
    assert not challenges_of(replay.final)[0].stale
    # The next count on the same nonce is fine.
    counted = ua.retry(first.request)
    ua.add_credentials(counted, challenge, "alice", "alice-pw", nc=2)
    assert (await ua.send(counted)).final.status == 200


async def test_too_brief_expiry_gets_423_with_min_expires(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(min_expires=120)
    ua = await make_ua(server)
    brief = await ua.register(ALICE, "alice-pw", expires=30)
    assert brief.final.status == 423
    assert brief.final.headers.get("min-expires") == "120"
    assert store_of(server).bindings(ALICE) == []
    ok = await ua.register(ALICE, "alice-pw", expires=120)
    assert ok.final.status == 200


async def test_long_expiry_is_shortened_to_the_maximum(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(max_expires=600, default_expires=300)
    ua = await make_ua(server)
    done = await ua.register(ALICE, "alice-pw", expires=100_000)
    assert done.final.headers.get_all("contact") == [f"<{ua.contact('alice')}>;expires=600"]
    default = await ua.register(ALICE, "alice-pw", expires=None, contact=ua.contact("a2"))
    assert f"<{ua.contact('a2')}>;expires=300" in default.final.headers.get_all("contact")


async def test_200_lists_every_binding_with_q_and_expiry(
    server: SipServer, make_ua: UAFactory
) -> None:
    ua = await make_ua(server)
    await ua.register(ALICE, "alice-pw", contact=ua.contact("desk"), expires=1800)
    request = ua.build(
        "REGISTER", f"sip:{DOMAIN}", from_=ALICE, contact=f"{ua.contact('phone')}",
        extra=[("Contact", f"<{ua.contact('soft')}>;q=0.5;expires=900")],
    )  # fmt: skip
    request.headers.replace_first_value("contact", f"<{ua.contact('phone')}>;q=1.0")
    done = await ua.send_authenticated(request, "alice", "alice-pw")
    assert done.final.status == 200
    listed = sorted(done.final.headers.get_all("contact"))
    assert listed == sorted(
        [
            f"<{ua.contact('desk')}>;expires=1800",
            f"<{ua.contact('phone')}>;expires=3600;q=1",
            f"<{ua.contact('soft')}>;expires=900;q=0.5",
        ]
    )
    assert len(store_of(server).bindings(ALICE)) == 3
    # A REGISTER without Contact is a query: it lists them and changes nothing.
    query = ua.build("REGISTER", f"sip:{DOMAIN}", from_=ALICE)
    queried = await ua.send_authenticated(query, "alice", "alice-pw")
    assert sorted(queried.final.headers.get_all("contact")) == listed


async def test_contact_star_with_expires_zero_removes_all(
    server: SipServer, make_ua: UAFactory
) -> None:
    ua = await make_ua(server)
    call_id = "star-test"
    await ua.register(ALICE, "alice-pw", contact=ua.contact("one"), call_id=call_id)
    await ua.register(ALICE, "alice-pw", contact=ua.contact("two"))
    assert len(store_of(server).bindings(ALICE)) == 2
    bad = await ua.register(ALICE, "alice-pw", contact="*", expires=60)
    assert bad.final.status == 400  # §10.3 step 6: "*" only with Expires: 0
    assert len(store_of(server).bindings(ALICE)) == 2
    gone = await ua.register(ALICE, "alice-pw", contact="*", expires=0)
    assert gone.final.status == 200
    assert gone.final.headers.get_all("contact") == []
    assert store_of(server).bindings(ALICE) == []
    assert await store_of(server).call(store_of(server).store.list_bindings, ALICE) == []


async def test_contact_expires_zero_removes_one(server: SipServer, make_ua: UAFactory) -> None:
    ua = await make_ua(server)
    await ua.register(ALICE, "alice-pw", contact=ua.contact("one"))
    await ua.register(ALICE, "alice-pw", contact=ua.contact("two"))
    done = await ua.register(ALICE, "alice-pw", contact=ua.contact("one"), expires=0)
    assert done.final.headers.get_all("contact") == [f"<{ua.contact('two')}>;expires=3600"]


async def test_call_id_and_cseq_ordering(server: SipServer, make_ua: UAFactory) -> None:
    """§10.3 step 7: with the binding's Call-ID, a CSeq not above the stored one fails
    and changes nothing; another Call-ID (a new UA instance) may update it."""
    ua = await make_ua(server)
    first = ua.build(
        "REGISTER", f"sip:{DOMAIN}", from_=ALICE, call_id="order-1", cseq=10,
        contact=ua.contact("alice"), extra=[("Expires", "3600")],
    )  # fmt: skip
    challenge = challenges_of((await ua.send(first)).final)[0]
    accepted = ua.retry(first, cseq=20)
    ua.add_credentials(accepted, challenge, "alice", "alice-pw", nc=1)
    assert (await ua.send(accepted)).final.status == 200
    [before] = store_of(server).bindings(ALICE)
    assert (before.call_id, before.cseq) == ("order-1", 20)

    older = ua.retry(first, cseq=15)
    older.headers.set("Expires", "0")
    ua.add_credentials(older, challenge, "alice", "alice-pw", nc=2)
    refused = await ua.send(older)
    assert refused.final.status == 500
    assert store_of(server).bindings(ALICE) == [before]

    other = await ua.register(ALICE, "alice-pw", call_id="order-2", expires=600)
    assert other.final.status == 200
    [after] = store_of(server).bindings(ALICE)
    assert after.call_id == "order-2"
    assert after.remaining_s(server.endpoint.wall()) <= 600


async def test_register_for_another_user_is_forbidden(
    server: SipServer, make_ua: UAFactory
) -> None:
    ua = await make_ua(server)
    request = ua.build("REGISTER", f"sip:{DOMAIN}", from_=ALICE, to=f"bob@{DOMAIN}",
                       contact=ua.contact("alice"))  # fmt: skip
    done = await ua.send_authenticated(request, "alice", "alice-pw")
    assert done.final.status == 403
    assert store_of(server).bindings(f"bob@{DOMAIN}") == []


async def test_register_for_a_domain_not_served_is_404(
    server: SipServer, make_ua: UAFactory
) -> None:
    ua = await make_ua(server)
    request = ua.build("REGISTER", f"sip:{HOST}", from_=f"alice@{HOST}",
                       contact=ua.contact("alice"))  # fmt: skip
    assert (await ua.send(request)).final.status == 404


async def test_path_is_stored_returned_and_used(server: SipServer, make_ua: UAFactory) -> None:
    """RFC 3327: the 200 echoes Path; requests for the AOR go through it."""
    ua = await make_ua(server)
    edge = await make_ua(server)
    path = f"<sip:{HOST}:{edge.port};lr>"
    done = await ua.register(ALICE, "alice-pw", extra=[("Path", path), ("Supported", "path")])
    assert done.final.status == 200
    assert done.final.headers.get_all("path") == [path]
    assert "path" in done.final.option_tags("supported")
    [binding] = store_of(server).bindings(ALICE)
    assert binding.path == (path,)
    assert binding.received is None  # behind a Path the edge routes back itself

    caller = await make_ua(server)
    edge.on_invite = lambda ua_, st: ua_.answer_invite(st, 486)
    invite = caller.build("INVITE", f"sip:{ALICE}", from_=f"bob@{DOMAIN}", to=ALICE)
    answered = await caller.send_authenticated(invite, "bob", "bob-pw")
    assert answered.final.status == 486
    [forwarded] = edge.requests("INVITE")
    assert forwarded.uri_text == ua.contact("alice")
    assert forwarded.headers.get_all("route") == [path]
    assert ua.requests("INVITE") == []


async def test_outbound_instance_and_reg_id(server: SipServer, make_ua: UAFactory) -> None:
    """RFC 5626 §6: +sip.instance and reg-id are stored; a new flow with the same pair
    replaces the old binding even though its Contact URI differs."""
    ua = await make_ua(server)
    instance = '"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'
    tags = f";+sip.instance={instance};reg-id=1"
    first = ua.build("REGISTER", f"sip:{DOMAIN}", from_=ALICE,
                     extra=[("Contact", f"<{ua.contact('alice')}>{tags}"),
                            ("Supported", "outbound, path")])  # fmt: skip
    done = await ua.send_authenticated(first, "alice", "alice-pw")
    assert done.final.status == 200
    assert "outbound" in done.final.option_tags("supported")
    [binding] = store_of(server).bindings(ALICE)
    assert (binding.instance, binding.reg_id) == (instance, 1)
    assert f"+sip.instance={instance}" in done.final.headers.get("contact", "")

    moved = ua.build("REGISTER", f"sip:{DOMAIN}", from_=ALICE,
                     extra=[("Contact", f"<{ua.contact('alice-new')}>{tags}"),
                            ("Supported", "outbound")])  # fmt: skip
    again = await ua.send_authenticated(moved, "alice", "alice-pw")
    assert again.final.status == 200
    [replaced] = store_of(server).bindings(ALICE)
    assert replaced.contact == ua.contact("alice-new")


async def test_expired_bindings_are_not_listed_and_are_purged(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    clock = FakeClock()
    server = await make_server(clock=clock, min_expires=1)
    ua = await make_ua(server)
    await ua.register(ALICE, "alice-pw", contact=ua.contact("short"), expires=1)
    await advance(clock, 1.3)
    done = await ua.register(ALICE, "alice-pw", contact=ua.contact("long"), expires=600)
    assert done.final.headers.get_all("contact") == [f"<{ua.contact('long')}>;expires=600"]
    store = store_of(server)
    rows = await store.call(store.store.all_bindings)
    assert [b.contact for b in rows] == [ua.contact("long")]  # the REGISTER dropped it
    # The periodic purge drops expired bindings of addresses nobody re-registers.
    await ua.register(f"bob@{DOMAIN}", "bob-pw", expires=1)
    await advance(clock, 1.3)
    assert server.registrar is not None
    assert await server.registrar.purge(now_wall=server.endpoint.wall()) == 1
    assert [b.aor for b in await store.call(store.store.all_bindings)] == [ALICE]


async def test_nat_source_is_recorded_and_rport_received_honoured(server: SipServer) -> None:
    """RFC 3581: the response goes back to the source port and names it; the binding
    records the source because the Contact names another address (fix_nated_register)."""
    target = server_target(server)
    nat_host = "192.0.2.7"  # TEST-NET-1: the address a UA behind NAT believes it has
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]

        def register(cseq: int, authorization: str = "") -> Response:
            lines = [
                f"REGISTER sip:{DOMAIN} SIP/2.0",
                f"Via: SIP/2.0/UDP {nat_host}:5060;branch=z9hG4bKnat{cseq};rport",
                "Max-Forwards: 70",
                f"From: <sip:{ALICE}>;tag=nat1",
                f"To: <sip:{ALICE}>",
                "Call-ID: nat-call-1",
                f"CSeq: {cseq} REGISTER",
                f"Contact: <sip:alice@{nat_host}:5060>",
                "Expires: 600",
            ]
            if authorization:
                lines.append(f"Authorization: {authorization}")
            data = ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()
            sock.sendto(data, (target.host, target.port))
            reply, _ = sock.recvfrom(65535)
            message = parse_message(reply)
            assert isinstance(message, Response)
            return message

        challenge = await asyncio.to_thread(register, 1)
        assert challenge.status == 401
        via = challenge.top_via
        assert via.received == HOST and via.rport == port
        creds = answer_challenge(
            challenges_of(challenge)[0], method="REGISTER", uri=f"sip:{DOMAIN}",
            username="alice", password="alice-pw", entropy=server.endpoint.entropy,
        )  # fmt: skip
        ok = await asyncio.to_thread(register, 2, creds.serialize())
        assert ok.status == 200
    [binding] = store_of(server).bindings(ALICE)
    assert binding.contact == f"sip:alice@{nat_host}:5060"
    assert binding.received == f"udp:{HOST}:{port}"


async def test_nat_source_recording_can_be_turned_off(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(fix_nated_register=False)
    ua = await make_ua(server)
    done = await ua.register(ALICE, "alice-pw", contact="sip:alice@192.0.2.7:5060")
    assert done.final.status == 200
    [binding] = store_of(server).bindings(ALICE)
    assert binding.received is None


async def test_nat_binding_reaches_the_ua_at_its_source(
    server: SipServer, make_ua: UAFactory
) -> None:
    ua = await make_ua(server)
    contact = "sip:alice@192.0.2.7:5060"  # unreachable: only the source address works
    assert (await ua.register(ALICE, "alice-pw", contact=contact)).final.status == 200
    ua.on_invite = lambda ua_, st: ua_.answer_invite(st, 486)
    caller = await make_ua(server)
    invite = caller.build("INVITE", f"sip:{ALICE}", from_=f"bob@{DOMAIN}", to=ALICE)
    done = await caller.send_authenticated(invite, "bob", "bob-pw")
    assert done.final.status == 486
    [forwarded] = ua.requests("INVITE")
    assert forwarded.uri_text == contact


async def test_a_password_changed_from_the_cli_takes_effect_at_once(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    """The HA1 cache follows the store: another process (here a second connection to
    the file, as `sipline user passwd` opens) changes the password, and within the
    credentials poll the old one is refused and the new one accepted."""
    clock = FakeClock()
    server = await make_server(clock=clock)
    ua = await make_ua(server)
    assert (await ua.register(f"alice@{DOMAIN}", "alice-pw")).final.status == 200
    assert (await ua.register(f"alice@{DOMAIN}", "alice-pw")).final.status == 200  # cached
    cli = SqliteStore(server.config.server.database)
    try:
        cli.set_password("alice", DOMAIN, "changed-pw")
    finally:
        cli.close()
    await advance(clock, CREDENTIALS_POLL_S * 3)
    assert server.store is not None
    await server.store.write(lambda: None)  # after the poll's read, in the store's order
    assert (await ua.register(f"alice@{DOMAIN}", "alice-pw")).final.status == 401
    assert (await ua.register(f"alice@{DOMAIN}", "changed-pw")).final.status == 200


async def test_one_register_cannot_create_hundreds_of_bindings(
    server: SipServer, make_ua: UAFactory
) -> None:
    """§10.3: the registrar decides what a user may bind; past `[registrar]
    max_contacts` (default 10) per address-of-record the REGISTER fails, nothing bound."""
    ua = await make_ua(server)
    request = ua.build(
        "REGISTER", f"sip:{DOMAIN}", from_=ALICE, contact=ua.contact("c0"),
        extra=[("Contact", ", ".join(f"<{ua.contact(f'c{i}')}>" for i in range(1, 201)))],
    )  # fmt: skip
    done = await ua.send_authenticated(request, "alice", "alice-pw")
    assert done.final.status == 403, done.final
    assert "contacts" in done.final.reason
    assert store_of(server).bindings(ALICE) == []


async def test_contacts_per_address_of_record_are_capped(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(max_contacts=3)
    ua = await make_ua(server)
    for name in ("a", "b", "c"):
        assert (await ua.register(ALICE, "alice-pw", contact=ua.contact(name))).final.status == 200
    over = await ua.register(ALICE, "alice-pw", contact=ua.contact("d"))
    assert over.final.status == 403
    assert len(store_of(server).bindings(ALICE)) == 3
    # Refreshing a binding still works at the cap, and so does replacing one in the
    # same request (removed with expires=0, another added).
    refresh = await ua.register(ALICE, "alice-pw", contact=ua.contact("b"))
    assert refresh.final.status == 200
    swap = ua.build(
        "REGISTER", f"sip:{DOMAIN}", from_=ALICE, contact=ua.contact("d"),
        extra=[("Contact", f"<{ua.contact('a')}>;expires=0")],
    )  # fmt: skip
    swapped = await ua.send_authenticated(swap, "alice", "alice-pw")
    assert swapped.final.status == 200, swapped.final
    contacts = sorted(b.contact for b in store_of(server).bindings(ALICE))
    assert contacts == sorted(ua.contact(n) for n in ("b", "c", "d"))
