"""`sipline answer --transport tcp|tls` registered at `sipline serve`, called through it
(real processes): the server reaches the agent over its registration's connection
(RFC 5626 outbound), the Contact names a port the agent listens on (never the
ephemeral port of its connection), and --rtp-ports bounds the SDP's m= port."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from interop_helpers import HOST, start_serve

from sipline.phone import UserAgent
from sipline.storage.sqlite import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SIPLINE = shutil.which("sipline") or str(Path(sys.executable).parent / "sipline")


def _users(db: Path) -> None:
    store = SqliteStore(db)
    if not store.has_domain("example.com"):
        store.add_domain("example.com")
    store.add_user("alice", "example.com", "alice-pw")
    store.add_user("bob", "example.com", "bob-pw")
    store.close()


class _Cli:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            ["timeout", "-k", "5", "40", SIPLINE, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        into.extend(raw.decode("utf-8", "replace").rstrip() for raw in stream)  # type: ignore[attr-defined]

    async def wait_line(self, text: str, timeout: float = 15.0) -> str:
        for _ in range(int(timeout / 0.05)):
            found = [line for line in list(self.lines) if text in line]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {text!r}: {self.lines} {self.errors}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=15)
        for t in self._threads:
            t.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_answer_over_a_connection_through_serve(tmp_path: Path, transport: str) -> None:
    _users(tmp_path / "sipline.db")
    server = start_serve(tmp_path, tls=True)
    port = server.tls_port if transport == "tls" else server.port
    extra = ["--ca-file", str(tmp_path / "sipline-tls" / "cert.pem")] if transport == "tls" else []
    answer = _Cli(
        "answer", "--user", "bob@example.com", "--password", "bob-pw", "--server", f"{HOST}:{port}",
        "--transport", transport, "--listen", f"{HOST}:0", "--rtp-ports", "41000-41019",
        "--duration", "1", *extra,
    )  # fmt: skip
    try:
        line = await answer.wait_line("waiting for calls")
        assert "(registered)" in line, (answer.lines, answer.errors)
        contact_port = int(line.split(f"{HOST}:", 1)[1].split(";", 1)[0].split()[0])
        # The Contact names a port the agent listens on (RFC 3261 §18.1.1 / §18.2.1).
        with socket.create_connection((HOST, contact_port), timeout=2):
            pass
        async with UserAgent(
            "alice@example.com", password="alice-pw", server=f"{HOST}:{server.port}",
            listen=f"{HOST}:0", register=False,
        ) as alice:  # fmt: skip
            call = await alice.call("sip:bob@example.com")
            await asyncio.wait_for(call.answered, 15)
            sdp = call.media.remote_sdp
            assert sdp is not None
            assert 41000 <= sdp.media[0].port <= 41019, sdp.media[0].port
            await asyncio.wait_for(call.ended, 15)  # bob hangs up after --duration
        await asyncio.to_thread(answer.proc.wait, 15)
        assert answer.proc.returncode == 0, (answer.lines, answer.errors)
        assert not any("Traceback" in e for e in answer.errors), answer.errors
    finally:
        answer.stop()
        server.stop()
    bindings = [line for line in server.lines if "Traceback" in line]
    assert not bindings, server.lines


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_call_over_a_connection_through_serve(tmp_path: Path, transport: str) -> None:
    _users(tmp_path / "sipline.db")
    server = start_serve(tmp_path, tls=True)
    port = server.tls_port if transport == "tls" else server.port
    extra = ["--ca-file", str(tmp_path / "sipline-tls" / "cert.pem")] if transport == "tls" else []
    try:
        async with UserAgent(
            "bob@example.com", password="bob-pw", server=f"{HOST}:{server.port}",
            listen=f"{HOST}:0", auto_answer=True,
        ) as bob:  # fmt: skip
            call = _Cli(
                "call", "sip:bob@example.com", "--user", "alice@example.com",
                "--password", "alice-pw", "--server", f"{HOST}:{port}", "--transport", transport,
                "--listen", f"{HOST}:0", "--duration", "1", *extra,
            )  # fmt: skip
            try:
                await call.wait_line("answered")
                await asyncio.to_thread(call.proc.wait, 15)
                assert call.proc.returncode == 0, (call.lines, call.errors)
                assert not bob.calls or all(not c.is_active for c in bob.calls)
            finally:
                call.stop()
    finally:
        server.stop()


async def test_a_sips_call_between_two_tls_agents(tmp_path: Path) -> None:
    """sips: end to end (RFC 3261 §26.2.2): both agents on TLS flows to the server."""
    _users(tmp_path / "sipline.db")
    server = start_serve(tmp_path, tls=True)
    tls = ["--server", f"{HOST}:{server.tls_port}", "--transport", "tls", "--listen", f"{HOST}:0",
           "--ca-file", str(tmp_path / "sipline-tls" / "cert.pem")]  # fmt: skip
    answer = _Cli("answer", "--user", "bob@example.com", "--password", "bob-pw", *tls)
    try:
        await answer.wait_line("(registered)")
        call = _Cli("call", "sips:bob@example.com", "--user", "alice@example.com",
                    "--password", "alice-pw", "--duration", "1", *tls)  # fmt: skip
        try:
            await call.wait_line("answered")
            await asyncio.to_thread(call.proc.wait, 15)
            assert call.proc.returncode == 0, (call.lines, call.errors)
            assert any("packets sent" in line for line in call.lines), call.lines
        finally:
            call.stop()
        await asyncio.to_thread(answer.proc.wait, 15)
        assert answer.proc.returncode == 0, (answer.lines, answer.errors)
    finally:
        answer.stop()
        server.stop()
