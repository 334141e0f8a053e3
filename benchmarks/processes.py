"""Servers under test as subprocesses: started on free loopback ports, ready when they
print a known line, stopped by their own PID."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Server", "free_port", "sipline_serve"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A port free for both UDP and TCP on loopback right now."""
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


class Server:
    """A process whose output is collected by a thread; `pids` lists it and its children."""

    def __init__(self, name: str, args: Sequence[str], ready: str, *, cwd: Path | None = None):
        self.name = name
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._marker = ready
        self.proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if self._marker in line:
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 30.0) -> None:
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            tail = "\n".join(self.lines[-20:])
            raise RuntimeError(f"{self.name} did not start:\n{tail}")

    def pids(self) -> list[int]:
        """The process and its descendants (worker processes count towards CPU and memory)."""
        found = [self.proc.pid]
        i = 0
        while i < len(found):
            try:
                text = Path(f"/proc/{found[i]}/task/{found[i]}/children").read_text()
            except OSError:
                text = ""
            found.extend(int(p) for p in text.split())
            i += 1
        return found

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def sipline_serve(workdir: Path, port: int, *extra: str) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-c",
        "from sipline.cli.main import main; main()",
        "serve",
        "--listen",
        f"udp:{HOST}:{port}",
        "--db",
        str(workdir / "sipline.db"),
        "--log-level",
        "warning",
        *extra,
    ]
    server = Server("sipline", args, "sipline: serving", cwd=workdir)
    server.wait_ready()
    time.sleep(0.2)
    return server
