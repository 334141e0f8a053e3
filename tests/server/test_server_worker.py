"""One `SipServer` run as a worker (`WorkerSetup`): sockets handed over by a
supervisor, requests it forwards sent from the public port and naming it in their
Via and Record-Route (no port of its own: docs/architecture.md "Workers")."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_helpers import DOMAIN, USERS, configured, server_target
from sipua import TestUA
from test_proxy_server import ALICE, BOB, invite, registered

from sipline.core.message import Response, parse_message
from sipline.server.config import parse_listen
from sipline.server.security.route_sign import RouteSigner
from sipline.server.sip_server import SipServer, WorkerSetup
from sipline.testing.ports import free_port_pair
from sipline.transport.loop import run
from sipline.transport.shared import probe, shared_socket

HOST = "127.0.0.1"


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[SipServer]:
    port = free_port_pair(HOST)
    cfg = configured(
        listen=[parse_listen(f"udp:{HOST}:{port}"), parse_listen(f"tcp:{HOST}:{port}")],
        domains=[DOMAIN],
        database=tmp_path / "worker.db",
    )
    setup = WorkerSetup(
        index=1,
        secret=os.urandom(32),
        sockets=[shared_socket("UDP", HOST, port, 1 << 20), shared_socket("TCP", HOST, port, 0)],
    )
    server = SipServer(cfg, worker=setup)
    await server.start()
    assert server.store is not None
    for user, password in USERS.items():
        await server.store.write(server.store.store.add_user, user, DOMAIN, password)
    yield server
    await server.stop()


async def test_forwarded_requests_go_from_the_public_port(worker: SipServer) -> None:
    uas: list[TestUA] = []

    async def make_ua(server: SipServer, transport: str = "UDP") -> TestUA:
        ua = await TestUA.start(server_target(server, transport), transport)
        uas.append(ua)
        return ua

    try:
        public = worker.endpoint.local_address("UDP")
        assert worker.store is not None and worker.store.shared
        # The owner names the node (its public address) and the worker (server/node.py).
        assert worker.im is not None and worker.im.notifier.owner == f"{HOST}:{public.port}/1"
        bob = await registered(worker, make_ua, BOB)
        bob.on_invite = lambda ua, st: ua.answer_invite(st, 486)
        caller = await make_ua(worker)
        done = await invite(caller, BOB, ALICE)
        assert done.final.status == 486
        [st] = [st for st in bob.received if st.request.method == "INVITE"]
        assert st.request.top_via.port == public.port  # what a firewall in front expects
        assert st.inbound.source.remote == (HOST, public.port)
        # Record-Route names the public port, signed with the secret every worker has
        # (sipline.server.security.route_sign), so any worker admits the dialog's requests.
        assert worker.worker is not None
        sl = RouteSigner(worker.worker.secret).param(st.request)
        assert st.request.headers.get("record-route") == f"<sip:{HOST}:{public.port}{sl};lr>"
        # Nonce counts stay in the worker's memory (nothing claimed in the store):
        # bob's REGISTER and alice's INVITE, each on a nonce this worker issued.
        assert worker.backend is not None
        verifier = worker.backend.auth.verifier(DOMAIN)
        assert verifier.tracked_nonces >= 2
    finally:
        for ua in uas:
            await ua.close()


def test_requests_queued_before_start_are_answered_as_ours(tmp_path: Path) -> None:
    """The supervisor binds the shared socket before the worker starts: datagrams wait
    in it, and are read as soon as the worker's loop turns, while it is still opening
    listeners. An OPTIONS to the server itself among them is answered 200, not 404.
    Run on the loop `serve` uses (uvloop reads a new socket before `listen` returns)."""
    port = probe("UDP", HOST, 0)
    cfg = configured(
        listen=[parse_listen(f"udp:{HOST}:{port}")], domains=[DOMAIN], database=tmp_path / "w.db"
    )
    shared = shared_socket("UDP", HOST, port, 1 << 20)
    setup = WorkerSetup(
        index=0,
        secret=os.urandom(32),
        sockets=[shared],
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind((HOST, 0))
        peer.settimeout(5)
        me = peer.getsockname()[1]
        options = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bK-early-1;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:probe@example.net>;tag=early\r\n"
            f"To: <sip:{HOST}:{port}>\r\nCall-ID: early-1@{HOST}\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        peer.sendto(options, (HOST, port))  # queued: nobody reads the socket yet

        async def serve_until_answered() -> bytes:
            server = SipServer(cfg, worker=setup)
            await server.start()
            try:  # the peer's socket times out after 5 s
                return await asyncio.to_thread(peer.recv, 65535)
            finally:
                await server.stop()

        answer = parse_message(run(serve_until_answered()))
    assert isinstance(answer, Response) and answer.status == 200, answer
