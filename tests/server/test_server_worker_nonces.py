"""Digest nonces between two workers sharing a secret and a database, over real
loopback sockets: each worker checks the nonce counts of the nonces it issued, in its
own memory; a right answer to the other worker's nonce is re-challenged with
stale=true (RFC 7616 §3.3), not counted as a failure (docs/architecture.md "Workers")."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_helpers import DOMAIN, USERS, configured, server_target
from sipua import TestUA, challenges_of

from sipline.core.message import Request
from sipline.server.config import parse_listen
from sipline.server.sip_server import SipServer, WorkerSetup
from sipline.transport.shared import probe, shared_socket

HOST = "127.0.0.1"
ALICE = f"alice@{DOMAIN}"


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[SipServer]]:
    """Workers 0 and 1 of one server: one secret, one database (each on its own UDP
    port, so the test picks which one a request reaches)."""
    secret = os.urandom(32)
    started: list[SipServer] = []
    try:
        for index in (0, 1):
            port = probe("UDP", HOST, 0)
            cfg = configured(
                listen=[parse_listen(f"udp:{HOST}:{port}")],
                domains=[DOMAIN],
                database=tmp_path / "shared.db",
            )
            setup = WorkerSetup(
                index=index,
                secret=secret,
                count=2,
                sockets=[shared_socket("UDP", HOST, port, 1 << 20)],
            )
            server = SipServer(cfg, worker=setup)
            started.append(server)
            await server.start()
            store = server.store
            if index == 0:  # before worker 1 starts and loads every HA1
                assert store is not None
                for user, password in USERS.items():
                    await store.write(store.store.add_user, user, DOMAIN, password)
        yield started
    finally:
        for server in started:
            await server.stop()


async def test_a_nonce_is_stale_at_the_other_worker_and_counted_where_issued(
    workers: list[SipServer],
) -> None:
    zero, one = workers
    failures: list[str] = []
    for server in workers:
        assert server.security is not None
        server.security.on_auth_failed = lambda _req, user, _src: failures.append(user)
    ua = await TestUA.start(server_target(zero))
    try:
        first = await ua.register(ALICE, None)
        assert first.final.status == 401
        challenge = challenges_of(first.final)[0]

        def answered(nc: int) -> Request:
            request = ua.retry(first.request)
            ua.add_credentials(request, challenge, "alice", "alice-pw", nc=nc)
            return request

        # Worker 0's nonce at worker 1: a right answer, so a stale challenge with a
        # nonce of worker 1 (the client retries without asking for the password).
        elsewhere = await ua.send(answered(1), server_target(one))
        assert elsewhere.final.status == 401
        restale = challenges_of(elsewhere.final)
        assert restale and all(c.stale for c in restale)
        assert all(c.nonce != challenge.nonce for c in restale)
        retry = ua.retry(first.request)
        ua.add_credentials(retry, restale[0], "alice", "alice-pw")
        assert (await ua.send(retry, server_target(one))).final.status == 200
        # At worker 0, which issued it, the nonce counts: nc 1 is accepted once.
        accepted = answered(1)
        assert (await ua.send(accepted, server_target(zero))).final.status == 200
        replay = await ua.send(ua.retry(accepted), server_target(zero))
        assert replay.final.status == 401
        assert not any(c.stale for c in challenges_of(replay.final))
        assert (await ua.send(answered(2), server_target(zero))).final.status == 200
        # None of this was a failed login, at either worker.
        assert failures == []
        # And no nonce went through the store (no table for them is left).
        store = zero.store
        assert store is not None
        tables = await store.call(
            store.store._query, "SELECT name FROM sqlite_master WHERE name LIKE '%nonce%'"
        )
        assert tables == []
    finally:
        await ua.close()
