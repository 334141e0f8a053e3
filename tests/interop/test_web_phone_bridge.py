"""The web phone (`/phone/`) in real headless Chromium calling plain RTP phones through
`sipline serve` and its media bridge: the browser registers over WS (or WSS), calls
`sipline answer --record` and is called by `sipline call`. Each side's tone is found in
the other's hearing: the WAV the command records, the page's WebAudio analyser. The
same with baresip (PCMU, plain RTP), both ways, over WS. The server's log names the
bridge's role, so a call that went around the bridge fails. Also: hold and resume from
either side, keys both ways (the page's keypad falls back to SIP INFO, there being no
telephone-event with the bridge), and Chromium's default flags ("mdns": with microphone
permission it shows real addresses, not `.local` names)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bridge_peers import (
    BROWSER_HZ,
    PHONE_HZ,
    baresip,
    bridged,
    cli_account,
    finished,
    hears,
    need_baresip,
    registered,
    sipline,
    stop,
)
from interop_helpers import ServeProcess
from ua_baresip import Baresip
from web_phone import (
    DOMAIN,
    By,
    answer_ringing,
    chromium,
    hears_phone_then_ends,
    near,
    phone_server,
    sign_in,
    state,
    submit,
    tone_wav,
    wait_until,
)

from sipline.media_io.audio_files import read_wav

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(60)]


async def alice_dials_bob(browser: Any, proc: ServeProcess, url: str) -> None:
    """alice signs in at the page and, once bob is registered, dials him."""
    await asyncio.to_thread(sign_in, browser, url, "alice")
    await registered(proc, f"bob@{DOMAIN}")
    await asyncio.to_thread(submit, browser, {"dial-target": "bob"}, "call-button")


@contextlib.asynccontextmanager
async def alice_calls_answer(
    tmp_path: Path, seconds: int, *, secure: bool = False, mdns: bool = False
) -> AsyncIterator[tuple[ServeProcess, Any, asyncio.subprocess.Process]]:
    """The page, signed in as alice and playing BROWSER_HZ, dials `sipline answer`
    answering as bob for `seconds` (playing PHONE_HZ, recording rec.wav); yields the
    server, the browser and the command, and ends both at the end."""
    wav = tone_wav(tmp_path / "browser.wav", BROWSER_HZ)
    with phone_server(tmp_path, secure=secure) as (proc, url, cert):
        account = cli_account(proc, tmp_path, "bob")
        answer = await sipline("answer", *account, "--duration", str(seconds))
        try:
            trust = cert if secure else None
            browser = await asyncio.to_thread(chromium, tmp_path, wav, trust, mdns=mdns)
            try:
                await alice_dials_bob(browser, proc, url)
                yield proc, browser, answer
            finally:
                await asyncio.to_thread(browser.quit)
        finally:
            await stop(answer)


@pytest.mark.parametrize(
    ("secure", "mdns"), [(False, False), (True, False), (False, True)], ids=["ws", "wss", "mdns"]
)
async def test_browser_calls_sipline_answer(tmp_path: Path, secure: bool, mdns: bool) -> None:
    async with alice_calls_answer(tmp_path, 5, secure=secure, mdns=mdns) as (proc, browser, answer):
        await asyncio.to_thread(hears_phone_then_ends, browser, PHONE_HZ)
        await finished(answer)
        assert bridged(proc, "webrtc-offers"), "\n".join(proc.lines[-20:])
    assert hears(read_wav(tmp_path / "rec.wav"), BROWSER_HZ, PHONE_HZ, 8000)


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_sipline_call_calls_a_browser(tmp_path: Path, secure: bool) -> None:
    wav = tone_wav(tmp_path / "browser.wav", BROWSER_HZ)
    with phone_server(tmp_path, secure=secure) as (proc, url, cert):
        browser = await asyncio.to_thread(chromium, tmp_path, wav, cert if secure else None)
        call = None
        try:
            await asyncio.to_thread(sign_in, browser, url, "alice")
            account = cli_account(proc, tmp_path, "bob")
            call = await sipline("call", f"sip:alice@{DOMAIN}", *account, "--duration", "5")
            await asyncio.to_thread(answer_ringing, browser)
            await asyncio.to_thread(hears_phone_then_ends, browser, PHONE_HZ)
            await finished(call)
            assert bridged(proc, "plain-offers"), "\n".join(proc.lines[-20:])
        finally:
            await stop(call)
            await asyncio.to_thread(browser.quit)
    assert hears(read_wav(tmp_path / "rec.wav"), BROWSER_HZ, PHONE_HZ, 8000)


def hears_phone_and_hangs_up(browser: Any) -> None:
    """The page hears the phone's tone for a while, then hangs up itself."""
    wait_until(browser, lambda s: s["call"]["state"] == "connected", "connected")
    wait_until(browser, lambda s: near(s["audio"]["peakHz"], PHONE_HZ), "browser hears phone")
    time.sleep(3.0)  # the phone's recording: seconds of the browser's tone
    browser.find_element(By.ID, "hangup-button").click()
    wait_until(browser, lambda s: s["call"]["state"] == "ended", "call ended")


def press(browser: Any, digit: str) -> None:
    wait_until(browser, lambda s: s["call"]["state"] == "connected", "connected")
    browser.find_element(By.CSS_SELECTOR, f'#keypad [data-digit="{digit}"]').click()
    wait_until(browser, lambda s: s["dtmfSent"].endswith(digit), f"{digit} sent")


async def test_browser_calls_baresip(tmp_path: Path) -> None:
    need_baresip()
    wav = tone_wav(tmp_path / "browser.wav", BROWSER_HZ)
    with phone_server(tmp_path, secure=False) as (proc, url, _):
        bob = baresip(tmp_path, proc)  # auto-answers, PCMU only
        browser = await asyncio.to_thread(chromium, tmp_path, wav)
        try:
            await alice_dials_bob(browser, proc, url)
            await asyncio.to_thread(press, browser, "7")
            await asyncio.to_thread(hears_phone_and_hangs_up, browser)
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
            assert bridged(proc, "webrtc-offers"), "\n".join(proc.lines[-20:])
            # The keypad's INFO (no telephone-event with the bridge) reached baresip.
            assert bob.wait_event("CALL_DTMF_START")["param"] == "7"
        finally:
            await asyncio.to_thread(browser.quit)
            bob.stop()
    assert hears(bob.decoded(), BROWSER_HZ, PHONE_HZ, 8000), bob.log()


async def baresip_calls(bob: Baresip, proc: ServeProcess, browser: Any, url: str) -> None:
    """alice signs in at the page, baresip (bob) dials her, and she answers."""
    await asyncio.to_thread(sign_in, browser, url, "alice")
    await registered(proc, f"bob@{DOMAIN}")
    bob.command("dial", f"sip:alice@{DOMAIN}")
    await asyncio.to_thread(answer_ringing, browser)
    await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")


async def test_baresip_calls_a_browser(tmp_path: Path) -> None:
    need_baresip()
    wav = tone_wav(tmp_path / "browser.wav", BROWSER_HZ)
    with phone_server(tmp_path, secure=False) as (proc, url, _):
        bob = baresip(tmp_path, proc)
        browser = await asyncio.to_thread(chromium, tmp_path, wav)
        try:
            await baresip_calls(bob, proc, browser, url)
            await asyncio.to_thread(hears_phone_and_hangs_up, browser)
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
            assert bridged(proc, "plain-offers"), "\n".join(proc.lines[-20:])
        finally:
            await asyncio.to_thread(browser.quit)
            bob.stop()
    assert hears(bob.decoded(), BROWSER_HZ, PHONE_HZ, 8000), bob.log()


async def test_browser_keypad_reaches_sipline_answer(tmp_path: Path) -> None:
    """A bridged call negotiates no telephone-event with the browser, where RTCDTMFSender
    cannot insert digits: the keypad sends SIP INFO, which the proxy passes along."""
    async with alice_calls_answer(tmp_path, 5) as (_, browser, answer):

        def keypad() -> None:
            wait_until(browser, lambda s: s["call"]["state"] == "connected", "connected")
            for digit in "59":
                browser.find_element(By.CSS_SELECTOR, f'#keypad [data-digit="{digit}"]').click()
                time.sleep(0.5)
            wait_until(browser, lambda s: s["dtmfSent"] == "59", "digits sent")

        await asyncio.to_thread(keypad)
        text = await finished(answer)
    # The bridge's WebRTC side has no telephone-event: the page falls back to INFO.
    assert "dtmf 5 (info)" in text and "dtmf 9 (info)" in text, text


async def test_browser_holds_and_resumes_a_bridged_call(tmp_path: Path) -> None:
    """Chromium's re-INVITEs (sendonly, then sendrecv, same ICE and DTLS) cross the
    bridge as re-offers of the plain kind: `sipline answer` sees hold and resume, and the
    browser hears the phone again after resuming."""
    async with alice_calls_answer(tmp_path, 8) as (_, browser, answer):

        def hold_and_resume() -> None:
            wait_until(browser, lambda s: s["call"]["state"] == "connected", "connected")
            button = browser.find_element(By.ID, "hold-button")
            button.click()
            wait_until(browser, lambda s: s["call"]["held"], "held")
            time.sleep(1.0)
            button.click()
            wait_until(browser, lambda s: not s["call"]["held"], "resumed")
            wait_until(browser, lambda s: near(s["audio"]["peakHz"], PHONE_HZ), "hears")
            wait_until(browser, lambda s: s["call"]["state"] == "ended", "ended", timeout=20)

        await asyncio.to_thread(hold_and_resume)
        text = await finished(answer)
    assert "held by the other side" in text and "resumed by the other side" in text, text
    assert hears(read_wav(tmp_path / "rec.wav"), BROWSER_HZ, PHONE_HZ, 8000)


async def test_sipline_calls_keys_by_info_reach_the_browser(tmp_path: Path) -> None:
    """`sipline call --dtmf-method info`: the INFO crosses the proxy to the page, which
    shows the keys (JsSIP's newDTMF)."""
    wav = tone_wav(tmp_path / "browser.wav", BROWSER_HZ)
    with phone_server(tmp_path, secure=False) as (proc, url, _):
        browser = await asyncio.to_thread(chromium, tmp_path, wav)
        call = None
        try:
            await asyncio.to_thread(sign_in, browser, url, "alice")
            account = cli_account(proc, tmp_path, "bob")
            call = await sipline(
                "call", f"sip:alice@{DOMAIN}", *account, "--duration", "3",
                "--dtmf", "42#", "--dtmf-method", "info",
            )  # fmt: skip
            await asyncio.to_thread(answer_ringing, browser)
            seen = await asyncio.to_thread(
                wait_until, browser, lambda s: s["dtmfReceived"] == "42#", "keys received"
            )
            assert "(keys: 42#)" in browser.find_element(By.ID, "call-info").text, seen
            await finished(call)
        finally:
            await stop(call)
            await asyncio.to_thread(browser.quit)


async def test_baresip_holds_and_resumes_a_browser(tmp_path: Path) -> None:
    """baresip's hold and resume re-INVITEs reach Chromium as re-offers from the bridge
    (the same ICE credentials and fingerprint, a new o= version): the page takes both
    and hears the phone again after the resume."""
    need_baresip()
    wav = tone_wav(tmp_path / "browser.wav", BROWSER_HZ)
    with phone_server(tmp_path, secure=False) as (proc, url, _):
        bob = baresip(tmp_path, proc)
        browser = await asyncio.to_thread(chromium, tmp_path, wav)
        try:
            await baresip_calls(bob, proc, browser, url)
            await asyncio.to_thread(
                wait_until, browser, lambda s: near(s["audio"]["peakHz"], PHONE_HZ), "hears"
            )
            count = len(bob.events)
            bob.command("hold")
            await asyncio.to_thread(
                wait_until, browser, lambda s: s["audio"]["peakHz"] == 0, "silence on hold"
            )
            bob.command("resume")
            await asyncio.to_thread(
                wait_until, browser, lambda s: near(s["audio"]["peakHz"], PHONE_HZ), "resumed"
            )
            assert state(browser)["call"]["state"] == "connected"
            # Both re-INVITEs were answered (by the bridge, with Chromium's answers).
            first = await asyncio.to_thread(bob.wait_event, "CALL_REMOTE_SDP", 10.0, count)
            after = next(i for i, e in enumerate(bob.events) if e is first) + 1
            await asyncio.to_thread(bob.wait_event, "CALL_REMOTE_SDP", 10.0, after)
            bob.command("hangup")
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED", 15.0, count)
            await asyncio.to_thread(
                wait_until, browser, lambda s: s["call"]["state"] == "ended", "ended"
            )
        finally:
            await asyncio.to_thread(browser.quit)
            bob.stop()
