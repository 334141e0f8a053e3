"""Media benchmark: how many concurrent G.711 calls one core carries with under 1% of
packets late. Run with ``python -m benchmarks.media`` (``--help`` for the options).

A call here is one RTP session sending 20 ms PCMU packets (50 a second) and receiving
as many, through its jitter buffer and decoder. The measured process holds N sessions
on one core (CPU affinity), under uvloop; a peer process on the other core holds the
N far ends. The number of calls is stepped up until a step fails.

A packet counts as late when it reached its receiver more than 40 ms (two packet
times) behind its schedule (its transit time against the lowest of the last two
seconds, so a slow clock drift is forgiven as adaptive jitter buffers forgive it),
when the receiver's jitter buffer had already given its slot up, when it was lost,
or when its sender skipped it after a stall. Both directions are judged: our
packets by the peer, the peer's by us (so our receive path's delays count too).

Side by side: pyVoIP's RTPClient (two threads per call, `time.sleep` pacing) in the
measured process, judged the same way by the same peer (only the direction it sends:
pyVoIP has no jitter buffer of its own to judge what it receives).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from sipline.media.audio import ArraySource, NullSink, to_int16
from sipline.media_io.session import MediaSession, StreamConfig
from sipline.transport.loop import run

__all__ = ["main"]

HOST = "127.0.0.1"
WARMUP_S = 1.5
LATE_S = 0.040  # two packet times behind schedule
_DRIFT_WINDOW_S = 2.0


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(0, {core})


def _cores_by_idleness(sample_s: float = 0.5) -> list[int]:
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


def _raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _signal() -> Any:
    t = np.arange(8000) / 8000
    return to_int16(8000 * np.sin(2 * np.pi * (300 * t + 200 * t * t)))


class _Judged(MediaSession):
    """A session that also times every packet's arrival against its RTP timestamp."""

    def __init__(self) -> None:
        super().__init__(rtcp_interval_s=5.0)
        self.late_arrivals = 0
        self._transits: deque[tuple[float, float]] = deque()

    def _on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 12 and not 192 <= data[1] <= 223:
            now = self.loop.time()
            transit = now - int.from_bytes(data[4:8], "big") / 8000
            window = self._transits  # a monotonic queue: its head is the window's minimum
            while window and window[-1][1] >= transit:
                window.pop()
            window.append((now, transit))
            while window[0][0] < now - _DRIFT_WINDOW_S:
                window.popleft()
            if transit - window[0][1] > LATE_S:
                self.late_arrivals += 1
        super()._on_rtp(data, addr)


async def _open_sessions(n: int, *, full: bool = True) -> list[_Judged]:
    """`full`: encode a signal and decode what arrives (a real call). The peer's far
    ends send cached silence and drop what they play out, so that the peer, doing
    less per packet, is not what limits the measured process."""
    sessions: list[_Judged] = []
    signal = _signal()
    for _ in range(n):
        s = _Judged()
        await s.open(HOST)
        if full:
            s.play(ArraySource(signal, loop=True))
            s.record(NullSink())
        sessions.append(s)
    return sessions


def _counters(sessions: list[_Judged]) -> dict[str, int]:
    totals = {
        "sent": 0,
        "received": 0,
        "late": 0,
        "late_buffer": 0,
        "lost": 0,
        "skipped": 0,
        "send_late": 0,
    }
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


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


# -- the peer process ---------------------------------------------------------------------------
async def _peer_main(core: int) -> None:
    """Far ends: read {"targets": [[host, port], ...]}; print our ports; on "mark" print
    the counters; on "stop" (or EOF) close."""
    _pin(core)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    request = json.loads(await reader.readline())
    targets = [tuple(t) for t in request["targets"]]
    _raise_nofile(4 * len(targets) + 256)
    sessions = await _open_sessions(len(targets), full=False)
    for s, (host, port) in zip(sessions, targets, strict=True):
        s.configure(StreamConfig((str(host), int(port))))
    print(json.dumps({"ports": [s.local_port for s in sessions]}), flush=True)
    for s in sessions:
        s.start()
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"stop":
            break
        usage = resource.getrusage(resource.RUSAGE_SELF)
        counters = {
            **_counters(sessions),
            "cpu_ms": round(1000 * (usage.ru_utime + usage.ru_stime)),
        }
        print(json.dumps(counters), flush=True)
    for s in sessions:
        await s.close()


_PLACEMENT = {"peer_core": 1}  # set in main(): the core the peer process runs on


class _Peer:
    def __init__(self, targets: list[tuple[str, int]]) -> None:
        core = str(_PLACEMENT["peer_core"])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.media", "--peer", core],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._send({"targets": targets})
        self.ports: list[int] = self._read()["ports"]

    def _send(self, message: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        self.proc.stdin.flush()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the peer process died")
        result: dict[str, Any] = json.loads(line)
        return result

    def mark(self) -> dict[str, int]:
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


# -- one step ----------------------------------------------------------------------------------
@dataclass
class Step:
    calls: int
    expected: int  # packets each way in the window
    ours_late: int  # our packets the peer's jitter buffers judged late, lost or skipped
    theirs_late: int  # the peer's packets our jitter buffers judged late or lost
    cpu: float  # cores used by the measured process during the window
    peer_cpu: float
    detail: str

    @property
    def late_percent(self) -> float:
        total = 2 * self.expected if self.theirs_late >= 0 else self.expected
        late = self.ours_late + max(0, self.theirs_late)
        return 100.0 * late / total if total else 100.0

    def passed(self) -> bool:
        return self.late_percent < 1.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _sipline_step(calls: int, seconds: float) -> Step:
    _raise_nofile(4 * calls + 256)
    sessions = await _open_sessions(calls)
    peer = await asyncio.to_thread(_Peer, [(HOST, s.local_port) for s in sessions])
    try:
        for s, port in zip(sessions, peer.ports, strict=True):
            s.configure(StreamConfig((HOST, port)))
            s.start()
        await asyncio.sleep(WARMUP_S)
        ours0, theirs0 = _counters(sessions), await asyncio.to_thread(peer.mark)
        cpu0, wall0 = _cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, wall1 = _cpu(), time.monotonic()
        ours1, theirs1 = _counters(sessions), await asyncio.to_thread(peer.mark)
    finally:
        for s in sessions:
            await s.close()
        await asyncio.to_thread(peer.stop)
    ours, theirs = _delta(ours1, ours0), _delta(theirs1, theirs0)
    expected = round(calls * (wall1 - wall0) * 50)
    # Our packets: what the peer's jitter buffers gave up on, lost, or we never sent.
    unsent = max(0, expected - ours["sent"])
    ours_late = theirs["late"] + theirs["late_buffer"] + theirs["lost"] + ours["skipped"] + unsent
    theirs_late = ours["late"] + ours["late_buffer"] + ours["lost"]
    wall = wall1 - wall0
    detail = (
        f"[peer: late {theirs['late']} jitter buffer {theirs['late_buffer']} lost"
        f" {theirs['lost']}; we skipped {ours['skipped']}, unsent {unsent}; we: late"
        f" {ours['late']} jitter buffer {ours['late_buffer']} lost {ours['lost']}]"
    )
    peer_cpu = (theirs["cpu_ms"] / 1000) / wall
    return Step(calls, expected, ours_late, theirs_late, (cpu1 - cpu0) / wall, peer_cpu, detail)


def _start_pyvoip(client_class: Any, codec: Any, direction: Any) -> Any:
    """A started pyVoIP RTPClient on a free port (it binds its own socket: retry on a
    port taken meanwhile), sending nowhere useful until the peer's port is known."""
    import socket

    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        client = client_class({0: codec}, HOST, port, HOST, 9, direction)
        try:
            client.start()
        except OSError:
            continue
        return client
    raise RuntimeError("no free port for pyVoIP")


def _pyvoip_step(calls: int, seconds: float) -> Step:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pyVoIP imports audioop
        from pyVoIP.RTP import PayloadType, RTPClient, TransmitType

    _raise_nofile(4 * calls + 256)
    clients = []
    peer: _Peer | None = None
    try:
        # A generator, so that the clients started before a failure are still stopped.
        clients.extend(
            _start_pyvoip(RTPClient, PayloadType.PCMU, TransmitType.SENDRECV) for _ in range(calls)
        )
        peer = _Peer([(HOST, c.inPort) for c in clients])
        for client, peer_port in zip(clients, peer.ports, strict=True):
            client.outPort = peer_port  # read by its sending thread for every packet
        time.sleep(WARMUP_S)
        theirs0 = peer.mark()
        cpu0, wall0 = _cpu(), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = _cpu(), time.monotonic()
        theirs1 = peer.mark()
    finally:
        for client in clients:
            client.stop()
        if peer is not None:
            peer.stop()
    theirs = _delta(theirs1, theirs0)
    expected = round(calls * (wall1 - wall0) * 50)
    missing = max(0, expected - theirs["received"])
    ours_late = theirs["late"] + theirs["late_buffer"] + theirs["lost"] + missing
    wall = wall1 - wall0
    detail = (
        f"[peer: late {theirs['late']} jitter buffer {theirs['late_buffer']}"
        f" lost {theirs['lost']}, missing {missing}]"
    )
    peer_cpu = (theirs["cpu_ms"] / 1000) / wall
    return Step(calls, expected, ours_late, -1, (cpu1 - cpu0) / wall, peer_cpu, detail)


def _report(name: str, step: Step) -> None:
    theirs = f"{step.theirs_late:>6}" if step.theirs_late >= 0 else "     -"
    verdict = "ok" if step.passed() else "FAIL"
    print(
        f"  {name:<8} {step.calls:>5} calls  late/lost: ours {step.ours_late:>6} theirs {theirs}"
        f" of {step.expected:>7} each way = {step.late_percent:5.2f}%  cpu {step.cpu:4.2f}"
        f" (peer {step.peer_cpu:4.2f})  {verdict}",
        flush=True,
    )
    if not step.passed() or step.peer_cpu > 0.9:
        print(f"           {step.detail}", flush=True)


def _search(name: str, measure: Any, steps: list[int], attempts: int) -> int:
    """The largest call count that passes (best of `attempts` runs per step: on a shared
    machine another process's burst can spoil one run)."""
    best = 0
    for calls in steps:
        for _ in range(attempts):
            step = measure(calls)
            _report(name, step)
            if step.passed():
                break
        if not step.passed():
            break
        best = calls
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.media", description=__doc__)
    parser.add_argument(
        "--steps", default="50,100,200,300,400,500,600,700,800", help="call counts to try"
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="measurement window per step")
    parser.add_argument("--no-peer", action="store_true", help="skip the pyVoIP comparison")
    parser.add_argument("--peer-steps", default="10,25,50,100,150,200,300,400")
    parser.add_argument("--attempts", type=int, default=2, help="runs per step (best counts)")
    parser.add_argument("--peer", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer is not None:
        run(_peer_main(args.peer))
        return 0
    cores = _cores_by_idleness()
    _pin(cores[0])
    _PLACEMENT["peer_core"] = cores[1] if len(cores) > 1 else cores[0]
    print(
        f"media benchmark: PCMU 20 ms, {args.seconds:g} s per step, one core (cpu {cores[0]},"
        f" peer on cpu {_PLACEMENT['peer_core']})"
        f" ({platform.python_implementation()} {platform.python_version()},"
        f" {os.cpu_count()} cores)"
    )
    steps = [int(s) for s in args.steps.split(",")]
    sipline = _search(
        "sipline", lambda n: run(_sipline_step(n, args.seconds)), steps, args.attempts
    )
    pyvoip = 0
    if not args.no_peer:
        peer_steps = [int(s) for s in args.peer_steps.split(",")]
        pyvoip = _search(
            "pyVoIP", lambda n: _pyvoip_step(n, args.seconds), peer_steps, args.attempts
        )
    print()
    print(f"{'':<10}{'calls on one core (<1% late)':>32}")
    print(f"{'sipline':<10}{sipline:>32}")
    if not args.no_peer:
        print(f"{'pyVoIP':<10}{pyvoip:>32}")
        ratio = f"{sipline / pyvoip:.1f}x" if pyvoip else "-"
        print(f"ratio sipline/pyVoIP: {ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
