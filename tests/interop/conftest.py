"""Fixtures for interop tests: `sipline serve` as a subprocess, peers bounded in time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import ServeProcess, start_serve

from sipline.transport.tls import generate_self_signed


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


@pytest.fixture(scope="session")
def peer_tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate and key for a peer's own side of TLS."""
    directory = tmp_path_factory.mktemp("peer-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    generate_self_signed(cert, key)
    return cert, key
