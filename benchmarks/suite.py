"""`python -m benchmarks`: sipline beside Kamailio and the sippy B2BUA, SIPp as the load,
every server on 127.0.0.1 of this machine, in one run.

Workloads (`--only`):
  a  registrations/s with digest authentication (MD5: all SIPp answers) against 10,000
     provisioned users: REGISTER / 401 / REGISTER with credentials / 200
  b  calls/s through the transaction-stateful proxy: INVITE / 100 / 180 / 200 / ACK /
     BYE / 200 with Record-Route, the callee found by a location lookup (it registered
     with digest authentication first)
  c  OPTIONS to the server itself answered statelessly, per second
  d  the call of (b) through the sippy B2BUA (b2bua_simple), beside sipline's (b)
  e  memory: `sipline serve` with 100,000 registered users, peak RSS

Each figure of a-d is the highest rate at which a run of --duration seconds ends with
every call successful, none failed, SIPp done on time and under 1% retransmissions (a
server that drops UDP requests still succeeds through them): the rate doubles until a
run fails, then is bisected between the last pass and the first failure. Beside it: the server's CPU
seconds per 1,000 calls (utime + stime of its process tree over that run, from
/proc/PID/stat) and its peak memory (PSS summed over its processes, sampled each second;
VmHWM summed too in --json). When a SIPp process uses nearly a whole core the load is
what limits: the step is tried again with one more SIPp process, and the report says so.

Kamailio (Debian package) runs with benchmarks/kamailio-server.cfg: the same digest
authentication (auth_db over SQLite, db_text without kamailio-sqlite-modules),
Record-Route, an in-memory location service, OPTIONS answered with sl_send_reply,
debug=0, 2 UDP workers, -x tlsf.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks import servers, workloads
from benchmarks.harness import free_port, sipp_binary
from benchmarks.workloads import WORKLOADS, Options, Result
from sipline.testing.postgres import PostgresCluster

__all__ = ["machine", "main"]

SERVERS = ("sipline", "kamailio", "sippy", "raw")
# Which servers run which workload; the peer each sipline figure is compared with.
RUNS = {
    "a": ("sipline", "kamailio"),
    "b": ("sipline", "kamailio"),
    "c": ("sipline", "kamailio", "raw"),
    "d": ("sippy",),
    "e": ("sipline",),
}
PEER = {"a": "kamailio", "b": "kamailio", "c": "kamailio", "d": "sippy"}
UNITS = {"a": "reg/s", "b": "calls/s", "c": "OPTIONS/s", "d": "calls/s", "e": ""}


def _version(args: list[str], pattern: str) -> str | None:
    try:
        out = subprocess.run(args, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else None


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = _version(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"], r"(\w+)"
    )
    from importlib.metadata import version

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sipline": f"{version('sipline')}" + (f" ({commit})" if commit else ""),
        "kamailio": servers.kamailio_version(),
        "sipp": _version(["sipp", "-v"], r"SIPp v?([\w.\-]+)"),
        "sippy": servers.sippy_version(),
    }


# -- running ----------------------------------------------------------------------------------
@contextmanager
def _server(name: str, workdir: Path, ctx: dict[str, Any]) -> Iterator[servers.Running]:
    if name == "sipline":
        with servers.sipline(
            workdir, ctx["sipline_db"], workers=ctx["workers"], cluster=ctx.get("cluster")
        ) as s:
            yield s
    elif name == "kamailio":
        with servers.kamailio(workdir, ctx["accounts"], children=max(2, ctx["workers"])) as s:
            yield s
    elif name == "raw":
        with servers.raw_responder(workdir) as s:
            yield s
    else:
        raise ValueError(name)


def run(
    selected: list[str], chosen: list[str], opts: Options, args: argparse.Namespace
) -> list[Result]:
    results: list[Result] = []
    workers = 1
    if args.workers > 1:
        if servers.sipline_supports_workers():
            workers = args.workers
        else:
            print(f"note: `sipline serve` has no --workers yet; sipline runs as one process"
                  f" (asked for {args.workers})", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="sipline-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        ctx: dict[str, Any] = {
            "workers": workers,
            "accounts": workloads.accounts(opts.max_sipp),
        }
        if args.store == "postgresql":
            # sipline on a throwaway PostgreSQL cluster (sipline.testing.postgres).
            ctx["cluster"] = stack.enter_context(PostgresCluster())
        if "sipline" in chosen and any(w in selected for w in "abc"):
            ctx["sipline_db"] = root / "template.db"
            if "cluster" in ctx:
                ctx["sipline_db"] = ctx["cluster"].create_database("bench_template")
            servers.provision_sipline(ctx["sipline_db"], ctx["accounts"])
        for w in selected:
            for name in RUNS[w]:
                if name not in chosen:
                    continue
                print(f"\n({w}) {WORKLOADS[w]}: {name}", flush=True)
                workdir = root / f"{w}-{name}"
                workdir.mkdir()
                started = time.monotonic()
                try:
                    result = _one(w, name, workdir, ctx, opts, root)
                except (RuntimeError, OSError) as exc:
                    print(f"  {w} {name}: ERROR {exc}", flush=True)
                    result = Result(w, name, notes=[f"error: {exc}"])
                result.extra["workers"] = workers if name == "sipline" else None
                result.extra["wall_s"] = round(time.monotonic() - started, 1)
                results.append(result)
    return results


def _one(
    w: str, name: str, workdir: Path, ctx: dict[str, Any], opts: Options, root: Path
) -> Result:
    if w == "d":
        return workloads.b2bua_calls(lambda port: servers.sippy_b2bua(workdir, port), opts, workdir)
    if w == "e":
        db = root / "memory.db"
        port = free_port()
        print(f"  e provisioning {workloads.MEMORY_USERS:,} users with a binding each", flush=True)
        servers.provision_sipline(db, servers.users(workloads.MEMORY_USERS), bindings_port=port)
        with servers.sipline(workdir, db, workers=ctx["workers"]) as s:
            return workloads.memory(s, opts, workdir, port)
    with _server(name, workdir, ctx) as s:
        run_workload = {"a": workloads.registrations, "b": workloads.calls, "c": workloads.options}[
            w
        ]
        result = run_workload(s, opts, workdir)
        result.extra["server"] = s.description
        return result


# -- reporting --------------------------------------------------------------------------------
def _find(results: list[Result], w: str, server: str) -> Result | None:
    for r in results:
        if r.workload == w and r.server == server:
            return r
    return None


def ratio(results: list[Result], w: str) -> float | None:
    ours = _find(results, "b" if w == "d" else w, "sipline")
    theirs = _find(results, w, PEER[w]) if w in PEER else None
    if ours and theirs and ours.rate and theirs.rate:
        return ours.rate / theirs.rate
    return None


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def rows(results: list[Result]) -> list[list[str]]:
    table = []
    for r in results:
        if r.workload == "e":
            extra = r.extra
            each = ", ".join(
                f"{p['role']} {p['peak_rss_mb']:.0f}" for p in extra.get("processes", [])
            )
            table.append([
                f"(e) {WORKLOADS['e']}", r.server, "-", "-",
                f"{_num(r.peak_vmhwm_mb, '.1f')} MB peak RSS (VmHWM summed{': ' + each if each else ''})"
                f" (target < {extra.get('target_mb')} MB: {'met' if extra.get('target_met') else 'NOT met'});"
                f" {_num(r.peak_pss_mb, '.1f')} MB peak PSS",
                "1", "-",
            ])  # fmt: skip
            continue
        q = ratio(results, r.workload) if r.server in ("sipline", PEER.get(r.workload)) else None
        label = f"({r.workload}) {WORKLOADS[r.workload]}"
        sipp = str(r.sipp_processes) + (
            " (SIPp was the bottleneck)" if r.notes and any("SIPp" in n for n in r.notes) else ""
        )
        table.append([
            label,
            r.server + (f" x{r.extra['workers']}" if r.extra.get("workers", 1) not in (None, 1) else ""),
            f"{_num(r.rate)} {UNITS[r.workload]}" if r.rate else ("ERROR" if any(n.startswith("error") for n in r.notes) else "none passed"),
            _num(r.cpu_s_per_1000, ".3f"),
            f"{_num(r.peak_pss_mb, '.1f')} MB",
            sipp,
            "-" if q is None or r.server != PEER.get(r.workload) else f"{q:.2f}",
        ])  # fmt: skip
    return table


HEADER = ["workload", "server", "max rate, 0 failed", "CPU s / 1,000", "peak memory (PSS)",
          "SIPp processes", "ratio sipline/peer"]  # fmt: skip


def text_table(results: list[Result]) -> str:
    table = [HEADER, *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in table
    )


def markdown(results: list[Result], info: dict[str, Any], opts: Options, quick: bool) -> str:
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, {info['python']};"
        f" sipline {info['sipline']}, Kamailio {info['kamailio'] or '-'}, SIPp {info['sipp'] or '-'},"
        f" sippy {info['sippy'] or '-'}.",
        f"Steps of {opts.duration:g} s{' (--quick: short steps, one refinement; noisy)' if quick else ''};"
        " the ratio is sipline's figure over the peer's (for (d), sipline's proxy calls of (b)"
        " over the sippy B2BUA's).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    notes = [f"({r.workload}) {r.server}: {n}" for r in results for n in r.notes]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help="short steps (5 s unless --duration), one refinement: a smoke test")  # fmt: skip
    parser.add_argument("--only", default="a,b,c,d,e", help="workloads, e.g. a,c (default all)")
    parser.add_argument("--servers", default="sipline,kamailio,sippy",
                        help=f"servers among {','.join(SERVERS)} (default sipline,kamailio,sippy;"
                             " raw is a bare Python OPTIONS responder, for (c))")  # fmt: skip
    parser.add_argument("--duration", type=float, help="seconds per step (default 20, quick 5)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="`sipline serve --workers N` (default: the number of cores, as serve's;"
                             " Kamailio gets as many UDP workers, at least 2)")  # fmt: skip
    parser.add_argument("--refine", type=int,
                        help="bisections after the first failed step (default 4, quick 1)")  # fmt: skip
    parser.add_argument("--max-sipp", type=int, default=3,
                        help="most SIPp UAC processes used when one SIPp is the bottleneck")  # fmt: skip
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                        help="sipline's database: a SQLite file (default), or a database of a"
                             " throwaway PostgreSQL cluster (needs its server binaries)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every step and figure to this file")
    parser.add_argument("--markdown", type=Path, help="write the README's table to this file")
    args = parser.parse_args(argv)

    selected = [w.strip() for w in args.only.split(",") if w.strip()]
    chosen = [s.strip() for s in args.servers.split(",") if s.strip()]
    for w in selected:
        if w not in WORKLOADS:
            parser.error(f"--only: unknown workload {w!r} (choose from {','.join(WORKLOADS)})")
    for s in chosen:
        if s not in SERVERS:
            parser.error(f"--servers: unknown server {s!r} (choose from {','.join(SERVERS)})")
    sipp_binary()
    duration = args.duration or (5.0 if args.quick else 20.0)
    opts = Options(
        duration=duration,
        factor=2.0,
        refine=args.refine if args.refine is not None else (1 if args.quick else 4),
        settle_s=1.5 if args.quick else 4.0,
        max_sipp=max(1, args.max_sipp),
        memory_sample=2_000 if args.quick else 20_000,
    )
    info = machine()
    print(
        f"{info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, {info['python']};"
        f" Kamailio {info['kamailio']}, SIPp {info['sipp']}, sippy {info['sippy']}\n"
        f"{duration:g} s per step{' (quick)' if args.quick else ''}; workloads {','.join(selected)};"
        f" servers {','.join(chosen)}",
        flush=True,
    )
    results = run(selected, chosen, opts, args)
    print("\n" + text_table(results), flush=True)
    for r in results:
        for note in r.notes:
            print(f"({r.workload}) {r.server}: {note}")
    if args.json is not None:
        doc = {
            "machine": info,
            "quick": args.quick,
            "duration_s": duration,
            "results": [r.as_dict() for r in results],
            "ratios": {w: ratio(results, w) for w in PEER},
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(markdown(results, info, opts, args.quick), encoding="utf-8")
    failed = [r for r in results if any(n.startswith("error") for n in r.notes)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
