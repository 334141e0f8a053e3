"""Fixtures for the security tests: the server fixtures of tests/server (a real
`SipServer` on loopback, test user agents) and those of tests/interop (`sipline
serve` as a subprocess)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).parent.parent
for _where in ("server", "interop"):
    if str(_TESTS / _where) not in sys.path:
        sys.path.insert(0, str(_TESTS / _where))


def _load(name: str, path: Path) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


from interop_helpers import stop_leftover_uases  # noqa: E402  (after the path above)

_apps = _load("_apps_conftest", _TESTS / "server" / "conftest.py")
make_server = _apps.make_server  # type: ignore[attr-defined]
server = _apps.server  # type: ignore[attr-defined]
make_ua = _apps.make_ua  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def no_leftover_uases() -> Iterator[None]:
    """Stop the SIPp UASes a test left running (see interop_helpers.stop_leftover_uases)."""
    yield
    stop_leftover_uases()
