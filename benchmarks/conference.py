"""Conference benchmark: how many participants one core mixes with under 1% of frames
late, with G.711 (PCMU) and with Opus. Run with ``python -m benchmarks.conference``
(``--help`` for the options).

The measured process, pinned to one core, holds the room side: N RTP sessions (the
media host's half of N calls, each with its jitter buffer and decoder) in rooms of
`--room-size`, mixed by `Room` on the 20 ms media clock, each listener's frame
encoded (one shared encode per codec for the listeners of the full mix) and sent. A
peer process on another core holds the N far ends: in each room `--talkers` of them
send a tone, the others silence (a meeting: a few speak, the rest listen), and all
judge the frames they receive. A frame counts as late when it reached the far end
more than 40 ms behind its schedule, when the far end's jitter buffer had given its
slot up, when it was lost, or when the room side skipped or never sent it; the far
ends' frames are judged the same way on the room side. N is stepped up until a step
fails.

Beside it, the mixer alone (`sipline.media.mixer`, numpy): the participants one core
could mix if mixing were all it did, from the time one mix takes. The gap between
the two figures is what RTP, decoding, encoding and the event loop cost.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from benchmarks import far_ends
from benchmarks.far_ends import HOST, JudgedSession
from sipline.media.audio import ToneSource
from sipline.media.codecs.opus import opus_available, register_opus
from sipline.media.mixer import Mixer
from sipline.media_io.session import StreamConfig
from sipline.server.media_services.room import FRAME, Room
from sipline.transport.loop import run

__all__ = ["main"]

WARMUP_S = 1.5
PAYLOAD_TYPES = {"PCMU": 0, "opus": 111}


async def _open(
    n: int, codec: str, remotes: list[tuple[str, int]] | None = None
) -> list[JudgedSession]:
    sessions = []
    for i in range(n):
        s = JudgedSession()
        await s.open(HOST)
        if remotes is not None:
            s.configure(StreamConfig(remotes[i], PAYLOAD_TYPES[codec], codec))
        sessions.append(s)
    return sessions


# -- the peer process: the far ends --------------------------------------------------------------
async def _far_ends(request: dict[str, Any], targets: list[tuple[str, int]]) -> list[JudgedSession]:
    register_opus()
    sessions = await _open(len(targets), request["codec"], targets)
    for i, s in enumerate(sessions):
        if request["talking"][i]:
            s.play(ToneSource(300 + 37 * i, amplitude=0.1, sample_rate=s.sample_rate,
                              frame_size=s.frame_size))  # fmt: skip
    return sessions


# -- one step ------------------------------------------------------------------------------------
async def _step(
    n: int, codec: str, room_size: int, talkers: int, seconds: float, peer_core: int
) -> dict[str, Any]:
    far_ends.raise_nofile(4 * n + 256)
    sessions = await _open(n, codec)
    talking = [i % room_size < talkers for i in range(n)]
    request = {"targets": [[HOST, s.local_port] for s in sessions], "codec": codec,
               "talking": talking}  # fmt: skip
    peer = await asyncio.to_thread(far_ends.FarEnds, "benchmarks.conference", peer_core, request)
    rooms = [Room(f"bench-{k}") for k in range(math.ceil(n / room_size))]
    try:
        for i, (s, port) in enumerate(zip(sessions, peer.ports, strict=True)):
            s.configure(StreamConfig((HOST, port), PAYLOAD_TYPES[codec], codec))
            s.start()
            rooms[i // room_size].add(s, f"p{i}")
        await asyncio.sleep(WARMUP_S)
        ours0, theirs0 = far_ends.counters(sessions), await asyncio.to_thread(peer.mark)
        ticks0 = sum(r.ticks for r in rooms), sum(r.late_ticks for r in rooms)
        mix0 = sum(r.mix_seconds for r in rooms)
        cpu0, wall0 = far_ends.cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, wall1 = far_ends.cpu_seconds(), time.monotonic()
        ours1, theirs1 = far_ends.counters(sessions), await asyncio.to_thread(peer.mark)
        late_ticks = sum(r.late_ticks for r in rooms) - ticks0[1]
        mix = sum(r.mix_seconds for r in rooms) - mix0
    finally:
        for room in rooms:
            for member in list(room.members.values()):
                room.leave(member)
        for s in sessions:
            await s.close()
        await asyncio.to_thread(peer.stop)
    ours, theirs = far_ends.delta(ours1, ours0), far_ends.delta(theirs1, theirs0)
    wall = wall1 - wall0
    expected = round(n * wall * 50)
    unsent = max(0, expected - ours["sent"])
    ours_late = theirs["late"] + theirs["late_buffer"] + theirs["lost"] + ours["skipped"] + unsent
    theirs_late = ours["late"] + ours["late_buffer"] + ours["lost"]
    late_percent = 100.0 * (ours_late + theirs_late) / (2 * expected) if expected else 100.0
    return {
        "participants": n,
        "late_percent": late_percent,
        "ok": late_percent < 1.0,
        "cpu": (cpu1 - cpu0) / wall,
        "peer_cpu": theirs["cpu_ms"] / 1000 / wall,
        "mix_share": mix / wall,
        "late_ticks": late_ticks,
        "detail": f"to far ends {ours_late} late/lost/unsent, from them {theirs_late}, of {expected} each way",
    }


def _search(codec: str, steps: list[int], args: argparse.Namespace, peer_core: int) -> int:
    best = 0
    for n in steps:
        for _ in range(args.attempts):
            result = run(_step(n, codec, args.room_size, args.talkers, args.seconds, peer_core))
            verdict = "ok" if result["ok"] else "FAIL"
            print(
                f"  {codec:<5} {n:>5} participants  late {result['late_percent']:5.2f}%"
                f"  cpu {result['cpu']:4.2f} (mixing {result['mix_share']:4.2f},"
                f" peer {result['peer_cpu']:4.2f})  {verdict}",
                flush=True,
            )
            if not result["ok"]:
                print(f"        {result['detail']}", flush=True)
            if result["ok"]:
                break
        if not result["ok"]:
            break
        best = n
    return best


def mixer_alone(room_size: int, talkers: int, ticks: int = 500) -> float:
    """Participants per core if mixing were all: time `ticks` mixes of one room of
    `room_size` (with `talkers` talking) and scale to 20 ms."""
    rng = np.random.default_rng(7)
    mixer: Mixer[int] = Mixer(FRAME)
    for i in range(room_size):
        mixer.add(i)
    loud = [(rng.standard_normal(FRAME) * 3000).astype(np.int16) for _ in range(talkers)]
    quiet = (rng.standard_normal(FRAME) * 2).astype(np.int16)
    frames = {i: (loud[i] if i < talkers else quiet) for i in range(room_size)}
    started = time.process_time()
    for _ in range(ticks):
        result = mixer.mix(frames)
        for i in range(room_size):
            result.for_(i)
    per_tick = (time.process_time() - started) / ticks
    return room_size * 0.020 / per_tick if per_tick > 0 else math.inf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conference", description=__doc__)
    parser.add_argument("--steps", default="20,50,100,150,200,250,300,400,500,600")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement window per step")
    parser.add_argument("--room-size", type=int, default=10, help="participants per room")
    parser.add_argument("--talkers", type=int, default=2, help="talking at once in each room")
    parser.add_argument("--codecs", default="PCMU,opus")
    parser.add_argument("--attempts", type=int, default=2, help="runs per step (best counts)")
    parser.add_argument("--peer", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer is not None:
        run(far_ends.serve_far_ends(args.peer, _far_ends))
        return 0
    register_opus()
    cores = far_ends.cores_by_idleness()
    far_ends.pin(cores[0])
    peer_core = cores[1] if len(cores) > 1 else cores[0]
    codecs = [c for c in args.codecs.split(",") if c != "opus" or opus_available()]
    print(
        f"conference benchmark: rooms of {args.room_size}, {args.talkers} talking in each,"
        f" 20 ms frames, {args.seconds:g} s per step, one core (cpu {cores[0]}, far ends on"
        f" cpu {peer_core}) ({platform.python_implementation()} {platform.python_version()},"
        f" {os.cpu_count()} cores)",
        flush=True,
    )
    steps = [int(s) for s in args.steps.split(",")]
    found = {codec: _search(codec, steps, args, peer_core) for codec in codecs}
    alone = mixer_alone(args.room_size, args.talkers)
    print()
    print(f"{'':<34}{'participants per core (<1% late)':>34}")
    for codec, n in found.items():
        print(f"{'sipline, full pipeline, ' + codec:<34}{n:>34}")
    print(f"{'the mixer alone (numpy, no I/O)':<34}{round(alone):>34}")
    print(
        "(the full pipeline: RTP in and out, a jitter buffer and a decoder per participant,"
        " one encode per codec for the listeners of the full mix, one per talker)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
