"""The media bridge end to end on loopback: an aiortc peer connection stands in for a
browser (ICE, DTLS-SRTP, rtcp-mux, Opus), a sipline `UserAgent` is the plain RTP
phone, and a real `SipServer` anchors the media between them. Each side hears the
other's tone, both ways of calling. aiortc keeps its own clock, so these calls take
real seconds (hence here, not in tests/server, whose timers run on a fake clock)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from bridge_sip import acked, answering, invite_request, register
from server_helpers import failing_on_tracebacks, server_target
from service_calls import DOMAIN, add_users, energy_share, loopback_config, running, user_agent
from sipua import TestUA
from webrtc_peer import RATE, BrowserPeer

from sipline.media.audio import ArraySink, ToneSource
from sipline.phone import Call, MediaOptions
from sipline.runtime.endpoint import ServerTransaction
from sipline.sdp import Direction
from sipline.server.bridge.plan import SdpKind, audio_direction, sdp_kind
from sipline.server.bridge.webrtc import use_media_address
from sipline.server.sip_server import SipServer

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def no_logged_tracebacks() -> Iterator[None]:
    """Fail a test whose in-process server logged a traceback (as tests/server's do)."""
    with failing_on_tracebacks():
        yield


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SipServer]:
    use_media_address(["127.0.0.1"])  # the test's browser too: loopback only
    db = tmp_path / "sipline.db"
    add_users(db, ["alice", "bob"])
    async with running(loopback_config(db)) as srv:
        yield srv


def tone_in(samples: np.ndarray, hz: float, rate: int) -> float:
    tail = samples[-rate:]  # the last second
    return energy_share(tail, hz, rate=rate, width_hz=30, hann=True)


def tone(hz: float, codec: str) -> ToneSource:
    """A tone at the codec's rate (a source object keeps the rate it was made with)."""
    rate = 48000 if codec == "opus" else 8000
    return ToneSource(hz, amplitude=0.3, sample_rate=rate, frame_size=rate // 50)


PHONES = pytest.mark.parametrize(
    ("codecs", "srtp"),
    [(("PCMU",), "off"), (("opus",), "off"), (("PCMU",), "mandatory")],
    ids=["pcmu", "opus", "pcmu-sdes-srtp"],
)


@PHONES
async def test_a_browser_calls_a_phone(
    server: SipServer, codecs: tuple[str, ...], srtp: str
) -> None:
    browser = BrowserPeer(440)
    ua = await TestUA.start(server_target(server))
    phone_heard = ArraySink()
    try:
        async with user_agent(server, "bob", media=MediaOptions(codecs=codecs, srtp=srtp)) as bob:
            await bob.register()
            offer = await browser.offer()
            invite = invite_request(ua, offer)
            sent = asyncio.ensure_future(ua.send_authenticated(invite, "alice", "alice-pw"))
            call = await bob.next_call(timeout=5)
            assert call.invite is not None and sdp_kind(call.invite.body) is SdpKind.PLAIN
            await call.answer(play=tone(1000, codecs[0]), record=phone_heard)
            exchange = await asyncio.wait_for(sent, 10)
            answer = exchange.final
            assert answer.status == 200 and sdp_kind(answer.body) is SdpKind.WEBRTC
            dialog = acked(ua, exchange)
            await browser.accept(answer.body)
            assert len(server.bridges or ()) == 1
            await asyncio.sleep(3.0)
            assert (await dialog.bye()).final.status == 200
            await asyncio.wait_for(call.ended, 5)
            assert call.media.codec is not None
            assert call.media.codec.lower() == codecs[0].lower()
            assert call.media.secure is (srtp != "off")
    finally:
        await browser.close()
        await ua.close()
    rate = 48000 if codecs[0] == "opus" else 8000
    assert tone_in(phone_heard.samples(), 440, rate) > 0.7
    assert tone_in(browser.heard(), 1000, RATE) > 0.7
    assert server.bridges is not None
    await asyncio.sleep(0.1)
    assert len(server.bridges) == 0


@PHONES
async def test_a_phone_calls_a_browser(
    server: SipServer, codecs: tuple[str, ...], srtp: str
) -> None:
    browser = BrowserPeer(440)
    ua = await TestUA.start(server_target(server))
    offers: list[bytes] = []
    ua.on_invite = answering(browser.answer, "alice", offers=offers)
    phone_heard = ArraySink()
    try:
        await register(ua, "alice", webrtc=True)
        async with user_agent(server, "bob", media=MediaOptions(codecs=codecs, srtp=srtp)) as bob:
            await bob.register()
            call = await bob.call(
                f"sip:alice@{DOMAIN}", play=tone(1000, codecs[0]), record=phone_heard
            )
            await asyncio.wait_for(call.answered, 10)
            assert [sdp_kind(o) for o in offers] == [SdpKind.WEBRTC]
            assert call.media.codec is not None
            assert call.media.codec.lower() == codecs[0].lower()
            assert call.media.secure is (srtp != "off")
            await asyncio.sleep(3.0)
            await call.hangup()
            await asyncio.wait_for(call.ended, 5)
    finally:
        await browser.close()
        await ua.close()
    rate = 48000 if codecs[0] == "opus" else 8000
    assert tone_in(phone_heard.samples(), 440, rate) > 0.7
    assert tone_in(browser.heard(), 1000, RATE) > 0.7
    await asyncio.sleep(0.1)
    assert server.bridges is not None and len(server.bridges) == 0


async def test_a_phone_holds_and_resumes_a_browser(server: SipServer) -> None:
    """The phone's re-INVITEs (sendonly, then sendrecv) reach the browser as re-offers
    over the same ICE and DTLS; once resumed, audio flows both ways again."""
    browser = BrowserPeer(440)
    ua = await TestUA.start(server_target(server))
    reoffers: list[bytes] = []
    answer = answering(browser.answer, "alice")

    async def reanswer(ua: TestUA, st: ServerTransaction) -> None:
        if st.request.to.tag is not None:
            reoffers.append(st.request.body)
        await answer(ua, st)

    ua.on_invite = reanswer
    phone_heard = ArraySink()
    try:
        await register(ua, "alice", webrtc=True)
        async with user_agent(server, "bob") as bob:
            await bob.register()
            call = await bob.call(f"sip:alice@{DOMAIN}", play=tone(1000, "PCMU"))
            await asyncio.wait_for(call.answered, 10)
            await asyncio.sleep(1.0)
            assert await call.hold()
            assert call.media.direction is Direction.SENDONLY
            assert await call.resume()
            call.record(phone_heard)
            await asyncio.sleep(2.0)
            await call.hangup()
    finally:
        await browser.close()
        await ua.close()
    assert [audio_direction(o) for o in reoffers] == [Direction.SENDONLY, Direction.SENDRECV]
    assert tone_in(phone_heard.samples(), 440, 8000) > 0.7
    assert tone_in(browser.heard(), 1000, RATE) > 0.7


async def test_a_browser_is_held_and_resumed_by_the_phone_it_called(server: SipServer) -> None:
    """The same when the browser made the call: our re-offers keep the DTLS role our
    answer took (RFC 8842 §5.5: no new DTLS association), and the browser answers them."""
    browser = BrowserPeer(440)
    ua = await TestUA.start(server_target(server))
    reoffers: list[bytes] = []

    ua.on_invite = answering(browser.answer, "alice", offers=reoffers, copy_record_route=False)
    phone_heard = ArraySink()
    try:
        async with user_agent(server, "bob") as bob:
            await bob.register()
            invite = invite_request(ua, await browser.offer())
            sent = asyncio.ensure_future(ua.send_authenticated(invite, "alice", "alice-pw"))
            call = await bob.next_call(timeout=5)
            await call.answer(play=tone(1000, "PCMU"))
            exchange = await asyncio.wait_for(sent, 10)
            acked(ua, exchange)
            await browser.accept(exchange.final.body)
            await asyncio.sleep(1.0)
            assert await call.hold()
            assert await call.resume()
            call.record(phone_heard)
            await asyncio.sleep(2.0)
            await call.hangup()
            await asyncio.wait_for(call.ended, 5)
    finally:
        await browser.close()
        await ua.close()
    assert [audio_direction(o) for o in reoffers] == [Direction.SENDONLY, Direction.SENDRECV]
    assert all(b"a=setup:active" in o for o in reoffers)
    assert tone_in(phone_heard.samples(), 440, 8000) > 0.7
    assert tone_in(browser.heard(), 1000, RATE) > 0.7


async def test_a_browser_reaches_the_servers_own_services(tmp_path: Path) -> None:
    """A browser calling a media service (a conference room, voicemail) is bridged like
    a call to any plain phone: the media host answers plain RTP."""
    use_media_address(["127.0.0.1"])
    db = tmp_path / "sipline.db"
    add_users(db, ["alice"])
    service_heard = ArraySink()
    rates: list[int] = []

    async def tone_service(call: Call) -> None:
        await call.answer(record=service_heard)
        rate = call.media.session.sample_rate  # Opus here: the bridge offers it first
        rates.append(rate)
        call.play(ToneSource(1200, amplitude=0.3, sample_rate=rate, frame_size=rate // 50))
        await call.ended

    server = SipServer(loopback_config(db))
    server.services.add_users("tone", ("tone-test",), lambda: tone_service)
    await server.start()
    browser = BrowserPeer(440)
    ua = await TestUA.start(server_target(server))
    try:
        invite = invite_request(ua, await browser.offer(), "tone-test")
        exchange = await ua.send_authenticated(invite, "alice", "alice-pw")
        assert exchange.final.status == 200 and sdp_kind(exchange.final.body) is SdpKind.WEBRTC
        dialog = acked(ua, exchange)
        await browser.accept(exchange.final.body)
        await asyncio.sleep(3.0)
        assert (await dialog.bye()).final.status == 200
    finally:
        await browser.close()
        await ua.close()
        await server.stop()
    assert rates == [48000]
    assert tone_in(service_heard.samples(), 440, rates[0]) > 0.7
    assert tone_in(browser.heard(), 1200, RATE) > 0.7


async def test_a_phones_rtp_dtmf_reaches_the_browser_in_band(server: SipServer) -> None:
    """The WebRTC side has no telephone-event (aiortc offers none), so a phone's RFC 4733
    keys would be lost: the bridge plays each as its two Q.23 tones into the browser's
    audio, as a gateway to an analogue line does."""
    browser = BrowserPeer(440)
    ua = await TestUA.start(server_target(server))
    ua.on_invite = answering(browser.answer, "alice")
    try:
        await register(ua, "alice", webrtc=True)
        async with user_agent(server, "bob", media=MediaOptions(codecs=("PCMU",))) as bob:
            await bob.register()
            call = await bob.call(f"sip:alice@{DOMAIN}")  # silence, then one key
            await asyncio.wait_for(call.answered, 10)
            await asyncio.sleep(1.0)
            before = len(browser.heard())
            await call.send_dtmf("1", method="rtp", duration_ms=200)
            await asyncio.sleep(1.0)
            await call.hangup()
            await asyncio.wait_for(call.ended, 5)
    finally:
        await browser.close()
        await ua.close()
    key = browser.heard()[before:]
    low = energy_share(key, 697, rate=RATE, width_hz=30, hann=True)
    high = energy_share(key, 1209, rate=RATE, width_hz=30, hann=True)
    assert low > 0.2 and high > 0.2, (low, high)
