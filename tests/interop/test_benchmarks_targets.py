"""What `python -m benchmarks` says of the issue's targets, from synthetic results (no
server runs): (b) and (c) against Kamailio, (p) the parser's proxy path with and without
the C accelerator, each met or not, and this run against a baseline. Then the in-process
benchmarks the run profiles a target not met with, each as small as it goes: OPTIONS to
the server itself (`proxy_path --options`) and the profiled parser (`--top`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import baseline, transaction_path  # noqa: E402  # the repository root, not an installed package
from benchmarks.report import markdown, ratio, targets, text_table, unmet  # noqa: E402
from benchmarks.workloads import Options, Result  # noqa: E402


def _run(*rows: tuple[str, str, int, float]) -> list[Result]:
    return [Result(w, server, workers=n, rate=rate) for w, server, n, rate in rows]


def _parser(c: float | None, pure: float) -> list[Result]:
    rows = [Result("p", "sipline pure", rate=pure, extra={"accelerated": False})]
    if c is not None:
        rows.insert(0, Result("p", "sipline", rate=c, extra={"accelerated": True}))
    return rows


def test_targets_met() -> None:
    results = _run(
        ("b", "sipline", 2, 5_000), ("b", "kamailio", 2, 9_600),
        ("c", "sipline", 2, 56_000), ("c", "kamailio", 2, 64_000),
    ) + _parser(160_000, 65_000)  # fmt: skip
    assert targets(results) == [
        "(b) sipline x2: 0.52x kamailio x2's calls/s (target >= 0.5: met)",
        "(c) sipline x2: 0.88x kamailio x2's OPTIONS/s (target >= 0.8: met)",
        "(p) parser proxy path with the C accelerator: 160,000 INVITE/s (target >= 150,000: met)",
        "(p) parser proxy path in pure Python: 65,000 INVITE/s (target >= 60,000: met)",
    ]
    assert unmet(results) == []
    results[3].notes.append("no step failed up to the ceiling (64,000/s): a floor, not the maximum")
    assert targets(results)[1] == (
        "(c) sipline x2: 0.88x kamailio x2's OPTIONS/s, a rate at the --max-rate ceiling"
        " (target >= 0.8: met)"
    )


def test_targets_not_met_and_not_measured() -> None:
    results = _run(
        ("b", "sipline", 2, 300), ("b", "kamailio", 2, 9_600),
        ("c", "sipline", 2, 32_000), ("c", "kamailio", 2, 64_000),
    ) + _parser(51_850, 41_541)  # fmt: skip
    assert targets(results) == [
        "(b) sipline x2: 0.03x kamailio x2's calls/s (target >= 0.5: NOT met)",
        "(c) sipline x2: 0.50x kamailio x2's OPTIONS/s (target >= 0.8: NOT met)",
        "(p) parser proxy path with the C accelerator: 51,850 INVITE/s (target >= 150,000: NOT met)",
        "(p) parser proxy path in pure Python: 41,541 INVITE/s (target >= 60,000: NOT met)",
    ]
    assert unmet(results) == ["b", "c", "p", "p pure"]
    # Not measured: no Kamailio row, no accelerator, a failed run.
    partial = _run(("b", "sipline", 2, 300), ("c", "kamailio", 2, 64_000)) + _parser(None, 70_000)
    partial.append(Result("c", "sipline", workers=2, notes=["error: refused"]))
    assert targets(partial) == [
        "(p) parser proxy path in pure Python: 70,000 INVITE/s (target >= 60,000: met)"
    ]
    assert unmet(partial) == []
    table = text_table(results)
    assert re.search(r"^\(p\) parser proxy path.*sipline \(C accelerator\)\s+51,850 INVITE/s",
                     table, re.M)  # fmt: skip
    assert re.search(r"^\(p\) .*sipline pure \(pure Python\)\s+41,541 INVITE/s", table, re.M)
    info = dict.fromkeys(("cpu", "cores", "kernel", "python", "sipline", "kamailio", "sipp"), "-")
    opts = Options(duration=5, factor=2, refine=1, settle_s=1, max_sipp=1)
    md = markdown(results, {**info, "sippy": "-"}, opts, True, ("no workload slower: met",))
    assert "| (p) parser proxy path, INVITE/s in one process (no SIPp) | sipline pure" in md
    assert "- (c) sipline x2: 0.50x kamailio x2's OPTIONS/s (target >= 0.8: NOT met)" in md
    assert "- no workload slower: met" in md


def test_baseline_flags_what_fell_more_than_ten_percent(tmp_path: Path) -> None:
    results = _run(
        ("b", "sipline", 2, 600), ("b", "kamailio", 2, 9_600),  # 0.0625: twice the baseline
        ("c", "sipline", 2, 28_000), ("c", "kamailio", 2, 64_000),  # 0.4375: fell 12.5%
        ("f", "sipline", 2, 290), ("f", "kamailio", 2, 4_800),  # fell 3%: noise
    ) + _parser(None, 41_000)  # fmt: skip
    doc = {"ratios": {"b": 0.03125, "c": 0.5, "f": 0.0625, "p pure": 41_701, "a": 0.06}}
    lines, slower = baseline.compare(results, doc)
    assert slower == ["c"]
    assert "  (b) sipline/kamailio 0.0625, baseline 0.0312: 2.00x, not slower" in lines
    assert any(ln.startswith("  (c) sipline/kamailio 0.438, baseline 0.500: 0.88x, SLOWER (fell 12%")
               for ln in lines)  # fmt: skip
    assert "  (p pure) INVITE/s 41,000, baseline 41,701: 0.98x, not slower" in lines
    assert not any(ln.startswith("  (a)") for ln in lines)  # not measured in this run
    # --write-baseline keeps the figures of workloads this run did not measure.
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"ratios": {"a": 0.06, "c": 0.5}}), encoding="utf-8")
    baseline.save(path, results, "test")
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["ratios"] == {"a": 0.06, "b": 0.0625, "c": 0.4375, "f": 0.0604, "p pure": 41_000}
    assert saved["sources"]["c"].startswith("test, ")
    assert ratio(results, "c") == pytest.approx(0.4375)


def test_a_quick_run_is_not_judged_against_a_full_runs_figure(tmp_path: Path) -> None:
    results = _run(("c", "sipline", 2, 20_000), ("c", "kamailio", 2, 64_000))  # fell 37.5%
    doc = {"ratios": {"c": 0.5}, "steps": {"c": "full"}}
    lines, slower = baseline.compare(results, doc, quick=True)
    assert slower == []
    assert lines == [
        "  (c) sipline/kamailio 0.312, baseline 0.500: 0.62x, not judged"
        " (the baseline's is a full run's, this a quick run's)"
    ]
    assert baseline.compare(results, doc, quick=False)[1] == ["c"]
    assert baseline.compare(results, {"ratios": {"c": 0.5}}, quick=True)[1] == ["c"]
    path = tmp_path / "baseline.json"
    baseline.save(path, results, "test", quick=True)
    assert json.loads(path.read_text(encoding="utf-8"))["steps"] == {"c": "quick"}


def test_the_shipped_baseline_holds_the_readme_ratios() -> None:
    doc = baseline.load(baseline.DEFAULT)
    assert set(doc["ratios"]) >= {"a", "b", "c", "d", "f", "p pure"}
    assert set(doc["sources"]) == set(doc["ratios"])


def test_proxy_path_options_answered_statelessly_and_profiled() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.proxy_path", "--options", "--calls", "200",
         "--concurrency", "4", "--top", "5"],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"^200 OPTIONS: \d+ us CPU per OPTIONS", done.stdout, re.M)
    # Stateless: no transaction is made, nothing reaches the proxy's handlers.
    assert re.search(r"^\s+transaction layer \(receive\)\s+0 us", done.stdout, re.M)
    listing = done.stdout.split("The 5 functions with the most own time in that run:\n")[1]
    assert len(listing.strip().splitlines()) == 1 + 5  # a heading, then five functions


def test_parser_profile_lists_top_functions() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.parser", "--only", "sipline", "--profile", "200",
         "--top", "4"],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "due to restriction <4>" in done.stdout


def test_transaction_path_ends_every_transaction_and_counts_calls() -> None:
    layer = transaction_path.TransactionLayer()
    assert transaction_path.run_calls(layer, 0, 50, 1000.0) > 0
    # Every transaction of the 50 calls waits in Completed or Accepted until its timer.
    assert layer.live_count == 50 * 4
    layer.handle_timers(now=1040.0)
    assert layer.live_count == 0
    per_call, _ = transaction_path.function_calls(50)
    assert 100 < per_call < 2000
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.transaction_path", "--calls", "300", "--rounds", "1"],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(r"^300 calls, best of 1: [\d.]+ us CPU per call .* \d+ Python function calls",
                     done.stdout, re.M)  # fmt: skip
