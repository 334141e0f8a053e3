"""Fixtures for the user agent's tests: a real `SipServer` on loopback from the
server's fixtures (tests/server), and no traceback may reach a log."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_TESTS = Path(__file__).parent.parent
if str(_TESTS / "server") not in sys.path:
    sys.path.insert(0, str(_TESTS / "server"))


def _load(name: str, path: Path) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_server = _load("_server_conftest_for_phone", _TESTS / "server" / "conftest.py")
no_tracebacks = _server.no_tracebacks  # type: ignore[attr-defined]
make_server = _server.make_server  # type: ignore[attr-defined]
make_ua = _server.make_ua  # type: ignore[attr-defined]
server = _server.server  # type: ignore[attr-defined]
