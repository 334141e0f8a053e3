"""The media bridge with baresip as the plain phone, through `sipline serve`: an aiortc
peer connection stands in for a browser's media (ICE, DTLS-SRTP, rtcp-mux, Opus) behind
a small SIP client, baresip (G.711, plain RTP) auto-answers or dials. Both ways of
calling; each side hears the other's tone (baresip's sndfile recording, the peer's
received track)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from interop_helpers import HOST, ServeProcess, free_port_pair, start_serve
from ua_baresip import Baresip

from sipline.media.audio import tone
from sipline.media_io.audio_files import write_wav
from sipline.runtime.endpoint import ServerTransaction
from sipline.server.bridge.plan import SdpKind, sdp_kind
from sipline.server.bridge.webrtc import use_media_address
from sipline.storage import SqliteStore
from sipline.transport import Target

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
sys.path.insert(0, str(Path(__file__).parents[1] / "server" / "bridge"))
from sipua import Dialog, TestUA
from webrtc_peer import RATE, BrowserPeer

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(90)]

DOMAIN = "example.com"
BROWSER_HZ, PHONE_HZ = 440.0, 660.0


def power(samples: np.ndarray, hz: float, rate: int) -> float:
    x = samples.astype(np.float64)
    t = np.arange(len(x)) / rate
    return float(abs(np.dot(x, np.exp(-2j * np.pi * hz * t))) ** 2)


def hears(samples: np.ndarray, hz: float, other: float, rate: int) -> bool:
    return len(samples) > rate and power(samples, hz, rate) > 10 * power(samples, other, rate)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    if shutil.which("baresip") is None:
        pytest.skip("baresip is not installed (scripts/install-peers.sh installs it)")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    for name in ("alice", "bob"):
        store.add_user(name, DOMAIN, f"{name}-pw")
    store.close()
    proc = start_serve(workdir, tls=False, domains=(DOMAIN,))
    try:
        yield proc
        assert proc.alive(), "\n".join(proc.lines[-20:])
    finally:
        code = proc.stop()
    assert code == 0, "\n".join(proc.lines[-20:])


def baresip(tmp_path: Path, server: ServeProcess) -> Baresip:
    microphone = tmp_path / "bob-tone.wav"
    write_wav(microphone, tone(PHONE_HZ, duration_s=20.0, amplitude=0.25))
    return Baresip(
        "bob",
        tmp_path,
        account=(
            f'<sip:bob@{DOMAIN}>;auth_pass=bob-pw;outbound="sip:{HOST}:{server.port}"'
            ";answermode=auto;regint=600;audio_codecs=PCMU"
        ),
        microphone=microphone,
        rtp_base=free_port_pair() & ~1,
    )


async def registered(server: ServeProcess, aor: str) -> None:
    for _ in range(100):
        store = SqliteStore(server.workdir / "sipline.db")
        try:
            if aor in {b.aor for b in store.all_bindings()}:
                return
        finally:
            store.close()
        await asyncio.sleep(0.2)
    raise AssertionError(f"{aor} never registered")


async def test_a_browser_calls_baresip(server: ServeProcess, tmp_path: Path) -> None:
    use_media_address([HOST])
    bob = baresip(tmp_path, server)
    browser = BrowserPeer(BROWSER_HZ)
    ua = await TestUA.start(Target("UDP", HOST, server.port))
    try:
        await registered(server, f"bob@{DOMAIN}")
        invite = ua.build(
            "INVITE",
            f"sip:bob@{DOMAIN}",
            from_=f"alice@{DOMAIN}",
            to=f"bob@{DOMAIN}",
            contact=ua.contact("alice"),
            body=await browser.offer(),
        )
        exchange = await ua.send_authenticated(invite, "alice", "alice-pw")
        answer = exchange.final
        assert answer.status == 200 and sdp_kind(answer.body) is SdpKind.WEBRTC
        dialog = Dialog(ua, exchange.request, answer)
        dialog.ack()
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
    use_media_address([HOST])
    bob = baresip(tmp_path, server)
    browser = BrowserPeer(BROWSER_HZ)
    ua = await TestUA.start(Target("UDP", HOST, server.port))
    offers: list[bytes] = []

    async def answer(ua: TestUA, st: ServerTransaction) -> None:
        offers.append(st.request.body)
        body = await browser.answer(st.request.body)
        st.respond(
            200,
            extra=[("Contact", f"<{ua.contact('alice')}>")],
            body=body,
            content_type="application/sdp",
            copy_record_route=True,
        )

    ua.on_invite = answer
    try:
        request = ua.build(
            "REGISTER",
            f"sip:{DOMAIN}",
            from_=f"alice@{DOMAIN}",
            extra=[("Contact", f"<{ua.contact('alice')}>;+sip.ice"), ("Expires", "600")],
        )
        assert (await ua.send_authenticated(request, "alice", "alice-pw")).final.status == 200
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
