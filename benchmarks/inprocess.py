"""The in-process benchmarks as part of `python -m benchmarks`: workload (p), the parser's
proxy path in INVITE messages/s (`benchmarks.parser`, with the C accelerator and in pure
Python), and, for each target not met, what stands in the way of it: a short profile of
the same work in one process, the functions with the most own time (pstats' tottime),
with the CPU per call split by stage for the calls (`benchmarks.proxy_path`).

Each runs as a subprocess of this interpreter (`SIPLINE_PURE=1` in its environment for
pure Python: `sipline.accel` reads it once, at import), so the suite's own process is
never the one measured or profiled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks.workloads import Result

__all__ = ["WHY", "accelerated", "parser_workload", "why"]

ROOT = Path(__file__).resolve().parent.parent
TOP = 12
PURE = "sipline pure"  # workload (p)'s row with the pure-Python scanners
# For each target (report.unmet's keys): what to run, as `python -m ...` arguments, and
# whether in pure Python. Each takes some 5-20 s on the 2-core development machine.
WHY: dict[str, tuple[list[str], bool]] = {
    "a": (["benchmarks.proxy_path", "--register", "--calls", "600"], False),
    "b": (["benchmarks.proxy_path", "--calls", "600"], False),
    "c": (["benchmarks.proxy_path", "--options", "--calls", "5000"], False),
    "f": (["benchmarks.proxy_path", "--auth", "--calls", "400"], False),
    "p": (["benchmarks.parser", "--only", "sipline", "--profile", "20000"], False),
    "p pure": (["benchmarks.parser", "--only", "sipline", "--profile", "10000"], True),
}


def _env(pure: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SIPLINE_PURE", None)
    if pure:
        env["SIPLINE_PURE"] = "1"
    return env


def _python(args: list[str], pure: bool, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in a subprocess of this interpreter, at the repository's root."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_env(pure),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def accelerated() -> bool:
    """Whether sipline's C accelerator is built (and not turned off by SIPLINE_PURE)."""
    done = _python(["-c", "import sipline.accel as a; print(a.ACCELERATED)"], False, 30)
    return done.stdout.strip() == "True"


def _parser_row(server: str, pure: bool, quick: bool) -> Result:
    args = ["benchmarks.parser", "--only", "sipline", "--json"]
    if quick:
        args += ["--rounds", "3"]
    result = Result("p", server, workers=None)
    try:
        done = _python(["-m", *args], pure, 120)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1:] or done.returncode)
        [row] = [r for r in json.loads(done.stdout) if r["implementation"] == "sipline"]
    except (OSError, ValueError, RuntimeError, subprocess.TimeoutExpired) as exc:
        result.notes.append(f"error: benchmarks.parser: {exc}")
        return result
    result.rate = row["invite_per_s"]
    result.cpu_s_per_1000 = 1000 / row["invite_per_s"]  # one thread on one core
    result.extra.update(
        accelerated=not pure,
        response_per_s=row["response_per_s"],
        parse_only_per_s=row["parse_only_per_s"],
    )
    return result


def parser_workload(quick: bool) -> list[Result]:
    """Workload (p): `benchmarks.parser --only sipline --json` with the C accelerator and
    with SIPLINE_PURE=1; only the latter, said so, when the accelerator is not built."""
    if accelerated():
        print("  p: with the C accelerator", flush=True)
        rows = [_parser_row("sipline", False, quick)]
    else:
        print("  p: the C accelerator is not built: pure Python only", flush=True)
        rows = []
    print("  p: pure Python (SIPLINE_PURE=1)", flush=True)
    rows.append(_parser_row(PURE, True, quick))
    if len(rows) == 1:
        rows[0].notes.append("the C accelerator is not built: pure Python only")
    return rows


def _indent(text: str) -> list[str]:
    text = text.replace(f"{ROOT}/", "")  # pstats' full paths, shorter
    return ["    " + line if line else "" for line in text.strip("\n").splitlines()]


def why(unmet: list[str], top: int = TOP) -> Iterator[str]:
    """For each key of `unmet` (report.unmet), the lines of its profile: run
    `python -m ARGS --top N` in a subprocess and pass its output on, indented."""
    for key in unmet:
        if key not in WHY:
            continue
        args, pure = WHY[key]
        args = [*args, "--top", str(top)]
        shown = ("SIPLINE_PURE=1 " if pure else "") + "python -m " + " ".join(args)
        yield f"({key}) what stands in the way: {shown}"
        try:
            done = _python(["-m", *args], pure, 90)
        except (OSError, subprocess.TimeoutExpired) as exc:
            yield f"    failed: {exc}"
            continue
        if done.returncode != 0:
            yield f"    failed (exit {done.returncode}):"
            yield from _indent(done.stderr[-2000:])
            continue
        yield from _indent(done.stdout)
