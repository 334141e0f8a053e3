"""Whether the optional C accelerator (`sipline._speedups`) is in use.

The accelerator is built when `pip install` finds a C compiler and Python's headers,
and skipped otherwise; the pure-Python code (`sipline.core.scan`) stays the reference.
Setting `SIPLINE_PURE=1` in the environment before sipline is imported selects the pure
code even when the extension is present (the test suite runs the core against both).
This module reads the environment so that the sans-I/O core does not have to.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["ACCELERATED", "describe", "speedups"]


def _load() -> ModuleType | None:
    if os.environ.get("SIPLINE_PURE", "") not in ("", "0"):
        return None
    try:
        from sipline import _speedups  # noqa: PLC0415 (optional: absent without a compiler)
    except ImportError:
        return None
    return _speedups


speedups: ModuleType | None = _load()
ACCELERATED = speedups is not None


def describe() -> str:
    """One phrase for `sipline --version`: which implementation the parser runs."""
    if ACCELERATED:
        return "C accelerator"
    return "pure Python (SIPLINE_PURE)" if "SIPLINE_PURE" in os.environ else "pure Python"
