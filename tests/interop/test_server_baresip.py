"""Two baresip softphones register through `sipline serve` with digest authentication
and call each other: the call connects, RTP flows both ways (each side records what it
decodes with baresip's sndfile module: the other side's tone), and BYE ends it.

What a new user does after reading the README, with real softphones on loopback.
baresip 1.0.0 (libre) knows only MD5 digests and gives up on a 401 whose first
challenge is SHA-256 ("Function not implemented") instead of answering the MD5 one
below it as RFC 8760 §2.4 asks, so this server offers MD5 alone."""

from __future__ import annotations

import json
import math
import shutil
import socket
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interop_helpers import HOST, ServeProcess, free_port_pair, free_tcp_port, need, start_serve

from sipline.storage import SqliteStore

pytestmark = pytest.mark.interop

DOMAIN = "example.com"
TONE_HZ = {"alice": 440.0, "bob": 660.0}


def write_tone(path: Path, hz: float, seconds: float = 10.0) -> None:
    """8 kHz mono 16-bit WAV: what baresip's aufile plays as the microphone (PCMU)."""
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate)))
        for i in range(int(rate * seconds))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


class Baresip:
    """One baresip agent in its own config directory, driven over ctrl_tcp."""

    def __init__(self, name: str, workdir: Path, server: ServeProcess, rtp_base: int) -> None:
        self.name = name
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        self.records = self.dir / "records"
        self.records.mkdir()
        self.ctrl_port = free_tcp_port()
        sip_port = free_port_pair()
        tone = self.dir / "tone.wav"
        write_tone(tone, TONE_HZ[name])
        (self.dir / "config").write_text(
            "\n".join([
                f"sip_listen {HOST}:{sip_port}",
                f"net_interface {HOST}",
                f"dns_server {HOST}:53",
                f"rtp_ports {rtp_base}-{rtp_base + 19}",
                "audio_player aubridge,nil",
                "audio_alert aubridge,nil",
                f"audio_source aufile,{tone}",
                "module_path /usr/lib/baresip/modules",
                "module g711.so",
                "module aufile.so",
                "module aubridge.so",
                "module sndfile.so",
                "module_app account.so",
                "module_app menu.so",  # the commands (dial, hangup, quit)
                "module_app ctrl_tcp.so",
                f"ctrl_tcp_listen {HOST}:{self.ctrl_port}",
                f"snd_path {self.records}",
                "",
            ]),
            encoding="utf-8",
        )  # fmt: skip
        (self.dir / "accounts").write_text(
            f'<sip:{name}@{DOMAIN}>;auth_pass={name}-pw;outbound="sip:{HOST}:{server.port}"'
            ";answermode=auto;regint=600;audio_codecs=PCMU\n",
            encoding="utf-8",
        )
        (self.dir / "contacts").write_text("", encoding="utf-8")
        self.log = (self.dir / "baresip.log").open("wb")
        self.proc = subprocess.Popen(
            ["timeout", "-k", "5", "60", need("baresip"), "-f", str(self.dir)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir,
        )  # fmt: skip
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self.sock = self._connect()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + 10
        while True:
            try:
                return socket.create_connection((HOST, self.ctrl_port), timeout=1)
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"{self.name}: no ctrl_tcp\n{self.output()}") from None
                time.sleep(0.1)

    def _read(self) -> None:
        buffer = b""
        self.sock.settimeout(None)
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buffer += data
            while b":" in buffer:  # netstrings: LEN ":" JSON ","
                length, _, rest = buffer.partition(b":")
                if not length.isdigit() or len(rest) < int(length) + 1:
                    break
                body, buffer = rest[: int(length)], rest[int(length) + 1 :]
                with self._cond:
                    self.events.append(json.loads(body))
                    self._cond.notify_all()

    def command(self, name: str, params: str = "") -> None:
        body = json.dumps({"command": name, "params": params, "token": name}).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))

    def wait_event(self, kind: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event.get("type") == kind:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name}: no {kind}; events {[e.get('type') for e in self.events]}\n"
                        + self.output()
                    )
                self._cond.wait(left)

    def output(self) -> str:
        self.log.flush()
        return (self.dir / "baresip.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                self.proc.wait(timeout=10)
        self.sock.close()
        self._reader.join(timeout=5)
        self.log.close()


def dominant_hz(path: Path) -> tuple[float, float]:
    """(seconds of audio, the strongest of the two tones in it by correlation)."""
    with wave.open(str(path), "rb") as wav:
        rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
        width = wav.getsampwidth()
    assert width == 2, width
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    seconds = len(samples) / rate

    def power(hz: float) -> float:
        re = sum(s * math.cos(2 * math.pi * hz * i / rate) for i, s in enumerate(samples))
        im = sum(s * math.sin(2 * math.pi * hz * i / rate) for i, s in enumerate(samples))
        return re * re + im * im

    best = max(TONE_HZ.values(), key=power)
    return seconds, best


def registered(server: ServeProcess) -> set[str]:
    store = SqliteStore(server.workdir / "sipline.db")
    try:
        return {b.aor for b in store.all_bindings()}
    finally:
        store.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    if shutil.which("baresip") is None:
        pytest.skip("baresip is not installed (scripts/install-peers.sh installs it)")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    for name in TONE_HZ:
        store.add_user(name, DOMAIN, f"{name}-pw")
    store.close()
    config = f'[server]\ndomains = ["{DOMAIN}"]\n[auth]\nalgorithms = ["MD5"]\n'
    proc = start_serve(workdir, config, tls=False)
    try:
        yield proc
        assert proc.alive(), "\n".join(proc.lines[-20:])
    finally:
        code = proc.stop()
    assert code == 0, "\n".join(proc.lines[-20:])


def test_two_baresip_agents_register_and_call(server: ServeProcess, tmp_path: Path) -> None:
    alice = Baresip("alice", tmp_path, server, 21000)
    bob = Baresip("bob", tmp_path, server, 21100)
    try:
        # Registration often ends before ctrl_tcp is connected (its REGISTER_OK event
        # is gone by then): watch the location service instead.
        deadline = time.monotonic() + 15
        while registered(server) != {f"alice@{DOMAIN}", f"bob@{DOMAIN}"}:
            assert time.monotonic() < deadline, (registered(server), alice.output())
            time.sleep(0.2)

        alice.command("dial", f"sip:bob@{DOMAIN}")
        alice.wait_event("CALL_ESTABLISHED")
        bob.wait_event("CALL_ESTABLISHED")
        time.sleep(3.0)  # three seconds of audio each way
        alice.command("hangup")
        alice.wait_event("CALL_CLOSED")
        bob.wait_event("CALL_CLOSED")  # the BYE went through the proxy
    finally:
        alice.stop()
        bob.stop()
    # Each side decoded the other's tone: RTP flowed both ways.
    for me, other in ((alice, "bob"), (bob, "alice")):
        decoded = sorted(me.records.glob("*-dec.wav"))
        assert decoded, f"{me.name} recorded nothing: {list(me.records.iterdir())}"
        seconds, hz = dominant_hz(decoded[-1])
        assert seconds > 1.5, (me.name, seconds)
        assert hz == TONE_HZ[other], (me.name, hz)
