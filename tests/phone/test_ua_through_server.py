"""User agents registered with an in-process `SipServer` (registrar and record-routing
proxy with digest authentication) calling each other through it: audio both ways,
DTMF, hold, BYE from either side, forking to two devices of one user, and bindings
removed when an agent closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from service_calls import DOMAIN, add_users, loopback_config, running, user_agent
from ua_helpers import chirp, wait_for

from sipline.media.audio import ArraySink, cross_correlate
from sipline.phone import CallState, DtmfReceived, EndedBy, UserAgent
from sipline.sdp import Direction
from sipline.server.sip_server import SipServer


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SipServer]:
    add_users(tmp_path / "sipline.db", ["alice", "bob", "carol"])
    async with running(loopback_config(tmp_path / "sipline.db")) as srv:
        yield srv


def _agent(server: SipServer, name: str, **kwargs: Any) -> UserAgent:
    return user_agent(server, name, **kwargs)


async def test_registered_agents_call_through_the_proxy(server: SipServer) -> None:
    heard_by_bob, heard_by_alice = ArraySink(), ArraySink()
    to_bob, to_alice = chirp(1.5), chirp(1.5, f0=900, rate=-200)

    async def answer(call: object) -> None:
        await call.answer(play=to_alice, record=heard_by_bob)  # type: ignore[attr-defined]

    async with _agent(server, "alice") as alice, _agent(server, "bob", on_call=answer) as bob:
        assert alice.registered and bob.registered
        call = await alice.call(f"sip:bob@{DOMAIN}", record=heard_by_alice)
        await asyncio.wait_for(call.answered, 5)
        assert call.dialog is not None and call.dialog.route_set  # the proxy record-routed
        await asyncio.wait_for(call.play(to_bob), 5)
        await call.send_dtmf("42")
        (theirs,) = bob.calls
        await wait_for(lambda: sum(isinstance(e, DtmfReceived) for e in theirs.history) == 2)
        assert await call.hold()
        assert theirs.media.direction is Direction.RECVONLY
        assert await call.resume()
        await theirs.hangup()  # BYE from the callee, through the proxy
        ended = await asyncio.wait_for(call.ended, 5)
        assert ended.by is EndedBy.REMOTE
    assert cross_correlate(to_bob, heard_by_bob.samples()).peak > 0.95
    assert cross_correlate(to_alice, heard_by_alice.samples()).peak > 0.9
    store = server.store
    assert store is not None
    assert store.bindings(f"alice@{DOMAIN}", now=server.endpoint.wall()) == []  # unregistered


async def test_a_call_forked_to_two_devices_is_answered_by_one(server: SipServer) -> None:
    async with (
        _agent(server, "alice") as alice,
        _agent(server, "bob", auto_answer=True, ring_s=0.3) as desk,
        _agent(server, "bob") as mobile,
    ):
        call = await alice.call(f"sip:bob@{DOMAIN}")
        ringing = await mobile.next_call(5)  # it rings on both
        await asyncio.wait_for(call.answered, 5)
        ended = await asyncio.wait_for(ringing.ended, 5)
        # §16.7 step 10: the proxy cancels the rest, saying why (RFC 3326).
        assert ended.reason == "answered elsewhere"
        assert desk.calls and desk.calls[0].state is CallState.ANSWERED
        await call.hangup()
        await wait_for(lambda: not desk.calls)


async def test_unknown_user_and_unregistered_user(server: SipServer) -> None:
    async with _agent(server, "alice") as alice:
        nobody = await alice.call(f"sip:nobody@{DOMAIN}")
        assert (await asyncio.wait_for(nobody.ended, 5)).status == 404
        carol = await alice.call(f"sip:carol@{DOMAIN}")  # a user with no device registered
        assert (await asyncio.wait_for(carol.ended, 5)).status == 480
