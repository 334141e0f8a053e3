"""Fixtures for interop tests: `sipline serve` as a subprocess, peers bounded in time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import ServeProcess, start_serve


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    """A `sipline serve` on UDP, TCP and TLS; checked alive and stopped cleanly at the end."""
    server = start_serve(tmp_path / "serve")
    try:
        yield server
        assert server.alive(), "sipline serve died during the test:\n" + "\n".join(
            server.lines[-20:]
        )
    finally:
        code = server.stop()
    assert code == 0, "\n".join(server.lines[-20:])
