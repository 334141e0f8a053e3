"""baresip and a sipline user agent chatting through `sipline serve` (RFC 3428), and
a message stored for baresip while it was offline, kept across a `kill -9` of the
server, delivered when baresip registers.

baresip 1.0.0 sends a MESSAGE to its current contact (the `contact` module's
`message` command) and answers the ones it receives with 200, but shows their text
only to an interactive interface: what it received is checked by its 200 (the
stored copy is then removed), what it sent by the text sipline received.
baresip knows only MD5 digests, so the server offers MD5 alone."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import HOST, ServeProcess, start_serve
from ua_baresip import Baresip

from sipline.media.audio import tone
from sipline.media_io.audio_files import write_wav
from sipline.phone import UserAgent
from sipline.storage import SqliteStore

pytestmark = pytest.mark.interop

DOMAIN = "example.com"
CONFIG = '[auth]\nalgorithms = ["MD5"]\n'


def prepare(workdir: Path) -> None:
    workdir.mkdir(parents=True)
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    for user in ("alice", "bob"):
        store.add_user(user, DOMAIN, f"{user}-pw")
    store.close()


def start_bob(tmp_path: Path, server: ServeProcess) -> Baresip:
    mic = tmp_path / "tone.wav"
    if not mic.exists():
        write_wav(mic, tone(440.0, duration_s=1.0, amplitude=0.25))
    bob = Baresip(
        "bob",
        tmp_path,
        account=f'<sip:bob@{DOMAIN}>;auth_pass=bob-pw;outbound="sip:{HOST}:{server.port}";regint=600',
        microphone=mic,
        rtp_base=32000,
        extra_modules=("contact.so",),
        contacts=f'"Alice" <sip:alice@{DOMAIN}>\n',
    )
    bob.wait_log("[1 binding]")
    return bob


def pending(server: ServeProcess, aor: str) -> int:
    store = SqliteStore(server.workdir / "sipline.db")
    try:
        return store.count_messages(aor, now=time.time())
    finally:
        store.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    prepare(tmp_path / "serve")
    server = start_serve(tmp_path / "serve", CONFIG, tls=False)
    try:
        yield server
    finally:
        server.stop()


def alice(server: ServeProcess) -> UserAgent:
    return UserAgent(
        f"alice@{DOMAIN}", password="alice-pw", server=f"{HOST}:{server.port}", listen=f"{HOST}:0"
    )


async def test_baresip_and_sipline_chat_both_ways(serve: ServeProcess, tmp_path: Path) -> None:
    bob = await asyncio.to_thread(start_bob, tmp_path, serve)
    try:
        async with alice(serve) as ua:
            response = await ua.send_message(f"bob@{DOMAIN}", "hello from sipline")
            assert response.status == 200  # baresip's own answer, relayed by the proxy
            bob.command("message", "hi back from baresip")
            got = await ua.next_message(timeout=10)
            assert got.sender == f"sip:bob@{DOMAIN}" and got.text == "hi back from baresip"
        assert pending(serve, f"bob@{DOMAIN}") == 0
    finally:
        bob.stop()


async def test_message_stored_for_offline_baresip_survives_kill_9(tmp_path: Path) -> None:
    prepare(tmp_path / "serve")
    server = start_serve(tmp_path / "serve", CONFIG, tls=False)
    try:
        async with alice(server) as ua:
            response = await ua.send_message(f"bob@{DOMAIN}", "while you were out")
            assert response.status == 202
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
    finally:
        server.stop()
    restarted = start_serve(tmp_path / "serve", CONFIG, tls=False)
    try:
        assert pending(restarted, f"bob@{DOMAIN}") == 1
        bob = await asyncio.to_thread(start_bob, tmp_path, restarted)
        try:
            for _ in range(100):
                if pending(restarted, f"bob@{DOMAIN}") == 0:
                    break
                await asyncio.sleep(0.1)
            assert pending(restarted, f"bob@{DOMAIN}") == 0  # baresip answered 2xx
        finally:
            bob.stop()
    finally:
        restarted.stop()
