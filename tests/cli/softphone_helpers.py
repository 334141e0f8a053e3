"""Running sipline commands as a user does: real subprocesses, bounded in time, their
stdout read line by line as it comes and their stderr kept apart."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

SIPLINE = shutil.which("sipline") or str(Path(sys.executable).parent / "sipline")
HOST = "127.0.0.1"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for UDP and for TCP (so either transport can listen there)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as sock:
                sock.bind((HOST, port))
        except OSError:
            continue
        return port
    raise AssertionError("no free port")


class Process:
    """A sipline command bounded by `timeout -k`; stdout and stderr lines collected by
    threads, which wake whoever waits for a line (no polling)."""

    def __init__(self, *args: str, seconds: int = 30) -> None:
        self.proc = subprocess.Popen(
            ["timeout", "-k", "5", str(seconds), SIPLINE, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[bytes], into: list[str]) -> None:
        for raw in stream:
            with self._changed:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()  # the stream ended: a waiter may give up

    def text(self) -> str:
        return "\n".join([*self.lines, "-- stderr --", *self.errors])

    def wait_line(self, text: str, timeout: float = 15.0, *, err: bool = False) -> str:
        """The first line (of stdout, or stderr with `err`) containing `text`."""
        lines = self.errors if err else self.lines
        deadline = time.monotonic() + timeout

        def found() -> str | None:
            return next((line for line in lines if text in line), None)

        with self._changed:
            while (line := found()) is None:
                left = deadline - time.monotonic()
                if left <= 0 or not any(r.is_alive() for r in self._readers):
                    raise AssertionError(f"no {text!r} in:\n" + self.text())
                self._changed.wait(left)
        return line

    def finish(self, timeout: float = 30.0) -> str:
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.finish()
