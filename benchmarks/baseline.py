"""The target "no workload slower than before": this run's figures against those of an
earlier run kept in a JSON file (`--baseline`, default benchmarks/baseline.json).

Each figure is sipline's rate over its peer's (`report.ratio`: Kamailio for (a), (b),
(c), (f); for (d) sipline's (b) over the sippy B2BUA), so that a slower or busier machine
moves both sides alike; for (p), which has no peer, the INVITEs/s themselves ("p" with
the C accelerator, "p pure" without), meaningful on the same machine only. A figure that
fell by more than `TOLERANCE` is flagged as slower; (e) is memory, not speed, and is not
kept. `--write-baseline` saves this run's figures over the file's, keeping the file's
figures for workloads this run did not measure.

A figure also records its run's steps ("steps": "quick" or "full"): a quick run's 5 s
steps let a slow server pass rates a full run's 20 s steps do not (the sippy B2BUA
passes 100 calls/s for 5 s, 18 over 20 s), so figures of the two kinds are shown side
by side but never judged slower.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.report import PEER, ratio
from benchmarks.workloads import Result

__all__ = ["DEFAULT", "TOLERANCE", "compare", "figures", "load", "save"]

DEFAULT = Path(__file__).resolve().parent / "baseline.json"
TOLERANCE = 0.10  # run-to-run noise of a full run is some 5-10%
_P_ROWS = {"sipline": "p", "sipline pure": "p pure"}


def figures(results: list[Result]) -> dict[str, float]:
    """This run's figures, by key ("a".."f" but "e", "p", "p pure")."""
    out: dict[str, float] = {}
    for w in PEER:
        q = ratio(results, w)
        if q is not None:
            out[w] = q
    for r in results:
        if r.workload == "p" and r.server in _P_ROWS and r.rate:
            out[_P_ROWS[r.server]] = r.rate
    return out


def _num(key: str, value: float) -> str:
    return f"{value:,.0f}" if key.startswith("p") else f"{value:#.3g}"


def _what(key: str) -> str:
    if key.startswith("p"):
        return f"({key}) INVITE/s"
    return f"({key}) sipline/{PEER[key]}"


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc.get("ratios"), dict):
        raise ValueError(f'{path}: no "ratios" object')
    return doc


def _steps(quick: bool | None) -> str | None:
    return None if quick is None else "quick" if quick else "full"


def compare(
    results: list[Result], doc: dict[str, Any], quick: bool | None = None
) -> tuple[list[str], list[str]]:
    """Lines saying, per figure measured in both, this run's against the baseline's; and
    the keys of those that fell by more than TOLERANCE (only between runs of the same
    steps, when both say which: `quick`, this run's)."""
    now, before = figures(results), doc["ratios"]
    kinds: dict[str, str] = doc.get("steps") or {}
    steps = _steps(quick)
    lines, slower = [], []
    for key, value in now.items():
        if key not in before or not before[key]:
            lines.append(f"  {_what(key)} {_num(key, value)}: not in the baseline")
            continue
        change = value / before[key]
        kind = kinds.get(key)
        if steps is not None and kind is not None and kind != steps and not key.startswith("p"):
            lines.append(
                f"  {_what(key)} {_num(key, value)}, baseline {_num(key, before[key])}:"
                f" {change:.2f}x, not judged (the baseline's is a {kind} run's, this a"
                f" {steps} run's)"
            )
            continue
        fell = change < 1 - TOLERANCE
        if fell:
            slower.append(key)
        verdict = (
            f"SLOWER (fell {100 * (1 - change):.0f}%, more than {100 * TOLERANCE:.0f}%)"
            if fell
            else "not slower"
        )
        lines.append(
            f"  {_what(key)} {_num(key, value)}, baseline {_num(key, before[key])}:"
            f" {change:.2f}x, {verdict}"
        )
    return lines, slower


def save(
    path: Path, results: list[Result], source: str, quick: bool | None = None
) -> dict[str, float]:
    """Write this run's figures to `path`, over those of the same workloads already
    there (with `quick`, the kind of steps they came from); returns what was written."""
    doc: dict[str, Any] = {"ratios": {}, "sources": {}}
    if path.exists():
        doc = load(path)
        doc.setdefault("sources", {})
    now = figures(results)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    steps = _steps(quick)
    for key, value in now.items():
        doc["ratios"][key] = round(value, 4)
        doc["sources"][key] = f"{source}, {stamp}"
        if steps is not None:
            doc.setdefault("steps", {})[key] = steps
    doc["about"] = (
        "Figures of `python -m benchmarks --baseline`: sipline's rate over its peer's per"
        " workload ((d): sipline's (b) over the sippy B2BUA's), and for (p) INVITE/s through"
        " the parser's proxy path (same machine only)."
    )
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return now
