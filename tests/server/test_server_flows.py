"""Flows have owners, in one process: two `SipServer` workers on the same SO_REUSEPORT
sockets, joined by the channel a supervisor would give them (transport/channel.py).

A phone registered over TCP holds its connection at one worker; the registrar records
that flow (a flow token naming the worker and the phone's address, under our public
URI); a request entering at the other worker is handed to the owner and sent on the
phone's connection, and the phone's answer comes back to the worker that sent the
request (the branch names it). When the phone's connection is gone, no worker dials
its port: the request fails 430 Flow Failed (RFC 5626 §5.3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_helpers import DOMAIN, server_target, two_workers
from sipua import Dialog, TestUA
from test_proxy_server import BOB, registered

from sipline.core.flow_token import Flow, FlowCodec
from sipline.core.uri import SipUri, parse_uri
from sipline.runtime.siblings import branch_worker
from sipline.server.records.hangup import send_hangup
from sipline.server.sip_server import SipServer
from sipline.testing.ports import free_port_pair

HOST = "127.0.0.1"
STRANGER = "someone@elsewhere.test"


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[SipServer]]:
    port = free_port_pair(HOST)
    async with two_workers(
        tmp_path / "shared.db",
        lambda _: [("UDP", port), ("TCP", port)],
        channel_dir=tmp_path / "channel",
        users=True,
    ) as started:
        yield started


async def start_ua(servers: list[SipServer], uas: list[TestUA], transport: str = "UDP") -> TestUA:
    ua = await TestUA.start(server_target(servers[0], transport), transport)
    uas.append(ua)
    return ua


async def callers_at_both_workers(servers: list[SipServer], uas: list[TestUA]) -> list[TestUA]:
    """UDP callers on ports of their own until each worker has taken some (SO_REUSEPORT
    hashes the source address), as a MESSAGE to nobody tells."""
    found: list[TestUA] = []
    seen: set[int] = set()
    for _ in range(40):
        ua = await start_ua(servers, uas)
        before = [s.endpoint.stats.requests_in for s in servers]
        request = ua.build("OPTIONS", f"sip:{HOST}:{ua.server.port}", from_=STRANGER)
        assert (await ua.send(request)).final.status == 200
        took = [i for i, s in enumerate(servers) if s.endpoint.stats.requests_in > before[i]]
        seen.update(took)
        found.append(ua)
        if seen == {0, 1} and len(found) >= 4:
            return found
    raise AssertionError("the kernel gave every caller to one worker")


async def message(caller: TestUA, to: str = BOB) -> int:
    request = caller.build("MESSAGE", f"sip:{to}", from_=STRANGER, to=to, body=b"hi")
    request.headers.set("Content-Type", "text/plain")
    return (await caller.send(request)).final.status


async def test_the_registrar_records_the_flow_and_its_owner(workers: list[SipServer]) -> None:
    uas: list[TestUA] = []
    try:
        bob = await registered(workers[0], lambda s: start_ua(workers, uas, "TCP"), BOB)
        [connection] = bob.ep.transports.connections
        local = connection.get_extra_info("sockname")
        owner = next(i for i, s in enumerate(workers) if s.endpoint.transports.connections)
        store = workers[0].store
        assert store is not None
        [binding] = await store.call(store.store.list_bindings, BOB)
        assert binding.flow is not None
        uri = parse_uri(binding.flow)
        assert isinstance(uri, SipUri) and uri.user is not None
        public = workers[0].endpoint.local_address("TCP")
        assert (uri.host, uri.port, uri.transport) == (HOST, public.port, "TCP")
        assert "lr" in uri.params
        secret = workers[0].worker.secret if workers[0].worker is not None else b""
        assert FlowCodec(secret).decode(uri.user) == Flow(owner, "TCP", HOST, local[1])
    finally:
        for ua in uas:
            await ua.close()


async def test_a_tcp_phone_is_reached_from_either_worker(workers: list[SipServer]) -> None:
    uas: list[TestUA] = []
    try:
        bob = await registered(workers[0], lambda s: start_ua(workers, uas, "TCP"), BOB)
        callers = await callers_at_both_workers(workers, uas)
        for i in range(20):
            assert await message(callers[i % len(callers)]) == 200
        got = bob.requests("MESSAGE")
        assert len(got) == 20
        # Every one on bob's own connection, from the public port, the branch naming
        # the worker that sent it (and took its answer back).
        assert {w for r in got if (w := branch_worker(r.top_via.branch)) is not None} == {0, 1}
        assert all(r.top_via.port == workers[0].endpoint.local_address("TCP").port for r in got)
        assert len(bob.ep.transports.connections) == 1
        assert sum(s.endpoint.transports.stats.to_siblings for s in workers) >= 2
    finally:
        for ua in uas:
            await ua.close()


async def test_a_udp_phones_answers_reach_the_worker_that_asked(workers: list[SipServer]) -> None:
    """The phone answers to the public port, whose hash may pick the other worker:
    the branch says whose the answer is (no private port)."""
    uas: list[TestUA] = []
    try:
        carol = await registered(workers[0], lambda s: start_ua(workers, uas), "carol@" + DOMAIN)
        callers = await callers_at_both_workers(workers, uas)
        for i in range(20):
            assert await message(callers[i % len(callers)], "carol@" + DOMAIN) == 200
        got = carol.requests("MESSAGE")
        public = workers[0].endpoint.local_address("UDP").port
        assert len(got) == 20 and all(r.top_via.port == public for r in got)
        assert all(st.inbound.remote == (HOST, public) for st in carol.received)
        assert sum(s.endpoint.transports.stats.to_siblings for s in workers) >= 1
    finally:
        for ua in uas:
            await ua.close()


async def test_a_flow_that_is_gone_fails_430_and_is_not_dialled(
    workers: list[SipServer],
) -> None:
    uas: list[TestUA] = []
    try:
        bob = await registered(workers[0], lambda s: start_ua(workers, uas, "TCP"), BOB)
        callers = await callers_at_both_workers(workers, uas)
        for connection in bob.ep.transports.connections:
            connection.abort()
        for _ in range(100):  # until the owner saw it close
            if not any(s.endpoint.transports.connections for s in workers):
                break
            await asyncio.sleep(0.02)
        statuses = {await message(caller) for caller in callers}
        assert statuses == {430}
        assert bob.requests("MESSAGE") == []
        # No worker opened a connection to the phone's port.
        assert all(not s.endpoint.transports.connections for s in workers)
    finally:
        for ua in uas:
            await ua.close()


async def test_the_operator_ends_a_call_over_the_phones_flow(workers: list[SipServer]) -> None:
    """The API's hang-up (server/records/hangup.py) runs at whichever worker serves
    it: the BYE to a TCP phone another worker holds goes over that phone's flow."""
    uas: list[TestUA] = []
    try:
        bob = await registered(workers[0], lambda s: start_ua(workers, uas, "TCP"), BOB)
        # Answered with the Contact it registered (a TestUA's default is another).
        bob.on_invite = lambda ua, st: ua.answer_invite(st, 200, user="bob")
        for _ in range(100):  # each worker follows the store's binding feed
            if all(s.backend is not None and s.backend.bindings(BOB) for s in workers):
                break
            await asyncio.sleep(0.02)
        caller = await start_ua(workers, uas)
        request = caller.build(
            "INVITE", f"sip:{BOB}", from_=STRANGER, to=BOB, contact=caller.contact("someone")
        )
        call = await caller.send(request)
        assert call.final.status == 200
        Dialog(caller, call.request, call.final).ack()
        owner = next(i for i, s in enumerate(workers) if s.endpoint.transports.connections)
        other = workers[1 - owner]
        store = other.store
        assert store is not None
        for _ in range(100):  # the call's messages, written by the 0.2 s flush
            messages = await store.call(store.store.call_messages, request.call_id)
            if any(m.data.startswith(b"SIP/2.0 200") for m in messages):
                break
            await asyncio.sleep(0.05)
        assert await send_hangup(other.endpoint, messages, other.backend)
        await bob.wait_for(lambda: bool(bob.requests("BYE")))
        await caller.wait_for(lambda: bool(caller.requests("BYE")))
        assert len(bob.ep.transports.connections) == 1  # its own, not one we dialled
    finally:
        for ua in uas:
            await ua.close()
