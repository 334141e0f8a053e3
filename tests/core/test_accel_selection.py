"""Which scanners run: the C accelerator wherever it could be built, the pure-Python
reference under `SIPLINE_PURE=1` or without it; `sipline --version` names the one in use."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

BUILT = importlib.util.find_spec("sipline._speedups") is not None


def _run(code: list[str], *, pure: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SIPLINE_PURE"}
    if pure:
        env["SIPLINE_PURE"] = "1"
    out = subprocess.run(code, env=env, capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def _selected(*, pure: bool) -> str:
    code = (
        "import sipline.core.scanners as s, sipline.accel as a; print(s.accelerated, a.describe())"
    )
    return _run([sys.executable, "-c", code], pure=pure)


def test_the_extension_is_built_wherever_a_compiler_and_headers_exist() -> None:
    # pip skips an optional extension that fails to build with only a warning: this makes
    # a broken C build fail the suite on every machine that could have built it.
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if shutil.which("cc") and include.exists():
        assert BUILT, "sipline._speedups was not built: see pip's output for the C error"


def test_sipline_pure_selects_the_reference() -> None:
    assert _selected(pure=True) == "False pure Python (SIPLINE_PURE)"


def test_the_default_is_the_extension_when_built() -> None:
    expected = "True C accelerator" if BUILT else "False pure Python"
    assert _selected(pure=False) == expected


def test_version_names_the_implementation() -> None:
    exe = str(Path(sys.executable).with_name("sipline"))
    assert "(parser: pure Python (SIPLINE_PURE))" in _run([exe, "--version"], pure=True)
    expected = "(parser: C accelerator)" if BUILT else "(parser: pure Python)"
    assert expected in _run([exe, "--version"], pure=False)
