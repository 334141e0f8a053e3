"""Fixtures for interop tests: `sipline serve` as a subprocess, peers bounded in time.
The helpers of tests/server (`sipua`, `server_helpers`, `service_calls`) and of
tests/server/bridge (`webrtc_peer`, an aiortc peer standing in for a browser's media)
are importable here too."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import (
    STARTED,
    ServeProcess,
    checked,
    start_serve,
    stop_leftover_uases,
    tracebacks,
)

_TESTS = Path(__file__).parent.parent
for _where in ("server", "server/bridge"):
    if str(_TESTS / _where) not in sys.path:
        sys.path.insert(0, str(_TESTS / _where))


@pytest.fixture(autouse=True)
def no_tracebacks() -> Iterator[None]:
    """Fail a test if any `sipline serve` it started logged a traceback; stop the SIPp
    UASes it left running."""
    STARTED.clear()
    yield
    stop_leftover_uases()
    for server in STARTED:
        found = tracebacks(server)
        if found:
            pytest.fail("sipline serve logged a traceback:\n" + "\n---\n".join(found))
    STARTED.clear()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    """A `sipline serve` on UDP, TCP and TLS; checked alive and stopped cleanly at the end."""
    with checked(start_serve(tmp_path / "serve")) as server:
        yield server
