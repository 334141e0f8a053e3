"""The media bridge with sipline's own commands as the plain phone, through `sipline
serve`: a browser's media (an aiortc peer connection behind a small SIP client) calls
`sipline answer --record`, and `sipline call` calls the browser. Each side's tone is
found in the other's recording (the WAV the command wrote, the peer's received track)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_peers import (
    BROWSER_HZ,
    DOMAIN,
    PHONE_HZ,
    aiortc_browser,
    cli_account,
    finished,
    hears,
    registered,
    serving_users,
    sipline,
    stop,
)
from bridge_sip import acked, answering, invite_request, register
from interop_helpers import ServeProcess
from webrtc_peer import RATE

from sipline.media_io.audio_files import read_wav
from sipline.server.bridge.plan import SdpKind, sdp_kind

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    with serving_users(tmp_path) as proc:
        yield proc


async def test_a_browser_calls_sipline_answer(server: ServeProcess, tmp_path: Path) -> None:
    answer = await sipline("answer", *cli_account(server, tmp_path, "bob"), "--duration", "4")
    browser, ua = await aiortc_browser(server)
    try:
        await registered(server, f"bob@{DOMAIN}")
        invite = invite_request(ua, await browser.offer())
        exchange = await ua.send_authenticated(invite, "alice", "alice-pw")
        assert exchange.final.status == 200 and sdp_kind(exchange.final.body) is SdpKind.WEBRTC
        acked(ua, exchange)
        await browser.accept(exchange.final.body)
        await ua.wait_for(lambda: bool(ua.requests("BYE")), timeout=15)  # --duration 4
        await finished(answer)
    finally:
        await stop(answer)
        await browser.close()
        await ua.close()
    assert hears(read_wav(tmp_path / "rec.wav"), BROWSER_HZ, PHONE_HZ, 8000)
    assert hears(browser.heard()[-RATE * 2 :], PHONE_HZ, BROWSER_HZ, RATE)


async def test_sipline_call_calls_a_browser(server: ServeProcess, tmp_path: Path) -> None:
    browser, ua = await aiortc_browser(server)
    ua.on_invite = answering(browser.answer, "alice")
    call = None
    try:
        await register(ua, "alice", webrtc=True)
        # With --workers, the others see the binding at their next change-feed poll (20 ms).
        await asyncio.sleep(0.2)
        call = await sipline(
            "call", f"sip:alice@{DOMAIN}", *cli_account(server, tmp_path, "bob"), "--duration", "3"
        )
        await finished(call)
        assert [sdp_kind(st.request.body) for st in ua.received if st.request.method == "INVITE"]
        assert sdp_kind(ua.requests("INVITE")[0].body) is SdpKind.WEBRTC
        assert ua.requests("BYE")
    finally:
        await stop(call)
        await browser.close()
        await ua.close()
    assert hears(read_wav(tmp_path / "rec.wav"), BROWSER_HZ, PHONE_HZ, 8000)
    assert hears(browser.heard()[-RATE * 2 :], PHONE_HZ, BROWSER_HZ, RATE)
