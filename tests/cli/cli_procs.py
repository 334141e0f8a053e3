"""`sipline` commands as subprocesses for the CLI tests: bounded in time by `timeout -k`,
their stdout and stderr lines collected by threads, and `sipline serve` on free
loopback ports with a configuration and users."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sipline.storage.sqlite import SqliteStore

SIPLINE = shutil.which("sipline") or str(Path(sys.executable).parent / "sipline")
HOST = "127.0.0.1"


def free_port() -> int:
    """A port free for UDP and TCP on loopback right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((HOST, port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port on loopback")


class Proc:
    """One sipline command; `out` and `err` fill as it prints."""

    def __init__(self, *args: str, seconds: int = 40, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            ["timeout", "-k", "5", str(seconds), SIPLINE, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object, into: list[str]) -> None:
        for raw in stream:  # type: ignore[attr-defined]
            with self._cond:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, text: str, *, err: bool = False, timeout: float = 20.0) -> str:
        """The first line of stdout (or stderr) containing `text`."""
        lines = self.err if err else self.out
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in lines:
                    if text in line:
                        return line
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self._cond.wait(0.3)
                    for line in lines:
                        if text in line:
                            return line
                    raise AssertionError(
                        f"no {text!r} in:\n" + "\n".join(self.out) + "\n--\n" + "\n".join(self.err)
                    )
                self._cond.wait(0.05)

    def finish(self, timeout: float = 60.0) -> int:
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.finish()

    @property
    def stdout(self) -> str:
        return "\n".join(self.out)

    @property
    def stderr(self) -> str:
        return "\n".join(self.err)


@contextmanager
def serving(
    workdir: Path, config: str = "", users: tuple[str, ...] = ("alice", "bob", "carol")
) -> Iterator[int]:
    """`sipline serve` for example.com on a free UDP port, users with password `<user>-pw`;
    yields the port. The server must not log a traceback."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "sipline.db"
    store = SqliteStore(db)
    if not store.has_domain("example.com"):
        store.add_domain("example.com")
    for user in users:
        store.add_user(user, "example.com", f"{user}-pw")
    store.close()
    (workdir / "sipline.toml").write_text(config)
    port = free_port()
    server = Proc(
        "serve", "--listen", f"udp:{HOST}:{port}", "--domain", "example.com", "--db", str(db),
        "--config", str(workdir / "sipline.toml"), "--workers", "1", seconds=120, cwd=workdir,
    )  # fmt: skip
    try:
        server.wait_for("sipline: serving", err=True)
        yield port
    finally:
        server.stop()
    assert "Traceback" not in server.stderr, server.stderr
