"""The media host through a real `SipServer`: a call to a service address of a served
domain reaches the registered handler (with its Request-URI), audio flows both ways
through the record-routing proxy, an unknown user still goes to the location service,
and the BYE from either side passes the proxy."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from sipline.core.timers import TimerConfig
from sipline.core.uri import SipUri
from sipline.media.audio import ArraySink, ToneSource
from sipline.phone import Call, CallFailed, EndedBy, UserAgent
from sipline.server.config import ServerConfig, parse_listen
from sipline.server.sip_server import ServeError, SipServer
from sipline.storage.sqlite import SqliteStore

DOMAIN = "example.com"
HOST = "127.0.0.1"
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def power_at(samples: np.ndarray, hz: float, rate: int = 8000) -> float:
    """Share of the signal's energy within ±20 Hz of `hz`."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    total = float(spectrum.sum()) or 1.0
    return float(spectrum[np.abs(freqs - hz) <= 20].sum()) / total


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SipServer]:
    db = tmp_path / "sipline.db"
    store = SqliteStore(db)
    store.add_domain(DOMAIN)
    store.add_user("alice", DOMAIN, "alice-pw")
    store.close()
    config = ServerConfig(listen=[parse_listen(f"udp:{HOST}:0")], domains=[DOMAIN], database=db)
    srv = SipServer(config)
    dialled: list[str] = []

    async def tone_service(call: Call) -> None:
        assert call.invite is not None
        uri = call.invite.uri
        assert isinstance(uri, SipUri)
        dialled.append(str(uri.user))
        await call.answer(play=ToneSource(1200, amplitude=0.3), record=heard)
        await call.ended

    heard = ArraySink()
    srv.services.add_users("tone", ("tone-test",), lambda: tone_service)
    await srv.start()
    srv.dialled = dialled  # type: ignore[attr-defined]
    srv.heard = heard  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        await srv.stop()


def _alice(server: SipServer) -> UserAgent:
    port = server.endpoint.local_addresses[0].port
    return UserAgent(
        f"alice@{DOMAIN}",
        password="alice-pw",
        server=f"{HOST}:{port}",
        listen=f"{HOST}:0",
        timers=FAST,
    )


async def test_a_service_address_reaches_its_handler_in_the_media_host(server: SipServer) -> None:
    assert server.media_host is not None and server.services.target is not None
    heard = ArraySink()
    async with _alice(server) as alice:
        call = await alice.call(f"sip:tone-test@{DOMAIN}", record=heard)
        await asyncio.wait_for(call.answered, 5)
        assert call.dialog is not None and call.dialog.route_set  # via the proxy
        call.play(ToneSource(500, amplitude=0.3))
        await asyncio.sleep(1.0)
        await call.hangup()
        ended = await asyncio.wait_for(call.ended, 5)
        assert ended.by is EndedBy.LOCAL
    assert server.dialled == ["tone-test"]  # type: ignore[attr-defined]
    got = heard.samples()
    assert len(got) > 4000
    assert power_at(got[-4000:], 1200) > 0.8
    theirs = server.heard.samples()  # type: ignore[attr-defined]
    assert len(theirs) > 4000 and power_at(theirs[-4000:], 500) > 0.8


async def test_other_users_still_go_to_the_location_service(server: SipServer) -> None:
    async with _alice(server) as alice:
        call = await alice.call(f"sip:nobody@{DOMAIN}")
        with pytest.raises(CallFailed) as failed:
            await asyncio.wait_for(call.answered, 5)
        assert failed.value.status in (404, 480)


async def test_a_taken_media_port_is_a_clear_start_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((HOST, 0))
        port = taken.getsockname()[1]
        config = ServerConfig(
            listen=[parse_listen(f"udp:{HOST}:0")],
            domains=[DOMAIN],
            database=tmp_path / "s.db",
            media_port=port,
        )
        server = SipServer(config)
        with pytest.raises(
            ServeError, match=f"media.port: the media host cannot listen on {HOST}:{port}"
        ):
            await server.start()
