"""Overload control in `sipline serve` (RFC 3261 §21.5.4): what is shed, what never is,
and the signals that decide it, over real UDP sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from server_helpers import DOMAIN, USERS, ServerFactory, UAFactory, configured

from sipline.core.message import Response
from sipline.runtime.overload import OverloadConfig, OverloadGuard
from sipline.server.config import parse_listen
from sipline.server.sip_server import SipServer
from sipline.storage import AsyncStore, StoreBusyError
from sipline.testing import FakeClock, advance

pytestmark = pytest.mark.serial  # measures time or load (make test runs it alone)

ALICE = f"alice@{DOMAIN}"

SteppedFactory = Callable[..., Awaitable[tuple[SipServer, FakeClock]]]


@pytest.fixture
async def make_stepped(tmp_path: Path) -> AsyncIterator[SteppedFactory]:
    """A server on a FakeClock: its overload samples run as the test advances time (the
    user agents talking to it stay on real time)."""
    started: list[SipServer] = []

    async def make(**overrides: Any) -> tuple[SipServer, FakeClock]:
        cfg = configured(
            listen=[parse_listen("udp:127.0.0.1:0")],
            domains=[DOMAIN],
            database=tmp_path / f"stepped{len(started)}.db",
            **overrides,
        )
        clock = FakeClock()
        server = SipServer(cfg, clock=clock)
        started.append(server)
        await server.start()
        assert server.store is not None
        for user, password in USERS.items():
            await server.store.write(server.store.store.add_user, user, DOMAIN, password)
        return server, clock

    yield make
    for server in started:
        await server.stop()


def trip(server: SipServer) -> OverloadGuard:
    """Make the loop-lag detector see a lagging loop (as a blocked loop would) for long
    enough that everything new is shed."""
    guard = server.endpoint.overload
    assert guard is not None
    guard.observe(10.0)
    assert guard.lagging
    while guard.shed_fraction < 1.0:
        guard.adjust()
    return guard


def calm(guard: OverloadGuard) -> None:
    """The samples a loop running freely again gives, until nothing is shed."""
    while guard.shed_fraction > 0.0:
        guard.observe(0.0)
        guard.adjust()


async def until(condition: Callable[[], bool], turns: int = 10_000) -> None:
    """Let the loop turn (sockets read, handlers run) until `condition` holds."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met")


def shed(response: Response) -> bool:
    return response.status == 503 and response.headers.get("retry-after") is not None


async def test_new_requests_get_503_with_retry_after_and_service_returns(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(overload_retry_after_s=7)
    ua = await make_ua(server)
    guard = trip(server)
    for method in ("REGISTER", "INVITE", "MESSAGE", "SUBSCRIBE"):
        if method == "REGISTER":
            exchange = await ua.register(ALICE, None)
        else:
            request = ua.build(method, f"sip:bob@{DOMAIN}", from_="sipp@elsewhere.test")
            if method == "SUBSCRIBE":
                request.headers.add("Event", "presence")
            exchange = await ua.send(request)
        final = exchange.final
        assert shed(final), (method, final)
        assert final.headers.get("retry-after") == "7"  # §20.33
        assert final.to.tag is not None and final.to.tag.startswith("ol")
    assert server.endpoint.stats.overload_rejections == 4
    # The client transaction ACKed the 503 (INVITE): the ACK ended at the server.
    await asyncio.sleep(0.05)
    assert server.endpoint.stats.shed_acks == 1
    assert "overload_rejections=4" in server.status()
    # OPTIONS to the server itself is answered statelessly, overloaded or not.
    options = await ua.send(ua.build("OPTIONS", f"sip:{DOMAIN}", from_=ALICE))
    assert options.final.status == 200
    # The lag falls: the shed fraction decays to nothing and service is back.
    calm(guard)
    assert not guard.lagging and not guard.overloaded
    assert (await ua.register(ALICE, "alice-pw")).final.status == 200


async def test_in_dialog_requests_and_cancel_are_never_shed(
    server: SipServer, make_ua: UAFactory
) -> None:
    ua = await make_ua(server)
    trip(server)
    bye = ua.build("BYE", f"sip:bob@{DOMAIN}", from_="sipp@elsewhere.test", to_tag="abc")
    final = (await ua.send(bye)).final
    assert final.status != 503  # handled as usual (no such dialog here)
    cancel = ua.build("CANCEL", f"sip:bob@{DOMAIN}", from_="sipp@elsewhere.test")
    assert (await ua.send(cancel)).final.status == 481  # §9.2: no INVITE to cancel
    assert server.endpoint.stats.overload_rejections == 0


async def test_pending_transactions_limit(make_server: ServerFactory, make_ua: UAFactory) -> None:
    """A callee that never answers holds its INVITE open: the second one is shed."""
    server = await make_server(overload_max_pending=1)
    callee = await make_ua(server)
    callee.on_invite = lambda ua, st: None  # ring forever (well: until the test ends)
    contact = callee.contact("bob")
    assert (await callee.register(f"bob@{DOMAIN}", "bob-pw", contact=contact)).final.status == 200
    assert server.endpoint.pending_transactions == 0
    caller = await make_ua(server)
    first = caller.build("INVITE", f"sip:bob@{DOMAIN}", from_="sipp@elsewhere.test")
    pending = caller.ep.send_request(first, caller.server)
    await until(lambda: server.endpoint.pending_transactions == 1)
    second = caller.build("INVITE", f"sip:bob@{DOMAIN}", from_="sipp@elsewhere.test")
    assert shed((await caller.send(second)).final)
    pending.cancel()
    assert (await asyncio.wait_for(pending.final, 5)).status == 487
    assert server.endpoint.pending_transactions == 0


async def test_the_lag_sampler_sees_a_blocked_loop(make_server: ServerFactory) -> None:
    server = await make_server(overload_max_loop_lag_ms=100.0)
    guard = server.endpoint.overload
    assert guard is not None and not guard.lagging
    asyncio.get_running_loop().call_soon(time.sleep, 0.5)  # the loop is stuck for 0.5 s
    await asyncio.sleep(0.1)
    assert guard.stats.max_lag_s >= 0.4
    assert guard.stats.episodes == 1  # 0.3 x 0.5 s smoothed is over the 100 ms limit
    for _ in range(100):  # ... and it recovers by itself once the loop runs freely
        if not guard.lagging:
            break
        await asyncio.sleep(0.05)
    assert not guard.lagging


def test_guard_signals() -> None:
    counts = {"pending": 0, "live": 0, "backlog": 0}
    guard = OverloadGuard(
        OverloadConfig(max_pending_transactions=2, max_server_transactions=5, max_store_backlog=3),
        pending=lambda: counts["pending"],
        live=lambda: counts["live"],
    )
    guard.backlog = lambda: counts["backlog"]
    assert guard.reason() is None
    counts["pending"] = 2
    assert guard.reason() == "too many transactions in progress"
    counts.update(pending=0, live=5)
    assert guard.reason() == "transaction table full"
    counts.update(live=0, backlog=3)
    assert guard.reason() == "store backlog"
    guard.config.enabled = False
    assert guard.reason() is None


async def test_a_full_store_queue_refuses_at_once(server: SipServer) -> None:
    store = server.store
    assert isinstance(store, AsyncStore)
    released = threading.Event()
    blocker = asyncio.ensure_future(store.call(released.wait))  # holds the worker thread
    await asyncio.sleep(0.05)
    store.max_queue = 2
    queued = [asyncio.ensure_future(store.list_domains()) for _ in range(2)]
    await asyncio.sleep(0)
    try:
        await store.list_domains()
    except StoreBusyError:
        refused = True
    else:
        refused = False
    released.set()
    await blocker
    # The server's own polls (the binding feed every 20 ms) queue too and may have
    # taken a slot before the calls above: any of those may have been refused.
    await asyncio.gather(*queued, return_exceptions=True)
    assert refused and store.refused >= 1


async def test_a_filling_udp_queue_is_seen(
    make_stepped: SteppedFactory, make_ua: UAFactory
) -> None:
    """Datagrams the loop has not read yet fill the socket's queue (SO_MEMINFO)."""
    server, clock = await make_stepped(overload_max_udp_queue_fill=0.001)
    guard = server.endpoint.overload
    assert guard is not None
    item = server.endpoint.local_address("UDP")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(200):  # sent while this coroutine holds the loop: none is read
            sock.sendto(b"\r\n\r\n" + b"x" * 500, (item.host, item.port))
        fill = server.endpoint.transports.udp_queue_fill()
    if fill == 0.0:
        pytest.skip("SO_MEMINFO is not available here")
    guard.observe_queue(fill)
    guard.adjust()
    assert guard.queue_filling and guard.shed_fraction == guard.config.min_shed
    decisions = [guard.reason() for _ in range(10)]  # one in ten is shed
    assert [d for d in decisions if d is not None] == ["receive queue filling"]
    ua = await make_ua(server)
    # The loop drains the queue (a datagram a turn, at worst); the next samples see it empty.
    await advance(clock, 0.2, turns=100)
    assert not guard.queue_filling
    calm(guard)
    assert (await ua.register(ALICE, "alice-pw")).final.status == 200


def test_the_shed_fraction_moves_with_the_signals_and_spares_continuations() -> None:
    """Not on-off: the fraction grows while a signal holds, holds between the limit and
    half of it, decays below; requests with credentials are spared until one half."""
    guard = OverloadGuard(OverloadConfig(), pending=lambda: 0, live=lambda: 0)

    def shares(n: int = 1000) -> tuple[float, float]:
        new = sum(guard.reason() is not None for _ in range(n)) / n
        continued = sum(guard.reason(continued=True) is not None for _ in range(n)) / n
        return new, continued

    assert shares() == (0.0, 0.0)
    guard.observe_wait(1.0)  # over the 0.4 s limit
    guard.adjust()
    assert guard.waiting and guard.shed_fraction == 0.1 and guard.stats.episodes == 1
    assert shares() == (0.1, 0.0)
    guard.adjust()
    guard.adjust()
    p = guard.shed_fraction
    assert p == pytest.approx(0.225)
    guard.observe_wait(0.3)  # under the limit, over half: the fraction holds
    guard.adjust()
    assert guard.waiting and guard.shed_fraction == p
    guard.observe_wait(0.1)  # under half: decays step by step
    guard.adjust()
    assert not guard.waiting and guard.shed_fraction == pytest.approx(p - 0.02)
    guard.observe_wait(1.0)
    for _ in range(3):
        guard.adjust()
    assert guard.shed_fraction == pytest.approx((p - 0.02) * 1.5**3)
    new, continued = shares()
    assert new == pytest.approx(guard.shed_fraction, abs=0.002)
    assert continued == pytest.approx(2 * guard.shed_fraction - 1, abs=0.002)
    for _ in range(5):
        guard.adjust()
    assert guard.shed_fraction == 1.0 and shares() == (1.0, 1.0)
    guard.observe_wait(0.0)
    for _ in range(50):
        guard.adjust()
    assert guard.shed_fraction == 0.0 and not guard.overloaded and shares() == (0.0, 0.0)
    assert guard.stats.episodes == 1


async def test_a_request_left_waiting_is_seen(
    make_stepped: SteppedFactory, make_ua: UAFactory
) -> None:
    """The response-wait signal: a REGISTER held up by a busy store thread."""
    server, clock = await make_stepped()
    store = server.store
    assert isinstance(store, AsyncStore)
    guard = server.endpoint.overload
    assert guard is not None
    ua = await make_ua(server)
    released = threading.Event()
    blocker = asyncio.ensure_future(store.call(released.wait))  # holds the store thread
    try:
        await asyncio.sleep(0.05)
        held = asyncio.ensure_future(ua.register(ALICE, "alice-pw"))
        # Challenged without the store (§22), it comes back with credentials to check.
        await until(lambda: store.backlog >= 1 and server.endpoint.pending_transactions == 1)
        await advance(clock, 0.6)
        assert server.endpoint.admission is not None
        wait_s = server.endpoint.admission.oldest_wait()
        shedding = guard.waiting and guard.shed_fraction > 0.0
    finally:
        released.set()
        await blocker
    assert shedding and wait_s == 0.6, wait_s
    assert (await asyncio.wait_for(held, 5)).final.status == 200
    await advance(clock, 0.1)  # two samples
    assert server.endpoint.admission.oldest_wait() == 0.0 and not guard.waiting


async def test_a_request_relayed_onwards_is_not_waiting_on_us(
    make_stepped: SteppedFactory, make_ua: UAFactory
) -> None:
    """A non-INVITE proxied to a device that never answers waits on that device (until
    Timer F, §17.1.2.2), not on this server: it does not move the shed fraction."""
    server, clock = await make_stepped()
    callee = await make_ua(server)
    contact = callee.contact("bob")
    assert (await callee.register(f"bob@{DOMAIN}", "bob-pw", contact=contact)).final.status == 200
    callee.ep.on_request = lambda st: None  # silent
    caller = await make_ua(server)
    probe = caller.build("OPTIONS", f"sip:bob@{DOMAIN}", from_="sipp@elsewhere.test")
    caller.ep.send_request(probe, caller.server)  # left to Timer F: the test ends first
    await until(lambda: server.endpoint.pending_transactions == 1)
    await advance(clock, 0.6)
    assert server.endpoint.pending_transactions == 1
    assert server.endpoint.admission is not None
    assert server.endpoint.admission.oldest_wait() == 0.0
    guard = server.endpoint.overload
    assert guard is not None and guard.shed_fraction == 0.0


async def test_a_request_in_the_dialog_a_503_seemed_to_open_gets_481(
    server: SipServer, make_ua: UAFactory
) -> None:
    """A 503 creates no dialog (§12.1); SIPp still sends a BYE with its To tag after the
    failed call. It is answered 481 at once (§12.2.2), not routed anywhere."""
    ua = await make_ua(server)
    guard = trip(server)
    invite = ua.build("INVITE", f"sip:bob@{DOMAIN}", from_="sipp@elsewhere.test")
    final = (await ua.send(invite)).final
    assert shed(final) and final.to.tag is not None
    calm(guard)  # answered so whether or not it is still shedding
    bye = ua.build(
        "BYE",
        f"sip:bob@{DOMAIN}",
        from_="sipp@elsewhere.test",
        to_tag=final.to.tag,
        call_id=invite.call_id,
        cseq=2,
    )
    bye.headers.set("From", invite.headers.get("From") or "")  # the same From tag
    answer = (await ua.send(bye)).final
    assert answer.status == 481 and answer.to.tag == final.to.tag
    assert server.endpoint.pending_transactions == 0
