"""Fixtures for server tests: a real `SipServer` on loopback and test user agents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import (
    DOMAIN,
    USERS,
    ServerFactory,
    TracebackCatcher,
    UAFactory,
    configured,
    failing_on_tracebacks,
    server_target,
)
from sipua import TestUA

from sipline.core.clock import Clock
from sipline.server.config import parse_listen
from sipline.server.sip_server import SipServer


@pytest.fixture(autouse=True)
def no_tracebacks() -> Iterator[TracebackCatcher]:
    """Fail a test whose server (or user agent) logged a traceback; set up before, so
    torn down after, the servers it watches."""
    with failing_on_tracebacks() as catcher:
        yield catcher


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start a `SipServer` on UDP and TCP loopback with `USERS` in `DOMAIN`; keyword
    arguments override settings (`server_helpers.configured`);
    `clock=FakeClock()` runs its timers on a clock the test advances
    (`sipline.testing.advance`)."""
    started: list[SipServer] = []

    async def make(*, clock: Clock | None = None, **overrides: Any) -> SipServer:
        cfg = configured(
            listen=[parse_listen("udp:127.0.0.1:0"), parse_listen("tcp:127.0.0.1:0")],
            domains=[DOMAIN],
            database=tmp_path / f"server{len(started)}.db",
        )
        server = SipServer(configured(cfg, **overrides), clock=clock)
        started.append(server)
        await server.start()
        assert server.store is not None
        for user, password in USERS.items():
            await server.store.write(server.store.store.add_user, user, DOMAIN, password)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
async def server(make_server: ServerFactory) -> SipServer:
    return await make_server()


@pytest.fixture
async def make_ua() -> AsyncIterator[UAFactory]:
    """Test user agents pointed at a server (`make_ua(server)`)."""
    uas: list[TestUA] = []

    async def make(server: SipServer, transport: str = "UDP") -> TestUA:
        ua = await TestUA.start(server_target(server, transport), transport)
        uas.append(ua)
        return ua

    yield make
    for ua in uas:
        await ua.close()
