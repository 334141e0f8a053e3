"""A browser registered over a WebSocket with one worker is reached from every worker:
its WebSocket is a flow like a TCP connection (docs/architecture.md "Workers"), so a
request that enters the other worker is handed to the worker holding it over the
channel and sent on the browser's own connection; nothing dials the `.invalid` host."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from server_helpers import two_workers
from service_calls import DOMAIN, HOST, add_users
from sipua import TestUA
from test_server_flows import callers_at_both_workers, message
from test_websocket_flows import BrowserLike

from sipline.core.builders import build_response
from sipline.core.message import Request
from sipline.runtime.siblings import branch_worker
from sipline.server.sip_server import SipServer
from sipline.transport.shared import probe

pytestmark = pytest.mark.timeout(60)

ALICE = f"alice@{DOMAIN}"


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[list[SipServer]]:
    db = tmp_path / "shared.db"
    add_users(db, ["alice", "bob"])
    port = probe("UDP", HOST, 0)
    ws_port = probe("TCP", HOST, 0)
    listeners = [("UDP", port), ("WS", ws_port)]
    async with two_workers(db, lambda _: listeners, channel_dir=tmp_path / "channel") as started:
        yield started


async def answer_all(browser: BrowserLike, got: list[Request]) -> None:
    """The browser's side: 200 to every request (RFC 3428 §7 for MESSAGE)."""
    while True:
        request = await browser.receive()
        assert isinstance(request, Request)
        got.append(request)
        await browser.ws.send_str(build_response(request, 200, to_tag="b1").to_bytes().decode())


async def test_a_browser_is_reached_from_either_worker(workers: list[SipServer]) -> None:
    ws_port = workers[0].endpoint.local_address("WS").port
    uas: list[TestUA] = []
    got: list[Request] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"ws://{HOST}:{ws_port}/", protocols=("sip",), origin=f"http://{HOST}:8080"
        ) as ws,
    ):
        browser = BrowserLike(ws, "alice")
        assert (await browser.register()).status == 200
        for _ in range(100):  # each worker follows the store's binding feed
            if all(s.backend is not None and s.backend.bindings(ALICE) for s in workers):
                break
            await asyncio.sleep(0.02)
        answering = asyncio.create_task(answer_all(browser, got))
        try:
            callers = await callers_at_both_workers(workers, uas)
            for i in range(20):
                assert await message(callers[i % len(callers)], ALICE) == 200
        finally:
            answering.cancel()
            for ua in uas:
                await ua.close()
    assert len(got) == 20
    # Both workers sent some (their branches say so) over the one WebSocket.
    assert {branch_worker(r.top_via.branch) for r in got} == {0, 1}
    assert sum(s.endpoint.transports.stats.to_siblings for s in workers) >= 2
