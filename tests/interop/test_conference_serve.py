"""Five user agents in one conference room through a real `sipline serve` with two
workers: four `sipline call` softphones and one baresip, each playing its own tone.
Every participant's recording holds the other four tones and not its own; after
`sipline conference mute`, the muted participant's tone is gone from the others'
recordings; a caller keying a wrong PIN three times is hung up on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from interop_helpers import HOST, ServeProcess, checked, free_port_pair, start_serve
from ua_baresip import Baresip

from sipline.media.audio import tone
from sipline.media_io.audio_files import read_wav, write_wav
from sipline.storage.sqlite import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.serial]

DOMAIN = "example.com"
TONES = {"u0": 500.0, "u1": 700.0, "u2": 900.0, "u3": 1100.0, "bare": 1300.0}
SOFTPHONES = ("u0", "u1", "u2", "u3")
DURATION_S = 11.0
RATE = 8000
CONFIG = f"""[server]
domains = ["{DOMAIN}"]
[auth]
algorithms = ["MD5"]
[[rooms]]
name = "locked"
pin = "4321"
"""
SIPLINE = [sys.executable, "-c", "from sipline.cli.main import main; main()"]


def share_at(samples: np.ndarray, hz: float) -> float:
    """Share of the energy within ±25 Hz of `hz` (a Hann-windowed FFT)."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    return float(spectrum[np.abs(freqs - hz) <= 25].sum()) / (float(spectrum.sum()) or 1.0)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    for user in TONES:
        store.add_user(user, DOMAIN, f"{user}-pw")
    store.close()
    proc = start_serve(workdir, CONFIG, tls=False, workers=2)
    with checked(proc):
        yield proc


def softphone(
    server: ServeProcess, user: str, target: str, tmp: Path, *extra: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *SIPLINE, "call", f"sip:{target}@{DOMAIN}", "--user", f"{user}@{DOMAIN}",
            "--password", f"{user}-pw", "--server", f"{HOST}:{server.port}",
            "--listen", f"{HOST}:0", "--json", *extra,
        ],
        cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def conference(server: ServeProcess, *args: str) -> str:
    db = str(server.workdir / "sipline.db")
    done = subprocess.run(
        [*SIPLINE, "conference", *args, "--db", db],
        check=False,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def members(server: ServeProcess) -> list[dict[str, object]]:
    listed = json.loads(conference(server, "list", "--json"))
    if not listed:
        return []
    shown = json.loads(conference(server, "show", "demo", "--json"))
    return list(shown["participants"])


def window(samples: np.ndarray, ended_at: float, start: float, stop: float) -> np.ndarray:
    """The part of a recording that ended at `ended_at` (wall clock) between two times."""
    began = ended_at - len(samples) / RATE
    lo, hi = round((start - began) * RATE), round((stop - began) * RATE)
    return samples[max(lo, 0) : max(hi, 0)]


def test_five_participants_hear_each_other_and_mute(server: ServeProcess, tmp_path: Path) -> None:
    for user, hz in TONES.items():
        write_wav(tmp_path / f"{user}.wav", tone(hz, duration_s=20, amplitude=0.12))
    bare = Baresip(
        "bare",
        tmp_path,
        account=(
            f'<sip:bare@{DOMAIN}>;auth_pass=bare-pw;outbound="sip:{HOST}:{server.port}"'
            ";regint=0;audio_codecs=PCMU"
        ),
        microphone=tmp_path / "bare.wav",
        rtp_base=free_port_pair() & ~1,
    )
    phones: dict[str, subprocess.Popen[bytes]] = {}
    ended: dict[str, float] = {}
    try:
        for user in SOFTPHONES:
            phones[user] = softphone(
                server, user, "room-demo", tmp_path,
                "--play", str(tmp_path / f"{user}.wav"),
                "--record", str(tmp_path / f"{user}-heard.wav"),
                "--duration", str(DURATION_S),
            )  # fmt: skip
        bare.command("dial", f"sip:room-demo@{DOMAIN}")
        bare.wait_event("CALL_ESTABLISHED")
        deadline = time.monotonic() + 8
        while len(members(server)) < 5:
            assert time.monotonic() < deadline, members(server)
            time.sleep(0.2)
        all_in = time.time()
        time.sleep(2.5)
        (first,) = [m for m in members(server) if m["who"] == f"u0@{DOMAIN}"]
        conference(server, "mute", "demo", str(first["number"]))
        muted_at = time.time()
        deadline = time.monotonic() + 5
        while not any(m["muted"] for m in members(server)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(2.0)
        bare.command("hangup")
        ended["bare"] = time.time()
        bare.wait_event("CALL_CLOSED")
        deadline = time.monotonic() + DURATION_S + 10
        while len(ended) < len(TONES):  # each exit time as it happens: the windows' anchor
            assert time.monotonic() < deadline, sorted(ended)
            for user, proc in phones.items():
                if user not in ended and proc.poll() is not None:
                    ended[user] = time.time()
            time.sleep(0.02)
        for proc in phones.values():
            out, _ = proc.communicate()
            assert proc.returncode == 0, out.decode()
    finally:
        for proc in phones.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        bare.stop()
    heard = {u: read_wav(tmp_path / f"{u}-heard.wav") for u in SOFTPHONES}
    heard["bare"] = np.asarray(bare.decoded(), dtype=np.int16).reshape(-1)
    # Softphone end times are when the test saw their exit: within the polling slack.
    before = {u: window(s, ended[u], all_in + 0.8, muted_at - 0.2) for u, s in heard.items()}
    after = {u: window(s, ended[u], muted_at + 1.0, ended["bare"] - 0.3) for u, s in heard.items()}
    for user, samples in before.items():
        assert len(samples) > RATE, (user, len(samples))
        for other, hz in TONES.items():
            share = share_at(samples, hz)
            if other == user:
                assert share < 0.01, f"{user} hears its own tone ({share:.3f})"
            else:
                assert share > 0.08, f"{user} misses {other}'s tone ({share:.3f})"
    for user, samples in after.items():
        if user == "u0":
            continue
        assert len(samples) > RATE // 2, (user, len(samples))
        assert share_at(samples, TONES["u0"]) < 0.01, f"{user} still hears u0 after the mute"
        assert share_at(samples, TONES["u1" if user != "u1" else "u2"]) > 0.08


def test_a_wrong_pin_is_refused(server: ServeProcess, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = softphone(
        server, "u0", "room-locked", tmp_path, "--dtmf", "11#22#33#", "--duration", "20"
    )
    out, _ = proc.communicate(timeout=25)
    assert time.monotonic() - started < 15, "the room did not hang up"
    events = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    answered = [e for e in events if e.get("event") == "answered"]
    closed = [e for e in events if e.get("event") == "ended"]
    assert answered and closed and closed[-1]["by"] == "remote", events
