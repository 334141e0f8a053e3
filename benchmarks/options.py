"""OPTIONS answered per second over UDP: `sipline serve` beside a minimal raw-socket
Python responder (the ceiling for Python here), SIPp as the client, in one run.

Each server gets the highest rate at which SIPp sees zero failed transactions over the
window (rate doubled until a run fails, then bisected). Run with
``python -m benchmarks.options`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.processes import HOST, Server, free_port, sipline_serve
from benchmarks.sipp_load import Measurement, ProcessMeter, StepResult, find_max_rate, run_sipp

SCENARIO = Path(__file__).parent.parent / "tests" / "data" / "sipp" / "options_uac.xml"


def measure(server: Server, port: int, seconds: float, start: int, limit: int) -> StepResult:
    meter = ProcessMeter(server.pids)

    def at(rate: int) -> Measurement:
        m = run_sipp(f"{HOST}:{port}", SCENARIO, rate=rate, seconds=seconds, meter=meter)
        verdict = "ok" if m.ok else f"FAILED {m.failed}"
        print(
            f"  {server.name:<14} {rate:>7,}/s  {m.successful:>8,} answered  {verdict:<12}"
            f" cpu {m.cpu_s_per_1000:6.3f} s/1000  retrans {m.retransmissions}",
            flush=True,
        )
        return m

    # Let a failed step's retransmissions and transactions drain before the next.
    return find_max_rate(at, start=start, limit=limit, settle=lambda: time.sleep(3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="window per step (s)")
    parser.add_argument("--start", type=int, default=2000, help="first rate tried (/s)")
    parser.add_argument("--limit", type=int, default=64000, help="highest rate tried (/s)")
    args = parser.parse_args(argv)

    results: dict[str, tuple[StepResult, int]] = {}
    with tempfile.TemporaryDirectory(prefix="sipline-options-") as tmp:
        port = free_port()
        raw = Server(
            "raw responder",
            [sys.executable, "-m", "benchmarks.raw_responder", str(port)],
            "ready",
            cwd=Path(__file__).parent.parent,
        )
        raw.wait_ready()
        try:
            results["raw responder"] = (
                measure(raw, port, args.seconds, args.start, args.limit),
                ProcessMeter(raw.pids).peak_rss_kib(),
            )
        finally:
            raw.stop()
        port = free_port()
        serve = sipline_serve(Path(tmp) / "serve", port)
        serve.name = "sipline serve"
        try:
            results["sipline serve"] = (
                measure(serve, port, args.seconds, args.start, args.limit),
                ProcessMeter(serve.pids).peak_rss_kib(),
            )
        finally:
            serve.stop()

    print()
    print(
        f"OPTIONS over UDP, SIPp client, {args.seconds:g} s per step, zero failures;"
        f" {platform.python_implementation()} {platform.python_version()},"
        f" {platform.machine()}, {os.cpu_count()} cores"
    )
    print(f"{'server':<16}{'OPTIONS/s':>12}{'CPU s/1000':>12}{'peak RSS':>12}")
    for name, (res, rss) in results.items():
        best = res.best
        rate = f"{best.rate:,}" if best else "none"
        cpu = f"{best.cpu_s_per_1000:.3f}" if best else "-"
        print(f"{name:<16}{rate:>12}{cpu:>12}{rss / 1024:>10.1f} MB")
    raw_best, ours = results["raw responder"][0].best, results["sipline serve"][0].best
    if raw_best and ours:
        ratio = ours.rate / raw_best.rate
        print(
            f"\nsipline / raw responder: {ratio:.2f}  (target >= 0.60: {'met' if ratio >= 0.6 else 'NOT met'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
