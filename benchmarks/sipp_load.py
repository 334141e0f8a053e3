"""SIPp as the load: run a scenario at a rate, read its counters, and step the rate to
the highest one a server sustains with zero failed calls.

Every measurement also reads the server process's CPU time (utime + stime from
/proc/PID/stat, children included when asked) and its peak resident memory (VmHWM), so
a table can quote CPU seconds per 1,000 calls and peak memory beside the rate.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Measurement",
    "ProcessMeter",
    "StepResult",
    "find_max_rate",
    "run_sipp",
]

HOST = "127.0.0.1"
_TICKS = os.sysconf("SC_CLK_TCK")
# SIPp's final screen: "  OPTIONS ---------->  2000  3  0" (messages, retransmissions, ...)
# and "  200 <----------  2000  0  0  0", both directions counted.
_RETRANS = re.compile(r"^\s+\S+\s+(?:-+>|<-+)\s+(?:[A-Za-z]\S*\s+)?\d+\s+(\d+)\s", re.MULTILINE)
_COUNTER = re.compile(r"^\s+(Successful call|Failed call)\s+\|\s+\d+\s+\|\s+(\d+)", re.MULTILINE)


class ProcessMeter:
    """CPU seconds and peak RSS of a set of processes (a server and its workers)."""

    def __init__(self, pids: Callable[[], Sequence[int]]) -> None:
        self._pids = pids

    def cpu_s(self) -> float:
        total = 0
        for pid in self._pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / _TICKS

    def peak_rss_kib(self) -> int:
        peak = 0
        for pid in self._pids():
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.MULTILINE)
            if match:
                peak += int(match.group(1))
        return peak


@dataclass(slots=True)
class Measurement:
    rate: int  # calls/s asked of SIPp (all processes together)
    seconds: float
    successful: int
    failed: int
    retransmissions: int
    cpu_s: float  # the server's CPU time during the run
    elapsed_s: float  # wall time until the last SIPp ended
    output: str

    @property
    def ok(self) -> bool:
        """Sustained: no failed call, SIPp finished on time, and retransmissions (the sign
        of a server falling behind over UDP) stayed under 1 % of the calls."""
        return (
            self.failed == 0
            and self.successful > 0
            and self.elapsed_s <= self.seconds * 1.2 + 5
            and self.retransmissions <= 0.01 * self.successful
        )

    @property
    def achieved(self) -> float:
        return self.successful / self.seconds if self.seconds else 0.0

    @property
    def cpu_s_per_1000(self) -> float:
        return 1000 * self.cpu_s / self.successful if self.successful else float("inf")


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SystemExit("sipp is not installed (make peers installs it)")
    return path


def run_sipp(
    target: str,
    scenario: Path | str,
    *,
    rate: int,
    seconds: float,
    meter: ProcessMeter | None = None,
    processes: int = 1,
    extra: Sequence[str] = (),
    grace_s: float = 40.0,
) -> Measurement:
    """Run `processes` SIPp UACs against `target`, together offering `rate` calls/s for
    `seconds`; each stops after its share of calls. `scenario` is a path, or `sn:NAME` for
    a built-in one."""
    sipp = sipp_binary()
    calls = max(1, int(rate * seconds))
    workdir = Path(tempfile.mkdtemp(prefix="sipline-bench-"))
    shares = [calls // processes + (1 if i < calls % processes else 0) for i in range(processes)]
    rates = [max(1, rate // processes)] * processes
    procs = []
    cpu0 = meter.cpu_s() if meter else 0.0
    started = time.monotonic()
    for i, (share, r) in enumerate(zip(shares, rates, strict=True)):
        source = (
            ["-sn", str(scenario)[3:]]
            if str(scenario).startswith("sn:")
            else ["-sf", str(scenario)]
        )
        args = [
            "timeout", "-k", "5", str(int(seconds + grace_s + 10)),
            sipp, target, *source,
            "-i", HOST, "-p", "0",
            "-m", str(share), "-r", str(r),
            "-timeout", f"{int(seconds + grace_s)}s",
            "-buff_size", "4194304",
            "-nostdin", "-max_socket", "65000",
            *extra,
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(
                args,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=open(workdir / f"out{i}.txt", "wb"),  # noqa: SIM115 (closed by the child's exit)
                stderr=subprocess.STDOUT,
            )
        )
    for p in procs:
        p.wait()
    elapsed = time.monotonic() - started
    cpu = (meter.cpu_s() if meter else 0.0) - cpu0
    successful = failed = retrans = 0
    outputs = []
    for i in range(processes):
        text = (workdir / f"out{i}.txt").read_text("utf-8", "replace")
        outputs.append(text)
        counters = dict(_COUNTER.findall(text))
        if "Successful call" not in counters:
            failed += shares[i]  # SIPp died or was killed: count its calls as failed
            continue
        successful += int(counters["Successful call"])
        failed += int(counters.get("Failed call", 0))
        retrans += sum(int(n) for n in _RETRANS.findall(text))
    shutil.rmtree(workdir, ignore_errors=True)
    # SIPp runs until its last call ends: the offered window is calls/rate, not elapsed.
    return Measurement(
        rate, calls / rate, successful, failed, retrans, cpu, elapsed, "\n".join(outputs)
    )


@dataclass(slots=True)
class StepResult:
    best: Measurement | None
    steps: list[Measurement]


def find_max_rate(
    measure: Callable[[int], Measurement],
    *,
    start: int,
    limit: int,
    precision: float = 0.1,
    settle: Callable[[], None] | None = None,
) -> StepResult:
    """Step the rate up (doubling) until a run fails, then bisect between the last good
    and the first bad rate until they are within `precision` of each other."""
    steps: list[Measurement] = []
    good: Measurement | None = None
    rate = start
    bad: int | None = None
    while rate <= limit:
        m = measure(rate)
        steps.append(m)
        if settle:
            settle()
        if not m.ok:
            bad = rate
            break
        good = m
        rate *= 2
    if good is None:
        return StepResult(None, steps)
    if bad is None:
        return StepResult(good, steps)
    lo, hi = good.rate, bad
    while hi - lo > max(1, int(lo * precision)):
        mid = (lo + hi) // 2
        m = measure(mid)
        steps.append(m)
        if settle:
            settle()
        if m.ok:
            good, lo = m, mid
        else:
            hi = mid
    return StepResult(good, steps)
