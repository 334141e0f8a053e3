"""`python -m benchmarks.defences`: what the Internet-facing defences cost.

sipline's registrations/s (workload a of `python -m benchmarks`) and calls/s (b), each
measured with the defences on and off in the same run, one after the other on the same
machine, and the ratio on/off. "On" is flood control counting every message of the
load (SIPp's address is not exempt here, as this host's loopback address is by
default, and the limit is set past anything the run sends, so what is measured is the
per-message cost, not a ban); "off" is `[security] flood_control = false`. The TCP/TLS
limits (message deadline, per-address cap) cost nothing on this UDP load.

Beside the rates (which vary from run to run by more than the defences cost on a
shared machine: --quick, short steps, is noisier still), the server's CPU seconds per
1,000 at the best passing step, and the guard's own cost per message measured in
isolation (`admit` for every message, the User-Agent check for every request).

Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import servers, workloads
from benchmarks.harness import sipp_binary
from benchmarks.workloads import WORKLOADS, Options, Result
from sipline.core.message import Request, parse_message
from sipline.runtime.flood import FloodConfig, FloodGuard

__all__ = ["main"]

RUN = {"a": workloads.registrations, "b": workloads.calls}
UNITS = {"a": "reg/s", "b": "calls/s"}


def measure(w: str, defences: bool, root: Path, db: Path, opts: Options, workers: int) -> Result:
    label = "on" if defences else "off"
    print(f"\n({w}) {WORKLOADS[w]}: defences {label}", flush=True)
    workdir = root / f"{w}-{label}"
    try:
        with servers.sipline(workdir, db, workers=workers, defences=defences) as s:
            return RUN[w](s, opts, workdir)
    except (RuntimeError, OSError) as exc:
        print(f"  {w} {label}: ERROR {exc}", flush=True)
        return Result(w, f"sipline ({label})", notes=[f"error: {exc}"])


def guard_cost_ns(n: int = 1_000_000) -> tuple[float, float]:
    """Nanoseconds per `admit` (1,000 sources taking turns, none over the limit) and per
    User-Agent check of a parsed REGISTER."""
    guard = FloodGuard(FloodConfig(max_requests=10**9, exempt=()))
    guard.tick(0.0)
    sources = [(f"10.0.{i // 250}.{i % 250}", 5060) for i in range(1000)]
    data = b"REGISTER sip:example.com SIP/2.0\r\n"
    started = time.perf_counter()
    for i in range(n):
        guard.admit(sources[i % 1000], data)
    admit = (time.perf_counter() - started) / n * 1e9
    msg = parse_message(
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
        b"From: <sip:u@example.com>;tag=1\r\nTo: <sip:u@example.com>\r\nCall-ID: c\r\n"
        b"CSeq: 1 REGISTER\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert isinstance(msg, Request)
    m = n // 10
    started = time.perf_counter()
    for _ in range(m):
        guard.refuse_scanner(msg, ("10.0.0.1", 5060))
    scanner = (time.perf_counter() - started) / m * 1e9
    return admit, scanner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.defences",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short steps, one refinement")
    parser.add_argument("--only", default="a,b", help="workloads among a,b (default both)")
    parser.add_argument("--duration", type=float, help="seconds per step (default 20, quick 5)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--refine", type=int, help="bisections (default 4, quick 1)")
    parser.add_argument("--max-sipp", type=int, default=3)
    args = parser.parse_args(argv)
    selected = [w.strip() for w in args.only.split(",") if w.strip()]
    for w in selected:
        if w not in RUN:
            parser.error(f"--only: {w!r} is not one of a, b")
    sipp_binary()
    duration = args.duration or (5.0 if args.quick else 20.0)
    opts = Options(
        duration=duration,
        factor=2.0,
        refine=args.refine if args.refine is not None else (1 if args.quick else 4),
        settle_s=1.5 if args.quick else 4.0,
        max_sipp=max(1, args.max_sipp),
    )
    admit_ns, scanner_ns = guard_cost_ns()
    print(
        f"flood guard alone: {admit_ns:.0f} ns per message (admit),"
        f" {scanner_ns:.0f} ns per request (User-Agent check)",
        flush=True,
    )
    rows: list[tuple[str, Result, Result]] = []
    with tempfile.TemporaryDirectory(prefix="sipline-defences-") as tmp:
        root = Path(tmp)
        db = root / "template.db"
        servers.provision_sipline(db, workloads.accounts(opts.max_sipp))
        for w in selected:
            on = measure(w, True, root, db, opts, args.workers)
            off = measure(w, False, root, db, opts, args.workers)
            rows.append((w, on, off))
    print(f"\nsipline x{args.workers}, {duration:g} s steps{' (quick)' if args.quick else ''}")
    print(
        f"{'workload':<58} {'defences on':>14} {'off':>14} {'on/off':>7}"
        f" {'CPU s/1000 on':>14} {'off':>6}"
    )
    failed = False
    for w, on, off in rows:
        unit = UNITS[w]
        ratio = f"{on.rate / off.rate:.2f}" if on.rate and off.rate else "-"
        failed |= not (on.rate and off.rate)
        cells = [f"{r.rate:,.0f} {unit}" if r.rate else "none passed" for r in (on, off)]
        cpu = [f"{r.cpu_s_per_1000:.3f}" if r.cpu_s_per_1000 else "-" for r in (on, off)]
        print(
            f"({w}) {WORKLOADS[w]:<54} {cells[0]:>14} {cells[1]:>14} {ratio:>7}"
            f" {cpu[0]:>14} {cpu[1]:>6}"
        )
    print(f"flood guard alone: {admit_ns:.0f} ns per message, {scanner_ns:.0f} ns per request")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
