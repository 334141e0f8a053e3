"""Voicemail end to end through a real `SipServer` on loopback: bob calls alice, who does
not answer (`forward.no_answer = "voicemail"`, 1 s); `sipline call --play` leaves a
tone; alice's device, subscribed to message-summary, is told `Voice-Message: 1/0`; the
recording is emailed with the WAV attached to a local SMTP server (aiosmtpd); alice
dials *98, enters her PIN by DTMF and hears the tone back in her `--record` file."""

from __future__ import annotations

import asyncio
import email
import io
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from service_calls import DOMAIN, HOST, add_users, energy_share, loopback_config, running

from sipline.content.summary import Counts
from sipline.media.audio import tone
from sipline.media_io.audio_files import read_wav, write_wav
from sipline.phone import Call, UserAgent
from sipline.phone.watch import Watch
from sipline.server.sip_server import SipServer
from sipline.server.voicemail.settings import EmailSection
from sipline.storage.sqlite import SqliteStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

TONE_HZ = 700.0
SIPLINE = shutil.which("sipline") or str(Path(sys.executable).parent / "sipline")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.arrived = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        self.loop.call_soon_threadsafe(self.arrived.set)
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname=HOST, port=port, ready_timeout=10)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
async def server(tmp_path: Path, smtp: tuple[Inbox, int]) -> AsyncIterator[SipServer]:
    db = tmp_path / "sipline.db"
    add_users(db, ["alice", "bob"])
    store = SqliteStore(db)
    doc = {"forward": {"no_answer": "voicemail", "no_answer_s": 1}}
    store.set_route_rules(f"alice@{DOMAIN}", json.dumps(doc), 0.0)
    store.close()
    config = loopback_config(
        db,
        email=EmailSection(
            host=HOST, port=smtp[1], starttls=False, sender="pbx@example.com", missed_calls=True
        ),
        voicemail_speech=False,  # tone prompts: short and the same on every machine
        min_notify_interval_s=0.0,
    )
    async with running(config) as srv:
        yield srv


def _cli(db: Path, *args: str) -> None:
    done = subprocess.run(
        [SIPLINE, *args, "--db", str(db)], check=False, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


async def _phone(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        SIPLINE, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 40)
    return out.decode(errors="replace")


async def _summary(watch: Watch, want: Counts | None) -> tuple[bool, Counts | None]:
    """The next message-summary whose voice counts are `want`."""
    last: Counts | None = None
    while True:
        update = await watch.next_update(timeout=20)
        if update.summary is None:
            continue
        last = update.summary.counts.get("voice-message")
        if last == want:
            return update.summary.waiting, last


async def test_message_left_notified_emailed_and_heard_at_star98(
    server: SipServer, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    where = f"{HOST}:{server.bound[0].rpartition(':')[2]}"
    db = server.config.server.database
    _cli(db, "voicemail", "pin", f"alice@{DOMAIN}", "--pin", "1234")
    _cli(db, "user", "email", f"alice@{DOMAIN}", "alice@mail.example.com")

    rung: list[Call] = []

    async def let_it_ring(call: Call) -> None:
        rung.append(call)  # never answered: the caller's proxy moves on after 1 s

    alice = UserAgent(
        f"alice@{DOMAIN}", password="alice-pw", server=where, listen=f"{HOST}:0",
        on_call=let_it_ring,
    )  # fmt: skip
    await alice.start()
    try:
        watch = await alice.watch(f"sip:alice@{DOMAIN}", "message-summary")
        first = await watch.next_update(timeout=10)
        assert first.summary is not None and not first.summary.waiting

        played = tmp_path / "tone.wav"
        write_wav(played, tone(TONE_HZ, duration_s=8.0, amplitude=0.5))
        out = await _phone(
            "call", f"sip:alice@{DOMAIN}", "--user", f"bob@{DOMAIN}", "--password", "bob-pw",
            "--server", where, "--play", str(played), "--duration", "4", "--listen", f"{HOST}:0",
        )  # fmt: skip
        assert "answered" in out, out
        assert rung, "alice's device was rung first"

        # RFC 3842: the lamp lights with one new voice message.
        waiting, counts = await _summary(watch, Counts(1, 0))
        assert waiting and counts == Counts(1, 0)

        # The email with the recording.
        inbox, _ = smtp
        for _ in range(200):  # the missed-call notice and the voicemail
            if len(inbox.messages) >= 2:
                break
            await asyncio.sleep(0.1)
        mails = {m["Subject"]: m for m in map(email.message_from_bytes, inbox.messages)}
        assert set(mails) == {
            f"Missed call from bob@{DOMAIN}",
            f"New voicemail from bob@{DOMAIN}",
        }
        msg = mails[f"New voicemail from bob@{DOMAIN}"]
        assert msg["To"] == "alice@mail.example.com"
        (wav,) = [p for p in msg.walk() if p.get_content_type() == "audio/wav"]
        mailed = read_wav(io.BytesIO(wav.get_payload(decode=True)))  # type: ignore[arg-type]
        assert len(mailed) > 8000 and energy_share(mailed, TONE_HZ) > 0.5

        # *98: PIN by DTMF, the message plays back.
        heard = tmp_path / "heard.wav"
        out = await _phone(
            "call", f"sip:*98@{DOMAIN}", "--user", f"alice@{DOMAIN}", "--password", "alice-pw",
            "--server", where, "--dtmf", "1234#", "--record", str(heard), "--duration", "7",
            "--listen", f"{HOST}:0",
        )  # fmt: skip
        assert "answered" in out, out
        samples = read_wav(heard)
        # Find the played-back tone among the prompts: some second of the recording is it.
        seconds = [samples[i : i + 8000] for i in range(0, len(samples) - 8000, 4000)]
        assert max(energy_share(s, TONE_HZ) for s in seconds) > 0.5

        # Heard: the lamp goes out, the message is old.
        waiting, counts = await _summary(watch, Counts(0, 1))
        assert not waiting and counts == Counts(0, 1)

        # Deleted from the command line (another process): the devices are told too.
        _cli(db, "voicemail", "del", f"alice@{DOMAIN}", "1")
        waiting, counts = await _summary(watch, None)
        assert not waiting and counts is None
        await watch.close()
    finally:
        await alice.close()
