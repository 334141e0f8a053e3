"""What the media benchmarks (`media`, `conference`) share: sessions that judge every
packet's arrival, their counters, the far-end process on another core that answers the
measured sessions (`FarEnds` starts it, `serve_far_ends` is its main), and placing
processes on cores.

The far-end process reads one JSON request line ({"targets": [[host, port], ...],
...}), prints {"ports": [...]} once its sessions are open, then on each "mark" line
prints its counters with its CPU time, and on "stop" (or end of input) closes.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from sipline.media_io.session import MediaSession

__all__ = [
    "HOST",
    "LATE_S",
    "FarEnds",
    "JudgedSession",
    "cores_by_idleness",
    "counters",
    "cpu_seconds",
    "delta",
    "pin",
    "raise_nofile",
    "serve_far_ends",
]

HOST = "127.0.0.1"
LATE_S = 0.040  # two packet times behind schedule
_DRIFT_WINDOW_S = 2.0


class JudgedSession(MediaSession):
    """A session that also times every packet's arrival against its RTP timestamp."""

    def __init__(self) -> None:
        super().__init__(rtcp_interval_s=5.0)
        self.late_arrivals = 0
        self._transits: deque[tuple[float, float]] = deque()

    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 12 and not 192 <= data[1] <= 223:
            now = self.clock.now()
            transit = now - int.from_bytes(data[4:8], "big") / self.sample_rate
            window = self._transits  # a monotonic queue: its head is the window's minimum
            while window and window[-1][1] >= transit:
                window.pop()
            window.append((now, transit))
            while window[0][0] < now - _DRIFT_WINDOW_S:
                window.popleft()
            if transit - window[0][1] > LATE_S:
                self.late_arrivals += 1
        super()._on_rtp(data, addr)


def counters(sessions: list[JudgedSession]) -> dict[str, int]:
    totals = dict.fromkeys(
        ("sent", "received", "late", "late_buffer", "lost", "skipped", "send_late"), 0
    )
    for s in sessions:
        st = s.stats()
        totals["sent"] += st.packets_sent
        totals["received"] += st.packets_received
        totals["late"] += s.late_arrivals
        totals["late_buffer"] += st.late
        totals["lost"] += st.packets_lost
        totals["skipped"] += st.skipped
        totals["send_late"] += st.send_late
    return totals


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the far-end process ---------------------------------------------------------------------------
OpenFarEnds = Callable[[dict[str, Any], list[tuple[str, int]]], Awaitable[list[JudgedSession]]]


async def serve_far_ends(core: int, open_far_ends: OpenFarEnds) -> None:
    """The far-end process's main: `open_far_ends(request, targets)` opens and
    configures one session per target."""
    pin(core)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    request = json.loads(await reader.readline())
    targets = [(str(host), int(port)) for host, port in request["targets"]]
    raise_nofile(4 * len(targets) + 256)
    sessions = await open_far_ends(request, targets)
    print(json.dumps({"ports": [s.local_port for s in sessions]}), flush=True)
    for s in sessions:
        s.start()
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"stop":
            break
        cpu_ms = round(1000 * cpu_seconds())
        print(json.dumps({**counters(sessions), "cpu_ms": cpu_ms}), flush=True)
    for s in sessions:
        await s.close()


class FarEnds:
    """The far-end process of benchmark `module` (run as `python -m module --peer CORE`)."""

    def __init__(self, module: str, core: int, request: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--peer", str(core)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._send(json.dumps(request))
        self.ports: list[int] = self._read()["ports"]

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the peer process died")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def mark(self) -> dict[str, Any]:
        self._send("mark")
        return self._read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self._send("stop")
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- placing processes on cores --------------------------------------------------------------------
def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


def cores_by_idleness(sample_s: float = 0.5) -> list[int]:
    """Cores from the idlest to the busiest over a short sample (/proc/stat), so that on
    a shared machine the measured process takes the core others leave free."""

    def idle() -> dict[int, tuple[int, int]]:
        out = {}
        with open("/proc/stat") as stat:
            for line in stat:
                name, *fields = line.split()
                if name.startswith("cpu") and name != "cpu":
                    values = [int(v) for v in fields]
                    out[int(name[3:])] = (values[3] + values[4], sum(values))
        return out

    try:
        before = idle()
        time.sleep(sample_s)
        after = idle()
    except OSError:
        return list(range(os.cpu_count() or 1))
    share = {c: (after[c][0] - before[c][0]) / max(1, after[c][1] - before[c][1]) for c in after}
    return sorted(share, key=lambda c: -share[c])


def raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
