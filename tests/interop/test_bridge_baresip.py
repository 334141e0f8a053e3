"""The media bridge with baresip as the plain phone, through `sipline serve`: an aiortc
peer connection stands in for a browser's media (ICE, DTLS-SRTP, rtcp-mux, Opus) behind
a small SIP client, baresip (G.711, plain RTP) auto-answers or dials. Both ways of
calling; each side hears the other's tone (baresip's sndfile recording, the peer's
received track)."""

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
    baresip,
    hears,
    need_baresip,
    registered,
    serving_users,
)
from bridge_sip import acked, answering, invite_request, register
from interop_helpers import ServeProcess
from webrtc_peer import RATE

from sipline.server.bridge.plan import SdpKind, sdp_kind

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    need_baresip()
    with serving_users(tmp_path) as proc:
        yield proc


async def test_a_browser_calls_baresip(server: ServeProcess, tmp_path: Path) -> None:
    bob = baresip(tmp_path, server)
    browser, ua = await aiortc_browser(server)
    try:
        await registered(server, f"bob@{DOMAIN}")
        invite = invite_request(ua, await browser.offer())
        exchange = await ua.send_authenticated(invite, "alice", "alice-pw")
        answer = exchange.final
        assert answer.status == 200 and sdp_kind(answer.body) is SdpKind.WEBRTC
        dialog = acked(ua, exchange)
        await browser.accept(answer.body)
        await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
        await asyncio.sleep(3.0)
        assert (await dialog.bye()).final.status == 200
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
    finally:
        await browser.close()
        await ua.close()
        bob.stop()
    assert hears(bob.decoded(), BROWSER_HZ, PHONE_HZ, 8000), bob.log()
    assert hears(browser.heard()[-RATE * 2 :], PHONE_HZ, BROWSER_HZ, RATE)


async def test_baresip_calls_a_browser(server: ServeProcess, tmp_path: Path) -> None:
    bob = baresip(tmp_path, server)
    browser, ua = await aiortc_browser(server)
    offers: list[bytes] = []
    ua.on_invite = answering(browser.answer, "alice", offers=offers)
    try:
        await register(ua, "alice", webrtc=True)
        await registered(server, f"bob@{DOMAIN}")
        # With --workers, the others see the binding at their next change-feed poll (20 ms).
        await asyncio.sleep(0.2)
        bob.command("dial", f"sip:alice@{DOMAIN}")
        await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
        assert [sdp_kind(o) for o in offers] == [SdpKind.WEBRTC]
        await asyncio.sleep(3.0)
        bob.command("hangup")
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
    finally:
        await browser.close()
        await ua.close()
        bob.stop()
    assert hears(bob.decoded(), BROWSER_HZ, PHONE_HZ, 8000), bob.log()
    assert hears(browser.heard()[-RATE * 2 :], PHONE_HZ, BROWSER_HZ, RATE)
