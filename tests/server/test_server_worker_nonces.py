"""Digest nonces between two workers sharing a secret and a database, over real
loopback sockets: each worker checks the nonce counts of the nonces it issued, in its
own memory; a right answer to the other worker's nonce is re-challenged with
stale=true (RFC 7616 §3.3), not counted as a failure (docs/architecture.md "Workers")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_helpers import DOMAIN, server_target, two_workers
from sipua import TestUA, challenges_of

from sipline.core.message import Request
from sipline.server.sip_server import SipServer
from sipline.transport.shared import probe

HOST = "127.0.0.1"
ALICE = f"alice@{DOMAIN}"


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[SipServer]]:
    """Workers 0 and 1 of one server: one secret, one database (each on its own UDP
    port, so the test picks which one a request reaches)."""
    async with two_workers(tmp_path / "shared.db", own_udp_port, users=True) as started:
        yield started


def own_udp_port(_index: int) -> list[tuple[str, int]]:
    return [("UDP", probe("UDP", HOST, 0))]


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
