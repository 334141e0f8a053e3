"""Overload control in `sipline serve` (RFC 3261 §21.5.4): what is shed, what never is,
and the signals that decide it, over real UDP sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from server_helpers import DOMAIN, ServerFactory, UAFactory

from sipline.apps.server import SipServer
from sipline.core.message import Response
from sipline.runtime.overload import OverloadConfig, OverloadGuard
from sipline.storage import AsyncStore, StoreBusyError

ALICE = f"alice@{DOMAIN}"


def trip(server: SipServer) -> OverloadGuard:
    """Make the loop-lag detector see a lagging loop (as a blocked loop would)."""
    guard = server.endpoint.overload
    assert guard is not None
    guard.observe(10.0)
    assert guard.lagging
    return guard


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
    # The lag falls: shedding stops (hysteresis at half the limit) and service is back.
    while guard.lagging:
        guard.observe(0.0)
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
    for _ in range(100):
        if server.endpoint.pending_transactions == 1:
            break
        await asyncio.sleep(0.01)
    assert server.endpoint.pending_transactions == 1
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
    await asyncio.gather(*queued)
    assert refused and store.refused == 1


async def test_a_filling_udp_queue_is_seen(make_server: ServerFactory, make_ua: UAFactory) -> None:
    """Datagrams the loop has not read yet fill the socket's queue (SO_MEMINFO)."""
    server = await make_server(overload_max_udp_queue_fill=0.001)
    guard = server.endpoint.overload
    assert guard is not None
    item = server.endpoint.listening("UDP")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(200):  # sent while this coroutine holds the loop: none is read
            sock.sendto(b"\r\n\r\n" + b"x" * 500, (item.host, item.port))
        fill = server.endpoint._udp_queue_fill()
    if fill == 0.0:
        pytest.skip("SO_MEMINFO is not available here")
    guard.observe_queue(fill)
    assert guard.queue_filling and guard.reason() == "receive queue filling"
    ua = await make_ua(server)
    assert shed((await ua.register(ALICE, None)).final)
    await asyncio.sleep(0.2)  # the loop drains the queue; the next samples see it empty
    assert not guard.queue_filling
    assert (await ua.register(ALICE, "alice-pw")).final.status == 200
