"""Failed authentication is limited per source (README "Running on the Internet"):
the guard's rules with a hand-stepped clock, then a real `SipServer` over loopback
UDP with clients on several 127.0.0.x addresses."""

from __future__ import annotations

import asyncio
import logging
import time
from ipaddress import ip_network
from pathlib import Path

import pytest
from server_helpers import DOMAIN, USERS, ServerFactory, server_target
from sipua import TestUA

from sipline.core.message import Request, parse_message
from sipline.runtime.endpoint import Endpoint
from sipline.server.security.guard import (
    UNDER_ATTACK_FAILURES,
    AuthGuard,
    GuardSettings,
    source_key,
)
from sipline.server.security.monitor import SecurityMonitor
from sipline.server.security.relay import TrustedPeer
from sipline.server.sip_server import SipServer
from sipline.storage.aio import AsyncStore
from sipline.transport import Target

ALICE = f"alice@{DOMAIN}"
SETTINGS = GuardSettings(max_failures=10, window_s=60.0, ban_s=60.0, max_ban_s=3600.0)

# --- the guard, no I/O -------------------------------------------------------------------


def test_a_source_is_banned_at_the_threshold_and_the_ban_doubles() -> None:
    guard = AuthGuard(SETTINGS)
    bans = [guard.failed("192.0.2.7", "alice@example.com", 100.0 + i) for i in range(10)]
    assert bans[:9] == [None] * 9
    first = bans[9]
    assert first is not None and first.offences == 1 and first.until == 109.0 + 60.0
    assert guard.banned("192.0.2.7", 168.9) and not guard.banned("192.0.2.7", 169.0)
    assert not guard.banned("192.0.2.8", 150.0)  # other sources are served
    again = [guard.failed("192.0.2.7", "alice@example.com", 200.0 + i) for i in range(10)]
    assert again[9] is not None and again[9].offences == 2 and again[9].duration_s == 120.0
    lengths = [guard.ban_length(n) for n in range(1, 9)]
    assert lengths == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_failures_spread_beyond_the_window_do_not_ban() -> None:
    guard = AuthGuard(SETTINGS)
    assert all(guard.failed("192.0.2.7", "a@x", i * 7.0) is None for i in range(30))


def test_a_success_forgets_the_sources_failures() -> None:
    guard = AuthGuard(SETTINGS)
    for i in range(9):
        guard.failed("192.0.2.7", "a@x", float(i))
    guard.succeeded("192.0.2.7")
    assert guard.failed("192.0.2.7", "a@x", 10.0) is None


def test_a_user_attacked_from_many_sources_is_slowed_not_locked() -> None:
    """Bans fall on sources: the user's own devices elsewhere are never banned. Once
    the user is under attack, each further source gets fewer guesses on it."""
    guard = AuthGuard(SETTINGS)
    for i in range(11):  # eleven sources, one guess each: nobody banned, user attacked
        assert guard.failed(f"198.51.100.{i}", "alice@x", float(i) / 10) is None
    assert guard.under_attack("alice@x", 2.0)
    new = "198.51.100.200"
    bans = [guard.failed(new, "alice@x", 2.0 + i) for i in range(UNDER_ATTACK_FAILURES)]
    assert bans[-1] is not None and bans[:-1] == [None] * (UNDER_ATTACK_FAILURES - 1)
    assert not guard.banned("203.0.113.1", 5.0)  # the user's phone
    assert guard.failed("203.0.113.1", "bob@x", 5.0) is None  # another user: the usual limit
    assert not guard.under_attack("alice@x", 200.0)  # the attack is over


def test_a_ban_falls_on_an_ipv4_address_or_an_ipv6_64() -> None:
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("[2001:db8:1:2::ffff]")
    assert source_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")


def test_bans_learnt_from_other_processes_apply() -> None:
    guard = AuthGuard(SETTINGS)
    guard.learn("192.0.2.9", 500.0, 3)
    assert guard.banned("192.0.2.9", 499.0) and not guard.banned("192.0.2.9", 500.0)


# --- a real server ------------------------------------------------------------------------


async def ua_at(server: SipServer, host: str) -> TestUA:
    """A test user agent bound to `host` (a 127.0.0.x address of its own)."""
    ep = Endpoint()
    await ep.bind("UDP", host, 0)
    return TestUA(ep, server_target(server), "UDP")


async def register(ua: TestUA, password: str, user: str = "alice") -> int:
    host = ua.ep.local_address("UDP").host
    contact = f"sip:{user}@{host}:{ua.port}"
    done = await ua.register(f"{user}@{DOMAIN}", password, contact=contact)
    return done.final.status


async def test_password_guessing_source_is_banned_others_served(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server()
    attacker = await ua_at(server, "127.0.0.2")
    phone = await ua_at(server, "127.0.0.3")
    caplog.set_level(logging.WARNING, "sipline.security")
    try:
        statuses = [await register(attacker, f"{n:04d}") for n in range(15)]
        print("guesses answered:", statuses)
        # Ten guesses are challenged again (401), then the source is refused (403)...
        assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {403}
        # ... even with the right password,
        assert await register(attacker, USERS["alice"]) == 403
        # ... while the user's own phone elsewhere registers at once.
        assert await register(phone, USERS["alice"]) == 200
    finally:
        await attacker.close()
        await phone.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "sipline.security"]
    failed = [line for line in lines if line.startswith("auth-failed ")]
    assert len(failed) == 10
    assert (
        failed[0].startswith("auth-failed src=127.0.0.2:")
        and 'user="alice@example.com"' in (failed[0])
    )
    assert failed[0].endswith("reason=wrong-credentials")
    assert [line for line in lines if line.startswith("banned ")] == [
        "banned src=127.0.0.2 seconds=60 offences=1 failures=10"
    ]
    # Six refusals of the banned source within 10 s: one line says it goes on.
    refused = [line for line in lines if line.startswith("refused ")]
    assert len(refused) == 1 and refused[0].startswith("refused src=127.0.0.2:")
    assert refused[0].endswith(" reason=banned")


async def test_unknown_users_count_as_failures_too(make_server: ServerFactory) -> None:
    """svwar and svcrack try names that do not exist: each is a failure."""
    server = await make_server()
    scanner = await ua_at(server, "127.0.0.4")
    try:
        statuses = [await register(scanner, "x", user=f"u{n}") for n in range(12)]
    finally:
        await scanner.close()
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {403}


async def test_a_banned_source_may_still_call_emergency_services(
    make_server: ServerFactory,
) -> None:
    psap_ep = Endpoint()
    await psap_ep.bind("UDP", "127.0.0.6", 0)
    psap = TestUA(psap_ep, Target("UDP", "127.0.0.1", 9), "UDP")
    psap.on_invite = lambda ua, st: ua.answer_invite(st, 486)
    server = await make_server(emergency_psap=f"sip:psap@127.0.0.6:{psap.port}")
    phone = await ua_at(server, "127.0.0.5")
    try:
        for n in range(10):
            await register(phone, f"bad{n}")
        assert await register(phone, USERS["alice"]) == 403  # banned
        request = phone.build("INVITE", f"sip:112@{DOMAIN}", from_=ALICE, to=f"112@{DOMAIN}")
        done = await phone.send(request)
        assert done.final.status == 486  # the PSAP's answer: the call went through
        assert len(psap.requests("INVITE")) == 1
    finally:
        await phone.close()
        await psap.close()


async def test_a_stranger_relaying_from_a_banned_source_is_refused_early(
    make_server: ServerFactory,
) -> None:
    """Relay attempts with guessed credentials count too, and end in a ban."""
    server = await make_server()
    attacker = await ua_at(server, "127.0.0.7")
    statuses = []
    try:
        for n in range(12):
            request = attacker.build("INVITE", "sip:+4930123456@203.0.113.9", from_="x@evil.test")
            first = await attacker.send(request)
            if first.final.status == 407:
                retry = attacker.answer(request, first.final, "alice", f"{n:04d}")
                first = await attacker.send(retry)
            statuses.append(first.final.status)
    finally:
        await attacker.close()
    assert set(statuses) == {403}
    assert server.security is not None and server.security.banned("127.0.0.7")


async def test_success_costs_no_store_write(make_server: ServerFactory) -> None:
    """Counting is in memory: a successful REGISTER commits its binding, nothing else,
    and failures alone write nothing."""
    server = await make_server()
    assert server.store is not None
    phone = await ua_at(server, "127.0.0.8")
    try:
        await register(phone, USERS["alice"])  # warm up
        before = server.store.commits
        for _ in range(3):
            await register(phone, "wrong")
        assert server.store.commits == before
        started = time.monotonic()
        assert await register(phone, USERS["alice"]) == 200
        assert server.store.commits == before + 1
        assert time.monotonic() - started < 1.0
    finally:
        await phone.close()
    await asyncio.sleep(0)


async def test_bans_are_shared_through_the_store(tmp_path: Path) -> None:
    """Two workers on one store file: a ban one decides is applied by the other at its
    next poll, and forgotten once over for longer than the longest ban."""
    path = tmp_path / "shared.db"
    clock = [1000.0]
    async with await AsyncStore.open(path) as one, await AsyncStore.open(path) as two:
        spawned: list[asyncio.Task[None]] = []
        first = SecurityMonitor(
            SETTINGS, wall=lambda: clock[0], store=one, spawn=lambda c: spawned.append(
                asyncio.ensure_future(c)
            )
        )  # fmt: skip
        second = SecurityMonitor(SETTINGS, wall=lambda: clock[0], store=two, spawn=lambda c: None)
        await first.start()
        await second.start()
        request = parse_message(
            b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
            b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\n"
            b"CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        )
        assert isinstance(request, Request)
        for _ in range(SETTINGS.max_failures):
            first.auth_failed(request, "a@example.com", ("192.0.2.7", 5060))
        await asyncio.gather(*spawned)
        assert first.banned("192.0.2.7") and not second.banned("192.0.2.7")
        await second.poll()
        assert second.banned("192.0.2.7") and not second.banned("192.0.2.8")
        clock[0] += SETTINGS.ban_s
        assert not second.banned("192.0.2.7")  # over
        clock[0] += SETTINGS.max_ban_s + 1
        await first.purge()
        assert await one.call(one.store.bans_after, 0) == []


async def test_trusted_peers_are_never_banned(make_server: ServerFactory) -> None:
    """An SBC or trunk carries many users' attempts from one address: its failures are
    logged, not counted, so it is never banned."""
    server = await make_server(trusted=[TrustedPeer(ip_network("127.0.0.10/32"), "sbc")])
    sbc = await ua_at(server, "127.0.0.10")
    try:
        statuses = [await register(sbc, f"bad{n}") for n in range(12)]
        assert set(statuses) == {401}
        assert await register(sbc, USERS["alice"]) == 200
    finally:
        await sbc.close()
