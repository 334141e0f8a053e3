"""Peers of the media bridge's interop tests: `sipline serve` with alice and bob, the
plain phones (baresip, `sipline call` and `sipline answer`) playing one tone, and the
check that a recording holds the other side's tone. The browser is an aiortc peer
(`webrtc_peer`) behind `sipua.TestUA` (`bridge_sip`), or Chromium (`web_phone`)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from interop_helpers import HOST, ServeProcess, checked, free_port_pair, start_serve
from service_calls import add_users
from sipua import TestUA
from ua_baresip import Baresip
from webrtc_peer import BrowserPeer

from sipline.media.audio import tone
from sipline.media_io.audio_files import write_wav
from sipline.server.bridge.webrtc import use_media_address
from sipline.storage import SqliteStore
from sipline.transport import Target

DOMAIN = "example.com"
BROWSER_HZ, PHONE_HZ = 440.0, 660.0


def power(samples: np.ndarray, hz: float, rate: int) -> float:
    x = samples.astype(np.float64)
    t = np.arange(len(x)) / rate
    return float(abs(np.dot(x, np.exp(-2j * np.pi * hz * t))) ** 2)


def hears(samples: np.ndarray, hz: float, other: float, rate: int) -> bool:
    """More than a second of `samples` with ten times the power at `hz` as at `other`."""
    return len(samples) > rate and power(samples, hz, rate) > 10 * power(samples, other, rate)


def phone_tone(path: Path) -> Path:
    """The plain phone's microphone: PHONE_HZ for 20 s, as a WAV at `path`."""
    write_wav(path, tone(PHONE_HZ, duration_s=20.0, amplitude=0.25))
    return path


def start_users_serve(tmp_path: Path) -> ServeProcess:
    """`sipline serve` without TLS for DOMAIN, with alice and bob (password USER-pw)."""
    workdir = tmp_path / "serve"
    workdir.mkdir()
    add_users(workdir / "sipline.db", ["alice", "bob"])
    return start_serve(workdir, tls=False, domains=(DOMAIN,))


@contextmanager
def serving_users(tmp_path: Path) -> Iterator[ServeProcess]:
    """`start_users_serve`, checked alive after the block and stopped with exit code 0."""
    proc = start_users_serve(tmp_path)
    with checked(proc):
        yield proc


def bridged(proc: ServeProcess, role: str) -> bool:
    """The server logged a bridge in `role` (plan.Role): the call went through it."""
    return any(f": {role}" in line and "bridge " in line for line in proc.lines)


async def registered_in(database: Path, aor: str) -> None:
    """Wait until `aor` has a binding in the SQLite file `database`."""
    for _ in range(100):
        store = SqliteStore(database)
        try:
            if aor in {b.aor for b in store.all_bindings()}:
                return
        finally:
            store.close()
        await asyncio.sleep(0.2)
    raise AssertionError(f"{aor} never registered")


async def registered(server: ServeProcess, aor: str) -> None:
    await registered_in(server.workdir / "sipline.db", aor)


async def aiortc_browser(server: ServeProcess) -> tuple[BrowserPeer, TestUA]:
    """A browser's media (an aiortc peer playing BROWSER_HZ, ICE on loopback only) and
    its SIP side, a `TestUA` on UDP pointed at `server`."""
    use_media_address([HOST])
    browser = BrowserPeer(BROWSER_HZ)
    return browser, await TestUA.start(Target("UDP", HOST, server.port))


# --- baresip -------------------------------------------------------------------------


def need_baresip() -> None:
    if shutil.which("baresip") is None:
        pytest.skip("baresip is not installed (scripts/install-peers.sh installs it)")


def baresip(tmp_path: Path, server: ServeProcess) -> Baresip:
    """bob on baresip: auto-answers, PCMU only, plays PHONE_HZ."""
    return Baresip(
        "bob",
        tmp_path,
        account=(
            f'<sip:bob@{DOMAIN}>;auth_pass=bob-pw;outbound="sip:{HOST}:{server.port}"'
            ";answermode=auto;regint=600;audio_codecs=PCMU"
        ),
        microphone=phone_tone(tmp_path / "bob-tone.wav"),
        rtp_base=free_port_pair() & ~1,
    )


# --- sipline call / sipline answer ---------------------------------------------------


async def sipline(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from sipline.cli.main import main; main()",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


def cli_account(proc: ServeProcess, tmp_path: Path, user: str) -> list[str]:
    """A `sipline call`/`answer` account on UDP that plays PHONE_HZ and records."""
    microphone = phone_tone(tmp_path / "phone-tone.wav")
    return [
        "--user", f"{user}@{DOMAIN}", "--password", f"{user}-pw",
        "--server", f"{HOST}:{proc.port}", "--listen", f"{HOST}:0",
        "--play", str(microphone), "--record", str(tmp_path / "rec.wav"),
    ]  # fmt: skip


async def finished(proc: asyncio.subprocess.Process) -> str:
    """The command's output, once it has ended with code 0 and no traceback."""
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text
    return text


async def stop(proc: asyncio.subprocess.Process | None) -> None:
    if proc is not None and proc.returncode is None:
        proc.terminate()
        await proc.wait()
