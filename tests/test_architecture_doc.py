"""docs/architecture.md stays true to the code: its module map lists every module with
its docstring (scripts/module_map.py), and the sizes the architecture promises hold."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "sipline"


def test_the_module_map_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "module_map.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_module_says_what_it_is() -> None:
    missing = [
        str(path.relative_to(SRC))
        for path in sorted(SRC.rglob("*.py"))
        if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert missing == []


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for path in sorted(SRC.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}


def test_the_user_agent_needs_no_type_ignore() -> None:
    ignores = [
        f"{path.relative_to(SRC)}:{i}"
        for path in sorted((SRC / "phone").rglob("*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "type: ignore" in line
    ]
    assert ignores == []
