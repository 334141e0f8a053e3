"""The media bridge with linphone-cli as the plain phone, through `sipline serve`: a
browser's media (an aiortc peer connection behind a small SIP client) calls linphonec,
and linphonec calls the browser. linphonec uses files for a sound card (`soundcard use
files`: it plays a tone and records what it hears); each side hears the other's tone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bridge_peers import (
    BROWSER_HZ,
    DOMAIN,
    PHONE_HZ,
    aiortc_browser,
    hears,
    phone_tone,
    registered,
    start_users_serve,
)
from bridge_sip import acked, answering, invite_request, register
from interop_helpers import HOST, ServeProcess, free_port_pair, need
from sip_clients import Console
from test_first_call_linphone import MACHINE
from webrtc_peer import RATE

from sipline.media_io.audio_files import read_wav
from sipline.server.bridge.plan import SdpKind, sdp_kind

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(90)]


def linphone(tmp_path: Path, server: ServeProcess) -> Console:
    home = tmp_path / "bob"
    (home / ".local" / "share" / "linphone").mkdir(parents=True)
    rtp = free_port_pair() & ~1
    rc = home / "bob.rc"
    rc.write_text(
        f"""[sip]
sip_port={free_port_pair()}
sip_tcp_port=-1
bind_address={HOST}
[proxy_0]
reg_proxy=<sip:{HOST}:{server.port}>
reg_route=<sip:{HOST}:{server.port};lr>
reg_identity=sip:bob@{DOMAIN}
reg_sendregister=1
[auth_info_0]
username=bob
passwd=bob-pw
realm={DOMAIN}
"""
        + MACHINE.format(rtp=rtp, video=rtp + 2),
        encoding="utf-8",
    )
    phone = Console([need("linphonec"), "-c", str(rc)], home=home, lifetime_s=60, cwd=home)
    microphone = phone_tone(tmp_path / "bob-tone.wav")
    # Files instead of a sound card: the tone is sent, what is heard recorded.
    phone.send("soundcard use files")
    phone.send(f"play {microphone}")
    phone.send(f"record {tmp_path / 'bob-heard.wav'}")
    return phone


@pytest.fixture
def server(tmp_path: Path) -> ServeProcess:
    need("linphonec")
    return start_users_serve(tmp_path)


async def wait_output(phone: Console, text: str) -> None:
    await asyncio.to_thread(phone.wait_output, text)


def stop(server: ServeProcess) -> None:
    alive = server.alive()
    code = server.stop()
    log = "\n".join(server.lines)
    assert alive and code == 0, log[-3000:]
    assert "Traceback" not in log, log


async def test_a_browser_calls_linphone(server: ServeProcess, tmp_path: Path) -> None:
    bob = linphone(tmp_path, server)
    browser, ua = await aiortc_browser(server)
    try:
        await registered(server, f"bob@{DOMAIN}")
        invite = invite_request(ua, await browser.offer())
        sent = asyncio.ensure_future(ua.send_authenticated(invite, "alice", "alice-pw"))
        await wait_output(bob, f"Receiving new incoming call from sip:alice@{DOMAIN}")
        bob.send("answer")
        exchange = await asyncio.wait_for(sent, 15)
        assert exchange.final.status == 200 and sdp_kind(exchange.final.body) is SdpKind.WEBRTC
        dialog = acked(ua, exchange)
        await browser.accept(exchange.final.body)
        await wait_output(bob, f"Media streams established with sip:alice@{DOMAIN}")
        await asyncio.sleep(3.0)
        assert (await dialog.bye()).final.status == 200
        await wait_output(bob, f"Call 1 with sip:alice@{DOMAIN} ended")
    finally:
        bob.stop()
        await browser.close()
        await ua.close()
        stop(server)
    assert hears(browser.heard()[-RATE * 2 :], PHONE_HZ, BROWSER_HZ, RATE)
    assert hears(read_wav(tmp_path / "bob-heard.wav"), BROWSER_HZ, PHONE_HZ, 8000)


async def test_linphone_calls_a_browser(server: ServeProcess, tmp_path: Path) -> None:
    bob = linphone(tmp_path, server)
    browser, ua = await aiortc_browser(server)
    offers: list[bytes] = []
    ua.on_invite = answering(browser.answer, "alice", offers=offers)
    try:
        await register(ua, "alice", webrtc=True)
        await registered(server, f"bob@{DOMAIN}")
        await asyncio.sleep(0.2)  # --workers: the binding reaches the others' caches
        bob.send(f"call sip:alice@{DOMAIN}")
        await wait_output(bob, f"Call 1 with sip:alice@{DOMAIN} connected.")
        await wait_output(bob, f"Media streams established with sip:alice@{DOMAIN}")
        assert [sdp_kind(o) for o in offers] == [SdpKind.WEBRTC]
        await asyncio.sleep(3.0)
        bob.send("terminate")
        await wait_output(bob, f"Call 1 with sip:alice@{DOMAIN} ended")
        await ua.wait_for(lambda: bool(ua.requests("BYE")), timeout=10)
    finally:
        bob.stop()
        await browser.close()
        await ua.close()
        stop(server)
    assert hears(browser.heard()[-RATE * 2 :], PHONE_HZ, BROWSER_HZ, RATE)
    assert hears(read_wav(tmp_path / "bob-heard.wav"), BROWSER_HZ, PHONE_HZ, 8000)
