"""Forking requests other than INVITE (RFC 3261 §16.7 step 10, §9.1): the pending
branches of a non-INVITE request are never cancelled, only an INVITE's are."""

from __future__ import annotations

import asyncio

from server_helpers import TracebackCatcher, UAFactory
from sipua import Exchange
from test_proxy_server import ALICE, BOB, PASSWORDS, registered, two_contacts

from sipline.core.transaction import build_cancel
from sipline.runtime.endpoint import ServerTransaction
from sipline.server.sip_server import SipServer


async def test_forked_message_gets_200_and_no_branch_is_cancelled(
    server: SipServer, make_ua: UAFactory, no_tracebacks: TracebackCatcher
) -> None:
    fast, slow = await two_contacts(server, make_ua)
    held: list[ServerTransaction] = []

    def hold(st: ServerTransaction) -> None:
        held.append(st)  # answered after the other branch's 200
        slow._notify()

    slow.ep.on_request = hold
    caller = await make_ua(server)
    request = caller.build(
        "MESSAGE",
        f"sip:{BOB}",
        from_=ALICE,
        to=BOB,
        extra=[("Content-Type", "text/plain")],
        body=b"hi",
    )
    done = await caller.send_authenticated(request, "alice", PASSWORDS["alice"])
    assert done.final.status == 200
    assert len(fast.requests("MESSAGE")) == 1
    await slow.wait_for(lambda: len(held) == 1)
    held[0].respond(200)
    assert slow.cancels == [] and fast.cancels == []
    assert no_tracebacks.caught == []


async def test_forked_options_both_answer_at_once(
    server: SipServer, make_ua: UAFactory, no_tracebacks: TracebackCatcher
) -> None:
    await two_contacts(server, make_ua)
    caller = await make_ua(server)
    request = caller.build("OPTIONS", f"sip:{BOB}", from_=ALICE, to=BOB)
    done = await caller.send_authenticated(request, "alice", PASSWORDS["alice"])
    assert done.final.status == 200
    assert no_tracebacks.caught == []


async def test_cancel_for_a_pending_message_gets_200_and_the_message_goes_on(
    server: SipServer, make_ua: UAFactory, no_tracebacks: TracebackCatcher
) -> None:
    """§9.2 / §16.10: a CANCEL that finds its request is answered 200 even when that
    request is not an INVITE; the request itself is unaffected (no 487, and nothing is
    cancelled downstream, §9.1)."""
    bob = await registered(server, make_ua, BOB)
    held: list[ServerTransaction] = []

    def hold(st: ServerTransaction) -> None:
        held.append(st)
        bob._notify()

    bob.ep.on_request = hold
    caller = await make_ua(server)
    request = caller.build(
        "MESSAGE",
        f"sip:{BOB}",
        from_="someone@elsewhere.test",
        to=BOB,
        extra=[("Content-Type", "text/plain")],
        body=b"hi",
    )
    exchange = Exchange(request)
    ct = caller.ep.send_request(request, caller.server, on_response=exchange.responses.append)
    await bob.wait_for(lambda: len(held) == 1)
    cancel = build_cancel(ct.request)  # our Via and branch: the same transaction (§9.1)
    answers = Exchange(cancel)
    cancel_ct = caller.ep.send_request(
        cancel, caller.server, on_response=answers.responses.append, add_via=False
    )
    await asyncio.wait_for(cancel_ct.final, 10)
    assert answers.final.status == 200
    held[0].respond(200)
    await asyncio.wait_for(ct.final, 10)
    assert exchange.final.status == 200
    assert bob.cancels == []
    assert no_tracebacks.caught == []
