"""What every server benchmark shares: loopback ports, processes started and stopped by
their own PID, their CPU time and memory read from /proc, SIPp runs (one or several
processes) and the search for the highest rate sustained with zero failed calls.

Everything listens on 127.0.0.1 and every child is bounded in time (`timeout -k`).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "HOST",
    "ROOT",
    "Meter",
    "Process",
    "ProcessMemory",
    "Search",
    "SippLoad",
    "Step",
    "find_max_rate",
    "free_port",
    "free_port_on",
    "sipp_binary",
    "wait_udp_ready",
]

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent
_TICKS = os.sysconf("SC_CLK_TCK")
# A SIPp process using at least this share of one core is taken as the bottleneck.
SIPP_BUSY = 0.85
# SIPp's final screen: "Successful call | 0 | 2000" (periodic, cumulative).
_COUNTER = re.compile(r"^\s+(Successful call|Failed call)\s+\|\s+\d+\s+\|\s+(\d+)", re.MULTILINE)
# "  OPTIONS ---------->  2000  3  0": messages, then retransmissions, both directions.
_RETRANS = re.compile(r"^\s+\S+\s+(?:-+>|<-+)\s+(?:[A-Za-z]\S*\s+)?\d+\s+(\d+)\s", re.MULTILINE)


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


def free_port_on(hosts: Sequence[str]) -> int:
    """A port free for UDP on every one of `hosts` (loopback addresses) right now."""
    for _ in range(50):
        port = free_port()
        socks = []
        try:
            for host in hosts:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((host, port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return port
    raise RuntimeError(f"no port free on all of {', '.join(hosts)}")


def wait_udp_ready(
    port: int,
    timeout_s: float = 60.0,
    alive: Callable[[], bool] | None = None,
    host: str = HOST,
) -> None:
    """Until something answers an OPTIONS on udp:`host`:`port` (any response will do)."""
    probe = (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:9;branch=z9hG4bKready;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:probe@{HOST}>;tag=r\r\nTo: <sip:{host}:{port}>\r\n"
        "Call-ID: ready\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.3)
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                break
            sock.sendto(probe, (host, port))
            try:
                sock.recvfrom(65535)
                return
            except (TimeoutError, ConnectionRefusedError):
                time.sleep(0.1)
    raise RuntimeError(f"no answer on udp:{host}:{port}")


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SystemExit("sipp is not installed (`make peers` installs it)")
    return path


# -- processes --------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(
                int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            )
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """`pid`'s children, their children, and so on (not `pid` itself)."""
    found = _children(pid)
    i = 0
    while i < len(found):
        found.extend(_children(found[i]))
        i += 1
    return found


def cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _role(pid: int) -> str:
    """What a process of a server is, from its command line: "worker N" for a
    `sipline serve --worker-index N`, else its program's name."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"

    def after(flag: bytes) -> str | None:
        i = args.index(flag) if flag in args else -1
        return args[i + 1].decode() if 0 <= i < len(args) - 1 else None

    index = after(b"--worker-index")
    if index is not None:
        return f"worker {index}"
    if b"serve" in args and any(b"sipline" in a for a in args):
        return "server" if after(b"--workers") in (None, "1") else "supervisor"
    return Path(args[0].decode(errors="replace")).name if args and args[0] else "process"


@dataclass(slots=True)
class ProcessMemory:
    """One process of a server: its peak and current resident set and PSS, in KiB."""

    pid: int
    role: str
    vmhwm_kib: int
    vmrss_kib: int
    pss_kib: int
    peak_pss_kib: int


class Meter:
    """CPU seconds and memory of a server's process tree (its workers included).

    Memory is read two ways: the sum of VmHWM (each process's peak resident set; shared
    pages count once per process, which overstates a forking server such as Kamailio),
    and the sum of PSS (shared pages split between the processes that map them), sampled
    once a second by `sampling()` and kept at its highest, in sum and per process.
    """

    def __init__(self, pids: Callable[[], Sequence[int]]) -> None:
        self.pids = pids
        self.peak_pss_kib = 0
        self._peak_pss_by_pid: dict[int, int] = {}

    def cpu_s(self) -> float:
        return sum(cpu_s(pid) for pid in self.pids())

    def vmhwm_kib(self) -> int:
        return sum(_status_kib(pid, "VmHWM") for pid in self.pids())

    def rss_kib(self) -> int:
        return sum(_status_kib(pid, "VmRSS") for pid in self.pids())

    def sample_pss(self) -> int:
        each = {pid: _pss_kib(pid) for pid in self.pids()}
        for pid, kib in each.items():
            self._peak_pss_by_pid[pid] = max(self._peak_pss_by_pid.get(pid, 0), kib)
        pss = sum(each.values())
        self.peak_pss_kib = max(self.peak_pss_kib, pss)
        return pss

    def processes(self) -> list[ProcessMemory]:
        """Each live process, now (VmHWM is already its peak since it started)."""
        found = []
        for pid in self.pids():
            pss = _pss_kib(pid)
            found.append(
                ProcessMemory(
                    pid=pid,
                    role=_role(pid),
                    vmhwm_kib=_status_kib(pid, "VmHWM"),
                    vmrss_kib=_status_kib(pid, "VmRSS"),
                    pss_kib=pss,
                    peak_pss_kib=max(self._peak_pss_by_pid.get(pid, 0), pss),
                )
            )
        return found

    @contextmanager
    def sampling(self, every_s: float = 1.0) -> Iterator[None]:
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(every_s):
                self.sample_pss()

        thread = threading.Thread(target=run, daemon=True)
        self.sample_pss()
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            self.sample_pss()


class Process:
    """A child started under `timeout -k 5 LIMIT`, its output in a log file.

    `pids()` lists what runs under the wrapper (the program and its workers), which is
    what the meters read. `stop()` sends SIGTERM to the program's own PID (or calls
    `stopper`), then kills it if it lingers.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        limit_s: int = 7200,
        foreground: bool = False,
    ) -> None:
        self.name = name
        self.log_path = cwd / f"{name}.log"
        self._log = self.log_path.open("wb")
        wrapper = ["timeout", *(["--foreground"] if foreground else []), "-k", "5", str(limit_s)]
        self.proc = subprocess.Popen(
            [*wrapper, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.stopper: Callable[[], None] | None = None
        self.meter = Meter(self.pids)

    def pids(self) -> list[int]:
        return descendants(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            if self.stopper is not None:
                self.stopper()
            else:
                main = _children(self.proc.pid)
                for pid in main or [self.proc.pid]:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


# -- SIPp -------------------------------------------------------------------------------------
@dataclass(slots=True)
class Step:
    """One run of the load at one rate."""

    rate: float  # offered, all SIPp processes together (calls/s)
    calls: int
    successful: int
    failed: int
    retransmissions: int
    elapsed_s: float  # until the last SIPp ended
    seconds: float  # the offered window, calls / rate
    server_cpu_s: float
    sipp_processes: int
    sipp_load: list[float]  # share of one core each SIPp used (UACs, then UASs)

    @property
    def ok(self) -> bool:
        """Sustained: every call offered succeeded and none failed, SIPp finished on time
        (a server that falls behind stretches the run), and retransmissions stayed under
        1% of the calls. Over UDP a server that drops requests still ends with every call
        successful, through SIPp's retransmissions (Timers A and E): that rate was not
        sustained."""
        return (
            self.failed == 0
            and self.successful == self.calls
            and self.elapsed_s <= self.seconds * 1.1 + 3
            and self.retransmissions <= 0.01 * self.calls
        )

    @property
    def sipp_busy(self) -> bool:
        return any(load >= SIPP_BUSY for load in self.sipp_load)

    @property
    def cpu_s_per_1000(self) -> float:
        return 1000 * self.server_cpu_s / self.successful if self.successful else float("inf")

    def line(self) -> str:
        verdict = (
            "pass" if self.ok else f"FAIL ({self.failed} failed)" if self.failed else "FAIL (late)"
        )
        loads = "/".join(f"{x:.0%}" for x in self.sipp_load)
        return (
            f"{self.rate:8,.0f}/s  {self.successful:>8,}/{self.calls:<8,} {verdict:<18}"
            f" cpu {self.cpu_s_per_1000:7.3f} s/1000  retrans {self.retransmissions:<6}"
            f" sipp x{self.sipp_processes} {loads}"
        )


def _max_socket() -> list[str]:
    """SIPp refuses `-t un` unless its socket limit is under the open-file limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return ["-max_socket", str(max(100, min(soft - 100, 16_000)))]


@dataclass
class SippLoad:
    """SIPp UACs against a server: process i sends to `target` (HOST:PORT), or to the
    i-th of several (one per node, taken in turn). `per_process(i, n)` gives process i
    of n its extra arguments (an injection file, a service); `watched` are long-running
    SIPp UAS processes whose CPU share is reported beside the UACs'."""

    target: str | Sequence[str]
    scenario: Path
    workdir: Path
    meter: Meter
    per_process: Callable[[int, int], list[str]] = lambda i, n: []
    extra: list[str] = field(default_factory=list)
    watched: Callable[[int], list[int]] = lambda n: []
    grace_s: float = 30.0
    recv_timeout_ms: int = 8000  # a call waiting this long for a message has failed
    # One UDP socket per call: a server whose workers share a port by SO_REUSEPORT sees
    # many senders (the kernel hashes each to a worker), as it would from real phones.
    transport: list[str] = field(default_factory=lambda: ["-t", "un", *_max_socket()])

    def run(self, rate: float, seconds: float, processes: int = 1) -> Step:
        sipp = sipp_binary()
        per_rate = max(1, round(rate / processes))
        share = max(1, round(per_rate * seconds))
        limit = int(seconds + self.grace_s)
        watched = self.watched(processes)
        watched_cpu0 = [cpu_s(pid) for pid in watched]
        server_cpu0 = self.meter.cpu_s()
        started = time.monotonic()
        procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        targets = [self.target] if isinstance(self.target, str) else list(self.target)
        for i in range(processes):
            out = self.workdir / f"sipp-{i}.out"
            args = [
                "timeout", "-k", "5", str(limit + 10),
                sipp, targets[i % len(targets)], "-sf", str(self.scenario), "-i", HOST,
                "-m", str(share), "-r", str(per_rate),
                "-timeout", f"{limit}s", "-recv_timeout", str(self.recv_timeout_ms),
                "-buff_size", "4194304", "-nostdin",
                *self.transport, *self.extra, *self.per_process(i, processes),
            ]  # fmt: skip
            with out.open("wb") as sink:
                procs.append(
                    (
                        subprocess.Popen(
                            args,
                            cwd=self.workdir,
                            stdin=subprocess.DEVNULL,
                            stdout=sink,
                            stderr=subprocess.STDOUT,
                        ),
                        out,
                    )
                )
        loads: list[float] = []
        for proc, _ in procs:
            # wait4 gives the CPU the wrapper and its SIPp child used (Linux counts reaped
            # children in a process's usage).
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            loads.append((usage.ru_utime + usage.ru_stime) / max(0.1, time.monotonic() - started))
        elapsed = time.monotonic() - started
        server_cpu = self.meter.cpu_s() - server_cpu0
        loads += [
            (cpu_s(pid) - c0) / elapsed for pid, c0 in zip(watched, watched_cpu0, strict=True)
        ]
        successful = failed = retrans = 0
        for _, out in procs:
            text = out.read_text("utf-8", "replace")
            counters = dict(_COUNTER.findall(text))
            if "Successful call" not in counters:
                failed += share  # SIPp did not finish: every call it had counts as failed
                continue
            successful += int(counters["Successful call"])
            failed += int(counters.get("Failed call", 0))
            retrans += sum(int(n) for n in _RETRANS.findall(text))
        calls = share * processes
        return Step(
            rate=per_rate * processes,
            calls=calls,
            successful=successful,
            failed=failed,
            retransmissions=retrans,
            elapsed_s=elapsed,
            seconds=share / per_rate,
            server_cpu_s=server_cpu,
            sipp_processes=processes,
            sipp_load=loads,
        )


# -- the search -------------------------------------------------------------------------------
@dataclass
class Search:
    best: Step | None
    steps: list[Step]
    notes: list[str]


def find_max_rate(
    step: Callable[[float, int], Step],
    *,
    start: float,
    factor: float,
    refine: int,
    limit: float,
    max_sipp: int,
    settle: Callable[[], None],
    report: Callable[[Step], None],
    min_sipp: int = 1,
) -> Search:
    """The highest rate at which `step(rate, sipp_processes)` passes: the rate is
    multiplied by `factor` until a step fails (divided, when the first one fails), then
    bisected `refine` times between the last pass and the first failure.

    When a SIPp process used nearly a whole core, the load itself may be what failed: the
    same rate is tried again with one more SIPp process (up to `max_sipp`), and every
    later step keeps that many. `min_sipp`: processes from the start, and
    how many are added at a time (one per node).
    """
    steps: list[Step] = []
    notes: list[str] = []
    processes = min_sipp
    max_sipp = max(max_sipp, min_sipp)

    def attempt(rate: float) -> Step:
        nonlocal processes
        while True:
            if steps:
                settle()  # between steps: not after the last one
            s = step(rate, processes)
            steps.append(s)
            report(s)
            if s.sipp_busy and processes + min_sipp <= max_sipp:
                processes += min_sipp  # as many more as there are nodes: an even split
                notes.append(
                    f"SIPp near 100% CPU at {s.rate:,.0f}/s: {processes} SIPp processes from then on"
                )
                if not s.ok:
                    continue
            return s

    good: Step | None = None
    bad: float | None = None
    rate = min(start, limit)
    first = attempt(rate)
    if first.ok:
        good = first
        while rate * factor <= limit:
            rate *= factor
            s = attempt(rate)
            if not s.ok:
                bad = rate
                break
            good = s
    else:
        bad = rate
        while rate / factor >= 1:
            rate /= factor
            s = attempt(rate)
            if s.ok:
                good = s
                break
            bad = rate
    if good is not None and bad is None:
        notes.append(f"no step failed up to the ceiling ({limit:,.0f}/s): a floor, not the maximum")
    if good is None or bad is None:
        return Search(good, steps, notes)
    lo, hi = good.rate, bad
    for _ in range(refine):
        mid = round((lo + hi) / 2)
        if mid <= lo or mid >= hi:
            break
        s = attempt(mid)
        if s.ok:
            good, lo = s, mid
        else:
            hi = mid
    return Search(good, steps, notes)
