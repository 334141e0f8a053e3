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
    """A sipline command bounded by `timeout -k`; stdout lines collected by a thread."""

    def __init__(self, *args: str, seconds: int = 30) -> None:
        self.proc = subprocess.Popen(
            ["timeout", "-k", "5", str(seconds), SIPLINE, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[bytes], into: list[str]) -> None:
        # extend() takes each line as it comes, so waiters see it at once.
        into.extend(raw.decode("utf-8", "replace").rstrip("\n") for raw in stream)

    def text(self) -> str:
        return "\n".join([*self.lines, "-- stderr --", *self.errors])

    def wait_line(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in list(self.lines):
                if text in line:
                    return line
            if time.monotonic() > deadline or self.proc.poll() is not None:
                time.sleep(0.2)
                for line in list(self.lines):
                    if text in line:
                        return line
                raise AssertionError(f"no {text!r} in:\n" + self.text())
            time.sleep(0.05)

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
