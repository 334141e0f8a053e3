"""`python -m benchmarks`: sipline beside Kamailio and the sippy B2BUA, SIPp as the load,
every server on this machine's loopback, in one run.

Workloads (`--only`):
  a  registrations/s with digest authentication (MD5: all SIPp answers) against 10,000
     provisioned users: REGISTER / 401 / REGISTER with credentials / 200
  b  calls/s through the transaction-stateful proxy: INVITE / 100 / 180 / 200 / ACK /
     BYE / 200 with Record-Route, the callee found by a location lookup (it registered
     with digest authentication first), the caller from outside the domain
  c  OPTIONS to the server itself answered statelessly, per second
  d  the call of (b) through the sippy B2BUA (b2bua_simple), beside sipline's (b)
  e  memory: `sipline serve` with 100,000 registered users, peak RSS
  f  authenticated calls/s: the call of (b) from one of the 10,000 users of the domain,
     INVITE / 407 / ACK, INVITE with credentials (MD5) / 100 / 180 / 200 / ACK / BYE / 200
  p  the parser's proxy path in one process, no SIPp: INVITE/s of `python -m
     benchmarks.parser --only sipline --json`, once with the C accelerator ("sipline") and
     once with SIPLINE_PURE=1 ("sipline pure"; only this one when the accelerator is not
     built); CPU s / 1,000 is 1,000 over that rate (one thread)

(a) and (f) run once per worker count of --workers (default 1 and the number of cores)
and once as --nodes separate `sipline serve` processes of one worker each (default 2,
on 127.0.0.1 and 127.0.0.2, sharing one database; the SIPp processes split between the
nodes); Kamailio runs them with as many UDP children as each sipline row has processes.
The other workloads run sipline with the largest worker count, Kamailio with as many
children (at least 2).

Each figure of a-d and f is the highest rate at which a run of --duration seconds ends
with every call successful, none failed, SIPp done on time and under 1% retransmissions
(a server that drops UDP requests still succeeds through them): the rate doubles until
a run fails, then is bisected between the last pass and the first failure. Beside it:
the server's CPU seconds per 1,000 calls (utime + stime of all its processes over that
run, every worker and node summed, from /proc/PID/stat) and its peak memory (PSS summed
over its processes, sampled each second; VmHWM summed too in --json). When a SIPp
process uses nearly a whole core the load is what limits: the step is tried again with
more SIPp processes (one per node more), and the report says so.

The targets, each printed "met" or "NOT met", left out when not measured:
(a) and (f) at 0.5 of Kamailio's rate, without CPU per call growing with workers or
nodes, and (a) x2 at 1.7x x1; (b) at 0.5 of Kamailio's calls/s; (c) at 0.8 of its
OPTIONS/s; (p) 150,000 INVITE/s with the C accelerator and 60,000 in pure Python. For each
one not met the run then prints what stands in the way (unless --no-why): a short profile
of the same work in one process, the 12 functions with the most own time, run as a
subprocess (benchmarks/inprocess.py): `python -m benchmarks.proxy_path` with --register
for (a), no option for (b) (its CPU per call split by stage too), --options for (c),
--auth for (f), and `python -m benchmarks.parser --only sipline --profile N` for (p),
with SIPLINE_PURE=1 for pure Python. Some 5-20 s each.

"No workload slower than before": --baseline FILE (default benchmarks/baseline.json)
holds sipline's rate over its peer's per workload (for (p) the INVITE/s) of an earlier
run; the run prints its own beside them and flags as SLOWER any that fell by more than
10% (benchmarks/baseline.py). --write-baseline saves this run's figures into that file.

Kamailio (Debian package) runs with benchmarks/kamailio-server.cfg: the same digest
authentication (auth_db over SQLite, db_text without kamailio-sqlite-modules; REGISTER
with www_authorize, out-of-dialog requests from its own domain with proxy_authorize),
Record-Route, an in-memory location service, OPTIONS answered with sl_send_reply,
debug=0, -x tlsf.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import baseline, inprocess, servers, workloads
from benchmarks.harness import free_port, sipp_binary
from benchmarks.report import (
    PEER,
    SCALING,
    markdown,
    ratio,
    scaling,
    targets,
    text_table,
    unmet,
)
from benchmarks.workloads import WORKLOADS, Options, Result
from sipline.testing.postgres import PostgresCluster

__all__ = ["Shape", "machine", "main", "shapes"]

SERVERS = ("sipline", "kamailio", "sippy", "raw")
# Which servers run which workload.
RUNS = {
    "a": ("sipline", "kamailio"),
    "b": ("sipline", "kamailio"),
    "c": ("sipline", "kamailio", "raw"),
    "d": ("sippy",),
    "e": ("sipline",),
    "f": ("sipline", "kamailio"),
    "p": ("sipline",),  # in one process, two rows: with the C accelerator and without
}


@dataclass(frozen=True)
class Shape:
    """How a server runs for one row: `workers` processes per node (Kamailio's UDP
    children), `nodes` separate servers sharing the database (sipline only)."""

    workers: int
    nodes: int = 1


def shapes(w: str, name: str, workers: list[int], nodes: int) -> list[Shape]:
    """The rows of workload `w` for server `name`: (a) and (f) once per worker count and
    once as `nodes` nodes (Kamailio: once per process count among those); the others
    once, with the most workers (Kamailio at least 2 children, as before)."""
    if w in SCALING:
        if name == "sipline":
            return [Shape(n) for n in workers] + ([Shape(1, nodes)] if nodes > 1 else [])
        if name == "kamailio":
            return [Shape(n) for n in sorted({*workers, *([nodes] if nodes > 1 else [])})]
    if name == "kamailio":
        return [Shape(max(2, *workers))]
    return [Shape(max(workers))]


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
def _server(
    name: str, workdir: Path, ctx: dict[str, Any], shape: Shape
) -> Iterator[servers.Running]:
    if name == "sipline" and shape.nodes > 1:
        with servers.sipline_nodes(workdir, ctx["sipline_db"], nodes=shape.nodes) as s:
            yield s
    elif name == "sipline":
        profile = ctx.get("profile") if shape.workers == 1 else None
        with servers.sipline(
            workdir, ctx["sipline_db"], workers=shape.workers, profile=profile
        ) as s:
            yield s
    elif name == "kamailio":
        with servers.kamailio(workdir, ctx["accounts"], children=shape.workers) as s:
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
    workers: list[int] = args.workers
    if max(workers) > 1 and not servers.sipline_supports_workers():
        print("note: `sipline serve` has no --workers yet; sipline runs as one process",
              flush=True)  # fmt: skip
        workers = [1]
    with tempfile.TemporaryDirectory(prefix="sipline-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        ctx: dict[str, Any] = {
            "accounts": workloads.accounts(workloads.slots(opts, args.nodes)),
            "profile_dir": args.profile,
        }
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
        if "sipline" in chosen and any(w in selected for w in "abcf"):
            ctx["sipline_db"] = root / "template.db"
            if args.store == "postgresql":
                # A database of a throwaway cluster (sipline.testing.postgres), shared by
                # every run as a URL is (servers._database).
                cluster = stack.enter_context(PostgresCluster())
                ctx["sipline_db"] = cluster.create_database("bench")
            servers.provision_sipline(ctx["sipline_db"], ctx["accounts"])
        for w in selected:
            if w == "p" and "sipline" in chosen:
                print(f"\n(p) {WORKLOADS['p']}", flush=True)
                started = time.monotonic()
                for result in inprocess.parser_workload(args.quick):
                    result.extra["wall_s"] = round(time.monotonic() - started, 1)
                    results.append(result)
                continue
            for name in RUNS[w]:
                if name not in chosen:
                    continue
                for shape in shapes(w, name, workers, args.nodes):
                    tag = f"{shape.nodes}nodes" if shape.nodes > 1 else f"x{shape.workers}"
                    print(f"\n({w}) {WORKLOADS[w]}: {name} {tag.replace('nodes', ' nodes')}",
                          flush=True)  # fmt: skip
                    workdir = root / f"{w}-{name}-{tag}"
                    workdir.mkdir()
                    started = time.monotonic()
                    try:
                        result = _one(w, name, workdir, ctx, opts, root, shape)
                    except (RuntimeError, OSError) as exc:
                        print(f"  {w} {name}: ERROR {exc}", flush=True)
                        result = Result(w, name, notes=[f"error: {exc}"])
                    if name in ("sipline", "kamailio"):
                        result.workers, result.nodes = shape.workers, shape.nodes
                    result.extra["wall_s"] = round(time.monotonic() - started, 1)
                    results.append(result)
    return results


def _one(
    w: str,
    name: str,
    workdir: Path,
    ctx: dict[str, Any],
    opts: Options,
    root: Path,
    shape: Shape,
) -> Result:
    if w == "d":
        return workloads.b2bua_calls(lambda port: servers.sippy_b2bua(workdir, port), opts, workdir)
    if w == "e":
        db = root / "memory.db"
        port = free_port()
        print(f"  e provisioning {workloads.MEMORY_USERS:,} users with a binding each", flush=True)
        servers.provision_sipline(db, servers.users(workloads.MEMORY_USERS), bindings_port=port)
        with servers.sipline(workdir, db, workers=shape.workers) as s:
            return workloads.memory(s, opts, workdir, port)
    if ctx["profile_dir"] is not None and name == "sipline" and shape == Shape(1):
        ctx["profile"] = ctx["profile_dir"] / f"{w}-sipline-x1.prof"
    else:
        ctx["profile"] = None
    with _server(name, workdir, ctx, shape) as s:
        run_workload = {
            "a": workloads.registrations,
            "b": workloads.calls,
            "c": workloads.options,
            "f": workloads.authenticated_calls,
        }[w]
        result = run_workload(s, opts, workdir)
        result.extra["server"] = s.description
    if ctx["profile"] is not None:
        result.notes.append(f"under cProfile (figures not comparable): {ctx['profile']}")
        _print_profile(ctx["profile"])
    return result


def _print_profile(path: Path, top: int = 25) -> None:
    """The functions with the most own time in a profile of `sipline serve`."""
    import pstats

    if not path.exists():
        print(f"  no profile written at {path}", flush=True)
        return
    print(f"  cProfile of sipline x1 over the whole run, {top} functions by own time ({path}):")
    pstats.Stats(str(path), stream=sys.stdout).sort_stats("tottime").print_stats(top)


def _against_baseline(
    args: argparse.Namespace, results: list[Result]
) -> tuple[list[str], list[str]]:
    """Print this run's figures against the baseline's (a last line saying whether the
    target "no workload slower" is met), save them with --write-baseline; returns the
    lines and the keys of the slower figures."""
    path = args.baseline or (baseline.DEFAULT if baseline.DEFAULT.exists() else None)
    lines: list[str] = []
    slower: list[str] = []
    if path is not None and path.exists():
        try:
            lines, slower = baseline.compare(results, baseline.load(path), args.quick)
        except (OSError, ValueError) as exc:
            print(f"\nbaseline {path}: {exc}")
        else:
            print(f"\nAgainst the baseline ({path}; slower: fell more than"
                  f" {100 * baseline.TOLERANCE:.0f}%):")  # fmt: skip
            if lines:
                verdict = f"NOT met: {', '.join(slower)}" if slower else "met"
                lines.append(f"no workload slower than the baseline: {verdict}")
            for line in lines:
                print(line)
    if args.write_baseline:
        target = path or baseline.DEFAULT
        source = "python -m benchmarks" + (" --quick" if args.quick else "")
        saved = baseline.save(target, results, source, args.quick)
        print(f"baseline: wrote {', '.join(saved) or 'nothing'} to {target}")
    return lines, slower


def _counts(text: str) -> list[int]:
    """--workers 2 or 1,2: distinct counts, each at least 1, in order."""
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"counts of at least 1, e.g. 1,2: {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help="short steps (5 s unless --duration), one refinement: a smoke test")  # fmt: skip
    parser.add_argument("--only", default="a,b,c,d,e,f,p", help="workloads, e.g. a,f (default all)")
    parser.add_argument("--servers", default="sipline,kamailio,sippy",
                        help=f"servers among {','.join(SERVERS)} (default sipline,kamailio,sippy;"
                             " raw is a bare Python OPTIONS responder, for (c))")  # fmt: skip
    parser.add_argument("--duration", type=float, help="seconds per step (default 20, quick 5)")
    cores = os.cpu_count() or 1
    parser.add_argument("--workers", type=_counts, default=sorted({1, cores}), metavar="N[,M...]",
                        help="`sipline serve --workers N`: (a) and (f) run once per count, the"
                             f" others with the largest (default 1,{cores}: one and the number"
                             " of cores); Kamailio gets as many UDP children")  # fmt: skip
    parser.add_argument("--nodes", type=int, default=2, metavar="N",
                        help="(a) and (f) also with N `sipline serve` processes of one worker each"
                             " on 127.0.0.1..127.0.0.N sharing one database (default 2; 1: not)")  # fmt: skip
    parser.add_argument("--refine", type=int,
                        help="bisections after the first failed step (default 4, quick 1)")  # fmt: skip
    parser.add_argument("--max-rate", type=float, default=200_000, metavar="R",
                        help="stop doubling at this rate (a ceiling for smoke tests)")  # fmt: skip
    parser.add_argument("--max-sipp", type=int, default=3,
                        help="most SIPp UAC processes used when one SIPp is the bottleneck")  # fmt: skip
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                        help="sipline's database: a SQLite file (default), or a database of a"
                             " throwaway PostgreSQL cluster (needs its server binaries)")  # fmt: skip
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run sipline's 1-worker rows under cProfile, writing DIR/W-sipline-x1.prof"
                             " and printing the top functions (its figures are then not comparable)")  # fmt: skip
    parser.add_argument("--no-why", dest="why", action="store_false",
                        help="do not profile what stands in the way of each target not met")  # fmt: skip
    parser.add_argument("--baseline", type=Path, metavar="FILE",
                        help="an earlier run's figures to flag slower workloads against"
                             " (default benchmarks/baseline.json if it exists)")  # fmt: skip
    parser.add_argument("--write-baseline", action="store_true",
                        help="save this run's figures into the --baseline file")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write every step and figure to this file")
    parser.add_argument("--markdown", type=Path, help="write the README's table to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= 254:
        parser.error("--nodes: from 1 to 254")

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
        limit=args.max_rate,
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
    kamailio = ("Kamailio gets as many UDP children as the sipline row it is compared with has"
                " processes (its own main, timer and other helper processes besides)")  # fmt: skip
    print(f"workers {','.join(map(str, args.workers))}; nodes {args.nodes}; {kamailio}",
          flush=True)  # fmt: skip
    results = run(selected, chosen, opts, args)
    print("\n" + text_table(results), flush=True)
    goals = targets(results)
    for line in goals:
        print(line)
    for r in results:
        for note in r.notes:
            print(f"({r.workload}) {r.server}: {note}")
    against, slower = _against_baseline(args, results)
    goals += against[-1:]
    if args.why:
        # d's figure is sipline's (b): (b)'s profile is what stands in its way.
        keys = list(dict.fromkeys([*unmet(results), *("b" if k == "d" else k for k in slower)]))
        if keys:
            print("\nWhat stands in the way of each target not met (--no-why skips this):")
        for line in inprocess.why(keys):
            print(line, flush=True)
    if args.json is not None:
        doc = {
            "machine": info,
            "quick": args.quick,
            "duration_s": duration,
            "results": [r.as_dict() for r in results],
            "ratios": {w: ratio(results, w) for w in PEER},
            "scaling": scaling(results),
            "targets": goals,
            "baseline": {"figures": baseline.figures(results), "slower": slower},
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(
            markdown(results, info, opts, args.quick, tuple(against[-1:])), encoding="utf-8"
        )
    failed = [r for r in results if any(n.startswith("error") for n in r.notes)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
