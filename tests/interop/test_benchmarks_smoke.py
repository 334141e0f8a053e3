"""`python -m benchmarks` end to end, as small as it goes: workload (c), sipline alone,
1 s steps, with (p), the parser in one process, and the profile of what stands in the
way of its targets; workload (f) against sipline as one process and as two nodes and
against Kamailio, one 1 s step each. It checks the run reports figures, not what they are
(timed tests quote none), and that both servers really challenge and verify callers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from interop_helpers import need

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.serial]

ROOT = Path(__file__).resolve().parents[2]


def test_quick_options_run_reports_figures(tmp_path: Path) -> None:
    need("sipp")
    report, table = tmp_path / "report.json", tmp_path / "table.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "c,p", "--servers", "sipline",
         "--duration", "1", "--json", str(report), "--markdown", str(table)],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=110,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads(report.read_text(encoding="utf-8"))
    assert doc["quick"] is True
    assert doc["machine"]["cores"] >= 1
    assert doc["machine"]["sipp"]
    [result, *parsers] = doc["results"]
    assert (result["workload"], result["server"]) == ("c", "sipline")
    assert result["rate"] > 0
    assert 0 < result["cpu_s_per_1000"] < 100
    assert result["peak_pss_mb"] > 1
    assert result["peak_vmhwm_mb"] > 1
    assert any(step["ok"] for step in result["steps"])
    assert "OPTIONS/s answered statelessly" in done.stdout
    markdown = table.read_text(encoding="utf-8")
    # "sipline x2" when serve runs two workers
    assert re.search(
        r"^\| \(c\) OPTIONS/s answered statelessly \| sipline( x\d+)? \|", markdown, re.M
    )
    assert "Machine:" in markdown
    # (p): pure Python always, the C accelerator when built; INVITE/s against the targets.
    assert [(p["workload"], p["server"]) for p in parsers][-1] == ("p", "sipline pure")
    assert all(p["rate"] > 1000 for p in parsers)
    assert re.search(r"^\(p\) parser proxy path in pure Python: [\d,]+ INVITE/s \(target >= "
                     r"60,000: (met|NOT met)\)$", done.stdout, re.M)  # fmt: skip
    assert "(p pure) INVITE/s" in done.stdout  # against benchmarks/baseline.json
    if re.search(r"pure Python: .*NOT met\)$", done.stdout, re.M):
        assert "(p pure) what stands in the way: SIPLINE_PURE=1 python -m benchmarks.parser" in (
            done.stdout
        )
        assert "Ordered by: internal time" in done.stdout


def test_quick_authenticated_calls_with_nodes_beside_kamailio(tmp_path: Path) -> None:
    need("sipp")
    need("kamailio")
    report, table = tmp_path / "report.json", tmp_path / "table.md"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "f",
         "--servers", "sipline,kamailio", "--workers", "1", "--nodes", "2",
         "--duration", "1", "--refine", "0", "--max-rate", "100", "--max-sipp", "1", "--no-why",
         "--json", str(report), "--markdown", str(table)],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=150,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads(report.read_text(encoding="utf-8"))
    rows = {(r["server"], r["workers"], r["nodes"]): r for r in doc["results"]}
    assert set(rows) == {
        ("sipline", 1, 1),
        ("sipline", 1, 2),
        ("kamailio", 1, 1),
        ("kamailio", 2, 1),
    }
    for result in rows.values():
        assert result["workload"] == "f"
        assert result["rate"] > 0, result["notes"]
        assert 0 < result["cpu_s_per_1000"] < 100
        # Challenged and verified: wrong passwords never get through, right ones do.
        assert result["extra"]["auth_check"] == (
            "wrong passwords: 0/4 calls went through; right ones: 10/10"
        )
    assert rows[("sipline", 1, 2)]["sipp_processes"] == 2  # one per node
    [one, nodes] = doc["scaling"]["f"]
    assert (one["row"], one["peer"]) == ("sipline x1", "kamailio x1")
    assert (nodes["row"], nodes["peer"]) == ("sipline 2 nodes", "kamailio x2")
    assert nodes["cpu_over_one_worker"] > 0
    assert "as many UDP children" in done.stdout
    markdown = table.read_text(encoding="utf-8")
    assert re.search(r"^\| \(f\) authenticated calls/s[^|]*\| sipline 2 nodes \|", markdown, re.M)
    assert re.search(r"^\| \(f\) [^|]*\| kamailio x2 \|", markdown, re.M)


def test_conference_benchmark_reports_participants_per_core() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.conference", "--steps", "10", "--seconds", "1",
         "--attempts", "1", "--codecs", "PCMU"],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "participants per core (<1% late)" in done.stdout
    assert re.search(r"^sipline, full pipeline, PCMU\s+\d+$", done.stdout, re.M)
    assert re.search(r"^the mixer alone \(numpy, no I/O\)\s+\d+$", done.stdout, re.M)
