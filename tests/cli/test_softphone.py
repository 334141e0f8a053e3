"""`sipline answer` in one process and `sipline call` in another, as a user runs them:
call progress and RTP statistics printed, DTMF noticed, and each side's recording
matches what the other played. Directly, and through `sipline serve`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from softphone_helpers import HOST, free_port
from softphone_helpers import Process as _Process

from sipline.media.audio import cross_correlate, to_int16
from sipline.media_io.audio_files import read_wav, write_wav
from sipline.storage.sqlite import SqliteStore


def _sweep(path: Path, f0: float, rate: float, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(round(seconds * 8000)) / 8000
    signal = to_int16(10000 * np.sin(2 * np.pi * (f0 * t + rate * t * t)))
    write_wav(path, signal)
    return signal


def _check_audio(tmp_path: Path, alice_sweep: np.ndarray, bob_sweep: np.ndarray) -> None:
    # Alice's DTMF replaces her audio for a moment after the answer: compare what
    # followed it (the last 1.5 s, in time since the sweep played on underneath).
    for reference, recording in ((alice_sweep[-12000:], "bob.wav"), (bob_sweep, "alice.wav")):
        heard = read_wav(tmp_path / recording)
        match = cross_correlate(reference, heard, min_overlap=0.9)
        assert match.peak > 0.9, (recording, match)


def test_call_and_answer_directly(tmp_path: Path) -> None:
    a = _sweep(tmp_path / "a.wav", 300, 200, seconds=3.0)
    b = _sweep(tmp_path / "b.wav", 1500, -200)
    port = free_port()
    answer = _Process(
        "answer", "--user", "bob@example.com", "--listen", f"{HOST}:{port}",
        "--play", str(tmp_path / "b.wav"), "--record", str(tmp_path / "bob.wav"),
    )  # fmt: skip
    try:
        answer.wait_line("waiting for calls")
        call = _Process(
            "call", f"sip:bob@{HOST}:{port}", "--user", "alice@example.com",
            "--listen", f"{HOST}:0", "--play", str(tmp_path / "a.wav"),
            "--record", str(tmp_path / "alice.wav"), "--dtmf", "12#",
        )  # fmt: skip
        out = call.finish()
        assert call.proc.returncode == 0, out
        theirs = answer.finish()
        assert answer.proc.returncode == 0, theirs
    finally:
        answer.stop()
    for expected in ("calling sip:bob@", "ringing 180", "answered", "ended: hung up"):
        assert expected in out, out
    assert "packets sent" in out and "estimated MOS" in out and "lost 0 (0.0%)" in out, out
    for expected in ("incoming call from sip:alice@example.com", "dtmf 1", "dtmf 2", "dtmf #"):
        assert expected in theirs, theirs
    assert "ended: the other side hung up" in theirs and "packets sent" in theirs
    _check_audio(tmp_path, a, b)


def test_json_output_is_one_object_per_line(tmp_path: Path) -> None:
    _sweep(tmp_path / "a.wav", 300, 300, seconds=1.0)
    port = free_port()
    answer = _Process("answer", "--user", "bob@example.com", "--listen", f"{HOST}:{port}", "--json")
    try:
        answer.wait_line('"event": "waiting"')
        call = _Process(
            "call", f"sip:bob@{HOST}:{port}", "--user", "alice@example.com",
            "--listen", f"{HOST}:0", "--play", str(tmp_path / "a.wav"), "--json",
        )  # fmt: skip
        out = call.finish()
        answer.finish()
    finally:
        answer.stop()
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "calling" and "answered" in kinds and kinds[-2:] == ["ended", "stats"]
    stats = events[-1]
    assert stats["codec"] == "PCMU" and stats["packets_sent"] >= 40 and stats["packets_lost"] == 0
    assert 4.0 < stats["mos"] <= 4.5


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[int]:
    db = tmp_path / "sipline.db"
    store = SqliteStore(db)
    if not store.has_domain("example.com"):
        store.add_domain("example.com")
    store.add_user("alice", "example.com", "alice-pw")
    store.add_user("bob", "example.com", "bob-pw")
    store.close()
    port = free_port()
    server = _Process(
        "serve", "--listen", f"udp:{HOST}:{port}", "--domain", "example.com", "--db", str(db),
        seconds=60,
    )  # fmt: skip
    try:
        server.wait_line("sipline: serving", err=True)
        yield port
    finally:
        server.stop()


def test_call_and_answer_through_sipline_serve(tmp_path: Path, serve: int) -> None:
    a, b = _sweep(tmp_path / "a.wav", 300, 300), _sweep(tmp_path / "b.wav", 1500, -200)
    server = f"{HOST}:{serve}"
    answer = _Process(
        "answer", "--user", "bob@example.com", "--password", "bob-pw", "--server", server,
        "--listen", f"{HOST}:0", "--play", str(tmp_path / "b.wav"),
        "--record", str(tmp_path / "bob.wav"),
    )  # fmt: skip
    try:
        assert "(registered)" in answer.wait_line("waiting for calls"), answer.text()
        call = _Process(
            "call", "sip:bob@example.com", "--user", "alice@example.com",
            "--password", "alice-pw", "--server", server, "--listen", f"{HOST}:0",
            "--play", str(tmp_path / "a.wav"), "--record", str(tmp_path / "alice.wav"),
        )  # fmt: skip
        out = call.finish()
        assert call.proc.returncode == 0, out
        answer.finish()
    finally:
        answer.stop()
    assert "trying 100" in out and "answered sip:bob@example.com" in out, out
    _check_audio(tmp_path, a, b)
