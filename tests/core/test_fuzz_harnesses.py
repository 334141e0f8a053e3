"""The fuzz harnesses under fuzz/ run, and find nothing in a short seeded run.

Long runs are for people (`python fuzz/fuzz_parser.py --seconds 300`); this only
proves the harnesses work from a fresh checkout, atheris or not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).parents[2] / "fuzz"


@pytest.mark.parametrize("harness", ["fuzz_parser.py", "fuzz_framer.py"])
def test_harness_runs_clean(harness: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(FUZZ / harness), "--iterations", "2000", "--seed", "1"],
        check=False,
        capture_output=True,
        timeout=120,
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, out[-3000:] + proc.stderr.decode()[-3000:]
    assert "2000 inputs" in out and "0 distinct crashes" in out


def test_strict_round_trip_rule_holds() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZ / "fuzz_parser.py"),
            "--strict-roundtrip",
            "--iterations",
            "2000",
            "--seed",
            "2",
        ],
        check=False,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout.decode()[-3000:]
