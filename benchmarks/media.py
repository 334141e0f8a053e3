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
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.far_ends import (
    HOST,
    FarEnds,
    JudgedSession,
    cores_by_idleness,
    counters,
    cpu_seconds,
    delta,
    pin,
    raise_nofile,
    serve_far_ends,
)
from sipline.media.audio import ArraySource, NullSink, to_int16
from sipline.media_io.session import StreamConfig
from sipline.transport.loop import run

__all__ = ["main"]

WARMUP_S = 1.5


def _signal() -> Any:
    t = np.arange(8000) / 8000
    return to_int16(8000 * np.sin(2 * np.pi * (300 * t + 200 * t * t)))


async def _open_sessions(n: int, *, full: bool = True) -> list[JudgedSession]:
    """`full`: encode a signal and decode what arrives (a real call). The peer's far
    ends send cached silence and drop what they play out, so that the peer, doing
    less per packet, is not what limits the measured process."""
    sessions: list[JudgedSession] = []
    signal = _signal()
    for _ in range(n):
        s = JudgedSession()
        await s.open(HOST)
        if full:
            s.play(ArraySource(signal, loop=True))
            s.record(NullSink())
        sessions.append(s)
    return sessions


# -- the peer process ---------------------------------------------------------------------------
async def _far_ends(request: dict[str, Any], targets: list[tuple[str, int]]) -> list[JudgedSession]:
    sessions = await _open_sessions(len(targets), full=False)
    for s, target in zip(sessions, targets, strict=True):
        s.configure(StreamConfig(target))
    return sessions


_PLACEMENT = {"peer_core": 1}  # set in main(): the core the peer process runs on


def _peer(targets: list[tuple[str, int]]) -> FarEnds:
    return FarEnds("benchmarks.media", _PLACEMENT["peer_core"], {"targets": targets})


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


async def _sipline_step(calls: int, seconds: float) -> Step:
    raise_nofile(4 * calls + 256)
    sessions = await _open_sessions(calls)
    peer = await asyncio.to_thread(_peer, [(HOST, s.local_port) for s in sessions])
    try:
        for s, port in zip(sessions, peer.ports, strict=True):
            s.configure(StreamConfig((HOST, port)))
            s.start()
        await asyncio.sleep(WARMUP_S)
        ours0, theirs0 = counters(sessions), await asyncio.to_thread(peer.mark)
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, wall1 = cpu_seconds(), time.monotonic()
        ours1, theirs1 = counters(sessions), await asyncio.to_thread(peer.mark)
    finally:
        for s in sessions:
            await s.close()
        await asyncio.to_thread(peer.stop)
    ours, theirs = delta(ours1, ours0), delta(theirs1, theirs0)
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

    raise_nofile(4 * calls + 256)
    clients: list[Any] = []
    peer: FarEnds | None = None
    try:
        # A generator, so that the clients started before a failure are still stopped.
        clients.extend(
            _start_pyvoip(RTPClient, PayloadType.PCMU, TransmitType.SENDRECV) for _ in range(calls)
        )
        peer = _peer([(HOST, c.inPort) for c in clients])
        for client, peer_port in zip(clients, peer.ports, strict=True):
            client.outPort = peer_port  # read by its sending thread for every packet
        time.sleep(WARMUP_S)
        theirs0 = peer.mark()
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = cpu_seconds(), time.monotonic()
        theirs1 = peer.mark()
    finally:
        for client in clients:
            client.stop()
        if peer is not None:
            peer.stop()
    theirs = delta(theirs1, theirs0)
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
        run(serve_far_ends(args.peer, _far_ends))
        return 0
    cores = cores_by_idleness()
    pin(cores[0])
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
