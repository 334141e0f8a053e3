"""Calls the voicemail service refuses, through a real `SipServer`: a mailbox that does
not exist (404), a full mailbox (486), *98 without a PIN when callers are not
authenticated (403); and a short message left by calling the voicemail URI directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from service_calls import DOMAIN, add_users, loopback_config, running, user_agent

from sipline.media.audio import ToneSource
from sipline.phone import CallFailed, EndedBy, UserAgent
from sipline.server.sip_server import SipServer
from sipline.server.voicemail.machine import Retrieval
from sipline.server.voicemail.pin import hash_pin
from sipline.testing import FakeClock, advance

pytestmark = pytest.mark.timeout(60)

VM = f"sip:voicemail@{DOMAIN};target=sip:alice%40{DOMAIN};cause=408"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SipServer]:
    add_users(tmp_path / "sipline.db", ["alice", "bob"])
    config = loopback_config(
        tmp_path / "sipline.db", voicemail_speech=False, voicemail_max_messages=1
    )
    async with running(config) as srv:
        yield srv


def _ua(server: SipServer, user: str) -> UserAgent:
    return user_agent(server, user, register=False)


async def _refused(ua: UserAgent, target: str) -> int:
    call = await ua.call(target)
    with pytest.raises(CallFailed) as failed:
        await asyncio.wait_for(call.answered, 5)
    return failed.value.status


async def test_direct_message_then_full_mailbox_then_unknown(server: SipServer) -> None:
    assert server.store is not None
    store = server.store.store
    async with _ua(server, "bob") as bob:
        call = await bob.call(VM)
        await asyncio.wait_for(call.answered, 5)
        call.play(ToneSource(600, amplitude=0.3))
        await asyncio.sleep(3.0)  # tone greeting (1 s), beep, then recorded
        await call.hangup()
        for _ in range(50):
            if await server.store.call(lambda: store.count_voicemail(f"alice@{DOMAIN}")) == (1, 0):
                break
            await asyncio.sleep(0.1)
        (msg,) = await server.store.call(lambda: store.list_voicemail(f"alice@{DOMAIN}"))
        assert msg.caller == f"bob@{DOMAIN}" and msg.duration_s > 0.5
        assert await _refused(bob, VM) == 486  # voicemail.max_messages = 1
        assert await _refused(bob, VM.replace("alice", "nobody")) == 404
        assert await _refused(bob, f"sip:voicemail@{DOMAIN}") == 404  # whose mailbox?


async def test_star98_says_goodbye_when_no_pin_is_keyed(tmp_path: Path) -> None:
    clock = FakeClock()
    add_users(tmp_path / "sipline.db", ["alice"])
    config = loopback_config(tmp_path / "sipline.db", voicemail_speech=False)
    async with running(config, clock) as srv:
        assert srv.store is not None
        store = srv.store.store
        await srv.store.write(lambda: store.set_mailbox_pin(f"alice@{DOMAIN}", hash_pin("4321")))
        async with _ua(srv, "alice") as alice:
            call = await alice.call(f"sip:*98@{DOMAIN}")
            await asyncio.wait_for(call.answered, 5)  # "enter your PIN"; 15 s to key it
            await advance(clock, Retrieval((), None).input_s - 0.5)
            assert call.is_active
            await advance(clock, 0.5)
            ended = await asyncio.wait_for(call.ended, 5)  # after the goodbye prompt
            assert ended.by is EndedBy.REMOTE


async def test_star98_needs_a_pin_without_call_authentication(tmp_path: Path) -> None:
    add_users(tmp_path / "sipline.db", ["alice"])
    config = loopback_config(
        tmp_path / "sipline.db", voicemail_speech=False, authenticate_calls=False
    )
    async with running(config) as srv, _ua(srv, "alice") as alice:
        assert await _refused(alice, f"sip:*98@{DOMAIN}") == 403
