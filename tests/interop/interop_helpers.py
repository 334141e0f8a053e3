"""Helpers for interop tests: `sipline serve` as a real subprocess on free loopback
ports, and third-party peers (SIPp, sipsak, ...) run bounded in time.

Everything here talks to 127.0.0.1 only. Processes are stopped by their own PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sipline.testing.ports import free_port_pair

HOST = "127.0.0.1"
SIPP_DATA = Path(__file__).parent.parent / "data" / "sipp"
READY_S = 15.0
_STATUS = re.compile(r"status: (.*)$")


def free_tcp_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


# Every `sipline serve` started, for the check that none logged a traceback
# (conftest.py: `no_tracebacks`, after each test).
STARTED: list[ServeProcess] = []


def tracebacks(server: ServeProcess) -> list[str]:
    """The tracebacks in the server's log, each with the lines around it: a traceback
    reaching the log is a bug, whatever the test checks otherwise."""
    found = []
    for i, line in enumerate(server.lines):
        if "Traceback (most recent call last)" in line:
            found.append("\n".join(server.lines[max(0, i - 2) : i + 30]))
    return found


@dataclass
class ServeProcess:
    """A running `sipline serve`; its stderr lines are collected by a reader thread."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    port: int  # UDP and TCP
    tls_port: int
    lines: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def uri(self) -> str:
        return f"sip:{HOST}:{self.port}"

    def _read(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        for raw in stream:
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pattern: str, start: int = 0, timeout: float = READY_S) -> str:
        """The first stderr line from index `start` on that contains `pattern`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if pattern in line:
                        return line
                if self.proc.poll() is not None:
                    self._cond.wait(0.2)  # let the reader thread drain the pipe
                    if any(pattern in line for line in self.lines[start:]):
                        continue
                    raise AssertionError(
                        f"sipline serve exited ({self.proc.returncode}) before {pattern!r}:\n"
                        + "\n".join(self.lines)
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {pattern!r} from sipline serve within {timeout} s:\n"
                        + "\n".join(self.lines[-20:])
                    )
                self._cond.wait(min(left, 0.05))

    def status(self) -> dict[str, int]:
        """Ask for a status line (SIGUSR1) and parse its counters."""
        with self._cond:
            start = len(self.lines)
        self.proc.send_signal(signal.SIGUSR1)
        line = self.wait_line("status: ", start=start, timeout=5.0)
        match = _STATUS.search(line)
        assert match is not None, line
        return {k: int(v) for k, v in (item.split("=", 1) for item in match.group(1).split())}

    def wait_status(self, key: str, value: int, timeout: float) -> dict[str, int]:
        """Poll the status line until `key` equals `value`; return the last status."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.status()
            if current[key] == value or time.monotonic() > deadline:
                return current
            time.sleep(0.5)

    def rss_kib(self) -> int:
        text = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
        assert match is not None
        return int(match.group(1))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.proc.returncode


@contextlib.contextmanager
def checked(server: ServeProcess) -> Iterator[ServeProcess]:
    """Run the block with `server`, then check it is still alive, stop it, and check it
    exited with code 0 (a crash or an unclean stop fails the test)."""
    try:
        yield server
        assert server.alive(), "sipline serve died during the test:\n" + "\n".join(
            server.lines[-20:]
        )
    finally:
        code = server.stop()
    assert code == 0, "\n".join(server.lines[-20:])


def start_serve(
    workdir: Path,
    config: str | None = None,
    *,
    tls: bool = True,
    workers: int | None = None,
    domains: tuple[str, ...] = (),
    launcher: list[str] | None = None,
    host: str = HOST,
    listen: tuple[str, ...] = (),
    db: str | None = None,
) -> ServeProcess:
    """Start `sipline serve` on UDP+TCP (and TLS) on free loopback ports; wait until ready.

    `workers` processes (`--workers`); unset: $SIPLINE_TEST_WORKERS, else 1, so the
    whole interop suite can be run against several workers too. `domains` are given
    with `--domain`; `launcher` runs the `sipline` command (default: this interpreter,
    `-c`); `host` is the loopback address it listens on (one node of several sharing
    the database, each on its own); `listen` adds listeners (`ws:127.0.0.1:PORT`); `db`
    is the `--db` (default: `sipline.db` in `workdir`)."""
    if workers is None:
        workers = int(os.environ.get("SIPLINE_TEST_WORKERS", "1"))
    workdir.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for _ in range(3):
        port = free_port_pair(host)
        tls_port = free_tcp_port(host) if tls else 0
        args = [
            *(launcher or [sys.executable, "-c", "from sipline.cli.main import main; main()"]),
            "serve",
            "--listen",
            f"udp:{host}:{port}",
            "--listen",
            f"tcp:{host}:{port}",
            "--db",
            db or str(workdir / "sipline.db"),
            "--workers",
            str(workers),
        ]
        if tls:
            args += ["--listen", f"tls:{host}:{tls_port}"]
        for spec in listen:
            args += ["--listen", spec]
        for domain in domains:
            args += ["--domain", domain]
        if config is not None:
            path = workdir / "sipline.toml"
            path.write_text(config, encoding="utf-8")
            args += ["--config", str(path)]
        proc = subprocess.Popen(
            args,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = ServeProcess(proc, workdir, port, tls_port)
        STARTED.append(server)
        server._reader = threading.Thread(target=server._read, daemon=True)
        server._reader.start()
        try:
            server.wait_line("sipline: serving")
        except AssertionError as exc:
            server.stop()
            last_error = str(exc)
            if "cannot listen" in last_error:
                continue  # lost a race for the port: try others
            raise
        return server
    raise AssertionError(last_error)


def sipline_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """One `sipline` command in a fresh interpreter, its output captured."""
    return subprocess.run(
        [sys.executable, "-c", "from sipline.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )


# -- peers ------------------------------------------------------------------------------------
def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (scripts/install-peers.sh installs it)")
    return path


@dataclass
class SippResult:
    returncode: int
    successful: int
    failed: int
    retransmissions: int
    output: str


_COUNTER = re.compile(r"^\s+(Successful call|Failed call)\s+\|\s+\d+\s+\|\s+(\d+)", re.MULTILINE)


def run_sipp(
    target: str,
    scenario: Path,
    workdir: Path,
    *,
    calls: int,
    rate: int = 100,
    extra: list[str] | None = None,
    timeout_s: float = 30.0,
    local_port: int = 0,
) -> SippResult:
    """Run SIPp as a UAC against `target` (host:port) until `calls` calls ended,
    bounded by SIPp's own `-timeout` and by `timeout -k` around it."""
    sipp = need("sipp")
    stat = workdir / f"sipp-{time.monotonic_ns()}.csv"
    args = [
        "timeout",
        "-k",
        "5",
        str(int(timeout_s) + 5),
        sipp,
        target,
        "-sf",
        str(scenario),
        "-i",
        HOST,
        "-p",
        str(local_port),
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-timeout",
        f"{int(timeout_s)}s",
        "-buff_size",
        "4194304",
        "-nostdin",
        "-trace_stat",
        "-stf",
        str(stat),
        *(extra or []),
    ]
    done = subprocess.run(
        args,
        check=False,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout_s + 15,
    )
    output = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
    return _sipp_result(done.returncode, output, stat)


def _sipp_result(returncode: int, output: str, stat: Path) -> SippResult:
    counters = dict(_COUNTER.findall(output))
    retrans = 0
    if stat.exists():
        rows = stat.read_text().splitlines()
        if len(rows) >= 2:
            row = dict(zip(rows[0].split(";"), rows[-1].split(";"), strict=False))
            retrans = int(row.get("Retransmissions(C)", "0") or 0)
    return SippResult(
        returncode,
        int(counters.get("Successful call", -1)),
        int(counters.get("Failed call", -1)),
        retrans,
        output,
    )


def wait_tcp(host: str, port: int, timeout: float) -> None:
    """Wait until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted`; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


UASES: list[SippServer] = []  # started by `start_sipp_uas`, stopped after each test


@dataclass
class SippServer:
    """A SIPp UAS running in the background (see `start_sipp_uas`); its screen goes
    to a file, so a full pipe can never stall it."""

    proc: subprocess.Popen[bytes]
    port: int
    stat: Path
    log: Path

    def finish(self, timeout_s: float = 30.0) -> SippResult:
        """Wait for SIPp to end (its `-m` calls done), killing it past `timeout_s`."""
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
        output = self.log.read_text(encoding="utf-8", errors="replace")
        return _sipp_result(self.proc.returncode, output, self.stat)

    def stop(self) -> None:
        """End SIPp and the `timeout` around it: the whole process group (killing only
        `timeout` would leave SIPp running, orphaned)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def start_sipp_uas(
    scenario: Path,
    workdir: Path,
    *,
    port: int,
    calls: int,
    extra: list[str] | None = None,
    timeout_s: float = 30.0,
) -> SippServer:
    """Start SIPp as a UAS on `port`; it ends by itself after `calls` calls, or after
    `timeout_s` (SIPp's `-timeout`, and `timeout -k` around it)."""
    sipp = need("sipp")
    stat = workdir / f"sipp-uas-{port}-{time.monotonic_ns()}.csv"
    args = [
        "timeout", "-k", "5", str(int(timeout_s) + 5), sipp,
        "-sf", str(scenario), "-i", HOST, "-p", str(port), "-m", str(calls),
        "-timeout", f"{int(timeout_s)}s", "-buff_size", "4194304", "-nostdin",
        "-trace_stat", "-stf", str(stat), *(extra or []),
    ]  # fmt: skip
    log = workdir / f"sipp-uas-{port}-{time.monotonic_ns()}.log"
    with log.open("wb") as screen:
        proc = subprocess.Popen(
            args,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=screen,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() ends SIPp too
        )
    uas = SippServer(proc, port, stat, log)
    UASES.append(uas)
    return uas


def stop_leftover_uases() -> None:
    """Stop every SIPp UAS a test started and did not wait for (one whose test failed
    before `finish`): left running, its Popen is reaped later, in whichever test then
    runs, as a ResourceWarning that fails that test instead."""
    for uas in UASES:
        uas.stop()
    UASES.clear()


def write_sipp_users(path: Path, users: list[tuple[str, str]], domain: str) -> Path:
    """A SIPp injection file: user; the whole [authentication] keyword; domain (SIPp
    3.6.1 does not expand a field inside [authentication], so the keyword is the field)."""
    lines = ["SEQUENTIAL"]
    lines += [f"{u};[authentication username={u} password={p}];{domain}" for u, p in users]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def kill_mid_load(server: ServeProcess, load: subprocess.Popen[bytes], after_s: float) -> None:
    """SIGKILL the server `after_s` seconds into a SIPp load, then let the load end."""
    try:
        time.sleep(after_s)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        load.wait(timeout=70)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait(timeout=10)
        server.stop()
    assert server.proc.returncode == -signal.SIGKILL


def traced_responses(trace: Path, status: int) -> list[str]:
    """The messages with this status that SIPp received, from its -trace_msg file."""
    text = trace.read_text(encoding="utf-8", errors="replace")
    blocks = (b.split("\n\n", 1)[-1].lstrip() for b in text.split("message received")[1:])
    return [b for b in blocks if b.startswith(f"SIP/2.0 {status}")]
