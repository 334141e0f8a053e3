"""People with the sipline CLI chatting through `sipline serve`: `sipline chat` both
ways with presence, `sipline presence --set` seen by `--watch`, and a message sent
to someone offline delivered after the server was restarted (or killed with -9) and
they registered. Every process is a real subprocess on loopback."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import HOST, ServeProcess, start_serve

from sipline.storage import SqliteStore

DOMAIN = "example.com"
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
SIPLINE = shutil.which("sipline") or str(Path(sys.executable).parent / "sipline")
CONFIG = "[presence]\nmin_notify_interval_s = 0.2\n"


class Cli:
    """One sipline command, bounded by `timeout -k`; stdin a pipe, stdout collected."""

    def __init__(self, *args: str, seconds: int = 40) -> None:
        self.proc = subprocess.Popen(
            ["timeout", "-k", "5", str(seconds), SIPLINE, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()

    def wait_line(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._cond.wait(0.2)):
                    raise AssertionError(f"no {text!r} in:\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 0.1))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 20.0) -> int:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise
        finally:
            self._reader.join(timeout=5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()


def account(server: ServeProcess, user: str) -> list[str]:
    return [
        "--user", f"{user}@{DOMAIN}", "--password", USERS[user],
        "--server", f"{HOST}:{server.port}", "--listen", f"{HOST}:0",
    ]  # fmt: skip


def prepare(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    for user, password in USERS.items():
        store.add_user(user, DOMAIN, password)
    store.close()


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServeProcess]:
    # `sipline presence` keeps its entity tags under $XDG_STATE_HOME: not the user's.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    prepare(tmp_path / "serve")
    server = start_serve(tmp_path / "serve", CONFIG, tls=False)
    try:
        yield server
    finally:
        server.stop()


def test_two_people_chat_and_see_each_other(serve: ServeProcess) -> None:
    bob = Cli("chat", f"alice@{DOMAIN}", *account(serve, "bob"))
    alice: Cli | None = None
    try:
        bob.wait_line("chatting with")
        bob.wait_line(f"alice@{DOMAIN} is offline")
        alice = Cli("chat", f"bob@{DOMAIN}", *account(serve, "alice"))
        alice.wait_line(f"bob@{DOMAIN} is online")
        bob.wait_line(f"alice@{DOMAIN} is online")
        alice.send("hello bob")
        bob.wait_line(f"alice@{DOMAIN}: hello bob")
        bob.send("hi alice, how are you?")
        alice.wait_line(f"bob@{DOMAIN}: hi alice, how are you?")
        assert alice.finish() == 0
        bob.wait_line(f"alice@{DOMAIN} is offline")  # alice left: her registration is gone
        assert bob.finish() == 0
    finally:
        for p in (alice, bob):
            if p is not None:
                p.kill()


def test_presence_set_is_seen_by_a_watcher(serve: ServeProcess) -> None:
    setter = Cli("presence", "--set", "away", "--note", "in a meeting", *account(serve, "bob"))
    assert setter.finish() == 0, setter.lines
    assert any("published away (in a meeting)" in line for line in setter.lines)
    watcher = Cli(
        "presence", "--watch", f"bob@{DOMAIN}", "--duration", "12", *account(serve, "alice")
    )
    try:
        watcher.wait_line(f"bob@{DOMAIN} is away (in a meeting)")
        # Each run modifies what the last one left published (RFC 3903 §4.4, by its
        # entity tag), so the latest status is what watchers see.
        for status in ("busy", "online"):
            run = Cli("presence", "--set", status, *account(serve, "bob"))
            assert run.finish() == 0, run.lines
            watcher.wait_line(f"bob@{DOMAIN} is {status}")
        # --withdraw alone removes it (§4.5): bob, not registered, is offline.
        gone = Cli("presence", "--withdraw", *account(serve, "bob"))
        assert gone.finish() == 0, gone.lines
        assert any("withdrawn" in line for line in gone.lines)
        watcher.wait_line(f"bob@{DOMAIN} is offline")
        nothing = Cli("presence", "--withdraw", *account(serve, "bob"))
        assert nothing.finish() == 1
        assert nothing.lines == [
            "sipline: no published status of this account is known here"
            " (it was withdrawn, expired, or set from elsewhere)"
        ]
        assert watcher.finish() == 0
    finally:
        watcher.kill()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["restart", "kill-9"])
def test_offline_message_survives_a_restart(tmp_path: Path, stop: signal.Signals) -> None:
    workdir = tmp_path / "serve"
    prepare(workdir)
    server = start_serve(workdir, CONFIG, tls=False)
    try:
        sent = Cli("message", f"sip:bob@{DOMAIN}", "while you were out", *account(server, "alice"))
        assert sent.finish() == 0, sent.lines
        assert any("stored for" in line and "(202)" in line for line in sent.lines)
        server.proc.send_signal(stop)
        server.proc.wait(timeout=10)
    finally:
        server.stop()
    restarted = start_serve(workdir, CONFIG, tls=False)
    try:
        bob = Cli("answer", "--calls", "0", *account(restarted, "bob"))
        try:
            bob.wait_line(f"message from sip:alice@{DOMAIN}: while you were out")
        finally:
            bob.proc.send_signal(signal.SIGTERM)
            bob.finish()
        store = SqliteStore(workdir / "sipline.db")
        try:
            for _ in range(50):
                if not store.pending_messages(f"bob@{DOMAIN}", now=time.time()):
                    break
                time.sleep(0.1)
            assert store.pending_messages(f"bob@{DOMAIN}", now=time.time()) == []
        finally:
            store.close()
    finally:
        restarted.stop()
