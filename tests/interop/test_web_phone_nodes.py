"""The web phone in headless Chromium across two `sipline serve` nodes sharing one
SQLite file: the browser registers over WS at node A (127.0.0.1); `sipline call`
enters node B (127.0.0.2), whose proxy reaches the browser's WebSocket flow through
node A and bridges the call; and the browser at node A calls `sipline answer`
registered at node B, bridged at node A. Each side hears the other's tone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from bridge_peers import (
    BROWSER_HZ,
    PHONE_HZ,
    bridged,
    cli_account,
    finished,
    hears,
    registered_in,
    sipline,
    stop,
)
from interop_helpers import HOST, ServeProcess, free_tcp_port, start_serve
from service_calls import add_users
from web_phone import (
    DOMAIN,
    USERS,
    answer_ringing,
    chromium,
    hears_phone_then_ends,
    sign_in,
    submit,
    tone_wav,
)

from sipline.media_io.audio_files import read_wav

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(60)]

NODE_B = "127.0.0.2"


def start_nodes(tmp_path: Path) -> tuple[ServeProcess, ServeProcess, str]:
    """Node A with WS and HTTP listeners, node B with UDP/TCP only, one database and
    one secret file; returns them and the phone's URL at node A."""
    database = tmp_path / "shared.db"
    add_users(database, USERS)
    config = f'[server]\ndomains = ["{DOMAIN}"]\nsecret_file = "{tmp_path / "secret"}"\n'
    http, ws = free_tcp_port(), free_tcp_port()
    node_a = start_serve(
        tmp_path / "a",
        config + f'[http]\nlisten = "{HOST}:{http}"\n',
        tls=False,
        listen=(f"ws:{HOST}:{ws}",),
        db=str(database),
    )
    try:
        node_b = start_serve(tmp_path / "b", config, tls=False, host=NODE_B, db=str(database))
    except BaseException:
        node_a.stop()
        raise
    return node_a, node_b, f"http://{HOST}:{http}/phone/"


async def test_a_call_entering_node_b_reaches_a_browser_at_node_a(tmp_path: Path) -> None:
    node_a, node_b, url = start_nodes(tmp_path)
    wav = tone_wav(tmp_path / "browser.wav", BROWSER_HZ)
    browser: Any = None
    call = None
    try:
        browser = await asyncio.to_thread(chromium, tmp_path, wav)
        await asyncio.to_thread(sign_in, browser, url, "alice")
        await asyncio.sleep(0.5)  # node B sees the binding at its next change-feed read
        account = cli_account(node_b, tmp_path, "bob")
        account[account.index("--server") + 1] = f"{NODE_B}:{node_b.port}"
        account[account.index("--listen") + 1] = f"{NODE_B}:0"
        call = await sipline("call", f"sip:alice@{DOMAIN}", *account, "--duration", "5")
        await asyncio.to_thread(answer_ringing, browser)
        await asyncio.to_thread(hears_phone_then_ends, browser, PHONE_HZ)
        await finished(call)
        # The node the INVITE entered bridged it; node A only carried the WebSocket.
        assert bridged(node_b, "plain-offers"), "\n".join(node_b.lines[-20:])
        assert not bridged(node_a, "plain-offers")
    finally:
        await stop(call)
        if browser is not None:
            await asyncio.to_thread(browser.quit)
        codes = node_b.stop(), node_a.stop()
    assert codes == (0, 0), "\n".join(node_a.lines[-20:] + node_b.lines[-20:])
    assert hears(read_wav(tmp_path / "rec.wav"), BROWSER_HZ, PHONE_HZ, 8000)


async def test_a_browser_at_node_a_calls_a_phone_registered_at_node_b(tmp_path: Path) -> None:
    node_a, node_b, url = start_nodes(tmp_path)
    wav = tone_wav(tmp_path / "browser.wav", BROWSER_HZ)
    browser: Any = None
    account = cli_account(node_b, tmp_path, "bob")
    account[account.index("--server") + 1] = f"{NODE_B}:{node_b.port}"
    account[account.index("--listen") + 1] = f"{NODE_B}:0"
    answer = await sipline("answer", *account, "--duration", "5")
    try:
        browser = await asyncio.to_thread(chromium, tmp_path, wav)
        await asyncio.to_thread(sign_in, browser, url, "alice")
        await registered_in(tmp_path / "shared.db", f"bob@{DOMAIN}")
        await asyncio.sleep(0.5)  # node A sees the binding at its next change-feed read
        await asyncio.to_thread(submit, browser, {"dial-target": "bob"}, "call-button")
        await asyncio.to_thread(hears_phone_then_ends, browser, PHONE_HZ)
        await finished(answer)
        # The browser's INVITE entered node A: node A bridged it.
        assert bridged(node_a, "webrtc-offers"), "\n".join(node_a.lines[-20:])
    finally:
        await stop(answer)
        if browser is not None:
            await asyncio.to_thread(browser.quit)
        codes = node_b.stop(), node_a.stop()
    assert codes == (0, 0), "\n".join(node_a.lines[-20:] + node_b.lines[-20:])
    assert hears(read_wav(tmp_path / "rec.wav"), BROWSER_HZ, PHONE_HZ, 8000)
