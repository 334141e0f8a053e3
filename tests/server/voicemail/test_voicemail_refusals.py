"""Calls the voicemail service refuses, through a real `SipServer`: a mailbox that does
not exist (404), a full mailbox (486), *98 without a PIN when callers are not
authenticated (403); and a short message left by calling the voicemail URI directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipline.core.timers import TimerConfig
from sipline.media.audio import ToneSource
from sipline.phone import CallFailed, UserAgent
from sipline.server.config import ServerConfig, parse_listen
from sipline.server.sip_server import SipServer
from sipline.storage.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(60)

DOMAIN = "example.com"
HOST = "127.0.0.1"
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
VM = f"sip:voicemail@{DOMAIN};target=sip:alice%40{DOMAIN};cause=408"


async def _server(tmp_path: Path, **overrides: object) -> SipServer:
    db = tmp_path / "sipline.db"
    store = SqliteStore(db)
    store.add_domain(DOMAIN)
    store.add_user("alice", DOMAIN, "alice-pw")
    store.add_user("bob", DOMAIN, "bob-pw")
    store.close()
    config = ServerConfig(listen=[parse_listen(f"udp:{HOST}:0")], domains=[DOMAIN], database=db)
    config.voicemail_speech = False
    for key, value in overrides.items():
        setattr(config, key, value)
    srv = SipServer(config)
    await srv.start()
    return srv


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SipServer]:
    srv = await _server(tmp_path, voicemail_max_messages=1)
    try:
        yield srv
    finally:
        await srv.stop()


def _ua(server: SipServer, user: str) -> UserAgent:
    port = server.endpoint.local_addresses[0].port
    return UserAgent(
        f"{user}@{DOMAIN}",
        password=f"{user}-pw",
        server=f"{HOST}:{port}",
        listen=f"{HOST}:0",
        register=False,
        timers=FAST,
    )


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


async def test_star98_needs_a_pin_without_call_authentication(tmp_path: Path) -> None:
    srv = await _server(tmp_path, authenticate_calls=False)
    try:
        async with _ua(srv, "alice") as alice:
            assert await _refused(alice, f"sip:*98@{DOMAIN}") == 403
    finally:
        await srv.stop()
