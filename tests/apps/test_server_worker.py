"""One `SipServer` run as a worker (`WorkerSetup`): sockets handed over by a
supervisor, requests it forwards sent from its private UDP port and naming it in
their Via, while Record-Route names the public one (docs/architecture.md "Workers")."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_helpers import DOMAIN, USERS, server_target
from sipua import TestUA
from test_proxy_server import ALICE, BOB, invite, registered

from sipline.apps.config import ServerConfig, parse_listen
from sipline.apps.server import SipServer, WorkerSetup
from sipline.transport.shared import private_udp_socket, probe, shared_socket

HOST = "127.0.0.1"


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[SipServer]:
    port = probe("UDP", HOST, 0)
    port = probe("TCP", HOST, port)
    cfg = ServerConfig(
        listen=[parse_listen(f"udp:{HOST}:{port}"), parse_listen(f"tcp:{HOST}:{port}")],
        domains=[DOMAIN],
        database=tmp_path / "worker.db",
    )
    setup = WorkerSetup(
        index=1,
        secret=os.urandom(32),
        sockets=[shared_socket("UDP", HOST, port, 1 << 20), shared_socket("TCP", HOST, port, 0)],
        private=[(HOST, private_udp_socket(HOST, 1 << 20))],
    )
    server = SipServer(cfg, worker=setup)
    await server.start()
    assert server.store is not None
    for user, password in USERS.items():
        await server.store.write(server.store.store.add_user, user, DOMAIN, password)
    yield server
    await server.stop()


async def test_forwarded_requests_go_from_the_private_port(worker: SipServer) -> None:
    uas: list[TestUA] = []

    async def make_ua(server: SipServer, transport: str = "UDP") -> TestUA:
        ua = await TestUA.start(server_target(server, transport), transport)
        uas.append(ua)
        return ua

    try:
        public = worker.endpoint.listening("UDP")
        private = worker.endpoint.listening("UDP", via=True)
        assert private.private and not public.private and private.port != public.port
        assert worker.store is not None and worker.store.shared
        assert worker.im is not None and worker.im.notifier.owner == "1"
        bob = await registered(worker, make_ua, BOB)
        bob.on_invite = lambda ua, st: ua.answer_invite(st, 486)
        caller = await make_ua(worker)
        done = await invite(caller, BOB, ALICE)
        assert done.final.status == 486
        [st] = [st for st in bob.received if st.request.method == "INVITE"]
        assert st.request.top_via.port == private.port  # responses come back to us
        assert st.inbound.source.remote == (HOST, private.port)
        assert f"{HOST}:{public.port};lr" in (st.request.headers.get("record-route") or "")
        # The nonce count of alice's credentials was claimed in the shared store.
        rows = await worker.store.call(worker.store.store._query, "SELECT nc FROM digest_nonces")
        assert rows == [(1,)] * len(rows) and len(rows) >= 2  # bob's REGISTER, alice's INVITE
    finally:
        for ua in uas:
            await ua.close()
