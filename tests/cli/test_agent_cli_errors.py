"""Every user error of `sipline call/answer/message/chat/presence` is one line on stderr and
a non-zero exit, never a traceback: bad option values, files that are missing or not
audio, a port in use, a name that does not resolve (real processes)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from softphone_helpers import HOST, SIPLINE, Process, free_port

ME = ("--user", "alice@example.com")
BAD_HOST = "nonexistent.invalid"  # RFC 6761 §6.4: never resolves


def _run(*args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        ["timeout", "-k", "5", "30", SIPLINE, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=40,
        check=False,
    )
    return done.returncode, done.stderr.decode("utf-8", "replace").splitlines()


def _assert_one_line(args: tuple[str, ...], expect: str) -> None:
    code, lines = _run(*args)
    assert code not in (0, 124, 137), (args, code, lines)  # 124/137: it hung
    assert len(lines) == 1 and "Traceback" not in lines[0], (args, lines)
    assert expect.lower() in lines[0].lower(), (args, lines)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    text = tmp_path / "notes.txt"
    text.write_text("not audio\n")
    return {
        "text": str(text),
        "dir": str(tmp_path),
        "missing": str(tmp_path / "missing.wav"),
        "nodir": str(tmp_path / "no" / "such" / "out.wav"),
    }


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port held on UDP and TCP by this test."""
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind((HOST, port))
        tcp.bind((HOST, port))
        tcp.listen()
        yield port


TARGET = f"sip:bob@{HOST}:9"

CASES: list[tuple[str, tuple[str, ...], str]] = [
    ("play-not-audio", ("call", TARGET, *ME, "--play", "{text}"), "invalid data"),
    ("play-missing", ("call", TARGET, *ME, "--play", "{missing}"), "no such file"),
    ("play-directory", ("answer", *ME, "--play", "{dir}"), "directory"),
    ("record-directory", ("call", TARGET, *ME, "--record", "{dir}"), "directory"),
    ("record-no-directory", ("answer", *ME, "--record", "{nodir}"), "no directory"),
    ("user-not-an-address", ("call", TARGET, "--user", "alice"), "--user"),
    ("user-missing", ("message", "bob@example.com", "hi"), "--user"),
    ("target-bad-uri", ("call", "sip:bob@[::1", *ME), "bad target"),
    ("message-bad-uri", ("message", "sip:bob@[::1", "hi", *ME), "bad target"),
    ("listen-bad-port", ("answer", *ME, "--listen", f"{HOST}:99999"), "port"),
    ("listen-not-a-port", ("call", TARGET, *ME, "--listen", f"{HOST}:x"), "port"),
    ("listen-foreign-address", ("answer", *ME, "--listen", "192.0.2.1:0"), "cannot listen"),
    ("server-bad-port", ("call", TARGET, *ME, "--server", f"{HOST}:70000"), "port"),
    ("duration-not-a-number", ("call", TARGET, *ME, "--duration", "abc"), "--duration"),
    ("duration-negative", ("call", TARGET, *ME, "--duration", "-1"), "--duration"),
    ("duration-zero", ("presence", *ME, "--set", "away", "--duration", "0"), "--duration"),
    ("ring-negative", ("answer", *ME, "--ring", "-2"), "--ring"),
    ("calls-negative", ("answer", *ME, "--calls", "-1"), "--calls"),
    ("codec-unknown", ("answer", *ME, "--codec", "G729"), "--codec"),
    ("dtmf-not-digits", ("call", TARGET, *ME, "--dtmf", "12x"), "--dtmf"),
    ("transport-unknown", ("call", TARGET, *ME, "--transport", "sctp"), "--transport"),
    ("option-unknown", ("chat", "bob@example.com", *ME, "--colour"), "--colour"),
    ("expires-zero", ("presence", *ME, "--set", "away", "--expires", "0"), "--expires"),
    ("presence-nothing-to-do", ("presence", *ME), "--set"),
    ("rtp-ports-reversed", ("answer", *ME, "--rtp-ports", "5000-4000"), "--rtp-ports"),
    ("rtp-ports-not-a-range", ("call", TARGET, *ME, "--rtp-ports", "40000"), "--rtp-ports"),
    ("ca-file-missing", ("answer", *ME, "--transport", "tls", "--ca-file", "{missing}"), "ca-file"),
    ("sips-over-udp", ("message", f"sips:bob@{HOST}:9", "hi", *ME), "--transport tls"),
]


@pytest.mark.parametrize(("args", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_values_are_one_line(files: dict[str, str], args: tuple[str, ...], expect: str) -> None:
    _assert_one_line(tuple(a.format(**files) for a in args), expect)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("command", ["call", "answer", "message", "chat"])
def test_a_port_in_use_is_one_line(busy_port: int, command: str, transport: str) -> None:
    args = {"call": ("call", TARGET), "message": ("message", "bob@example.com", "hi"),
            "chat": ("chat", "bob@example.com")}.get(command, (command,))  # fmt: skip
    listen = ("--listen", f"{HOST}:{busy_port}", "--transport", transport)
    _assert_one_line((*args, *ME, *listen), "in use")


@pytest.mark.parametrize(
    "args",
    [
        ("call", TARGET),
        ("call", TARGET, "--register"),
        ("answer",),
        ("message", "bob@example.com", "hi"),
        ("chat", "bob@example.com"),
        ("presence", "--set", "busy"),
        ("presence", "--watch", "bob@example.com"),
    ],
    ids=lambda a: "-".join(x.strip("-") for x in a if not x.startswith("sip")),
)
def test_an_unresolvable_server_is_one_line(args: tuple[str, ...]) -> None:
    _assert_one_line((*args, *ME, "--listen", f"{HOST}:0", "--server", BAD_HOST), BAD_HOST)


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")
def test_sox_default_wav_plays(tmp_path: Path) -> None:
    """sox writes WAVE_FORMAT_EXTENSIBLE (65534) by default: the call plays it."""
    played = tmp_path / "sox.wav"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(played), "synth", "1", "sine",
                    "440"], check=True, timeout=30)  # fmt: skip
    port = free_port()
    answer = Process("answer", "--user", "bob@example.com", "--listen", f"{HOST}:{port}")
    try:
        answer.wait_line("waiting for calls")
        call = Process("call", f"sip:bob@{HOST}:{port}", *ME, "--listen", f"{HOST}:0",
                       "--play", str(played))  # fmt: skip
        out = call.finish()
        assert call.proc.returncode == 0 and "packets sent" in out, call.text()
        assert not call.errors, call.text()
    finally:
        answer.stop()


def test_a_refused_connection_says_why() -> None:
    """The 503 for a request that could not be sent names the cause."""
    port = free_port()  # nothing listens on TCP there
    _assert_one_line(("answer", *ME, "--listen", f"{HOST}:0", "--transport", "tcp",
                      "--server", f"{HOST}:{port}"), "connection refused")  # fmt: skip


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_play_file_is_one_line(tmp_path: Path) -> None:
    played = tmp_path / "secret.wav"
    played.write_bytes(b"RIFF")
    played.chmod(0)
    _assert_one_line(("call", TARGET, *ME, "--play", str(played)), "permission denied")
