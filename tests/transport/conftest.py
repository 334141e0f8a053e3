"""Fixtures for transport tests: real sockets on loopback only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from transport_helpers import Inbox

from sipline.transport import TransportLayer
from sipline.transport.tls import generate_self_signed


@pytest.fixture
async def make_layer() -> AsyncIterator[Callable[..., tuple[TransportLayer, Inbox]]]:
    layers: list[TransportLayer] = []

    def make(**options: Any) -> tuple[TransportLayer, Inbox]:
        inbox = Inbox()
        layer = TransportLayer(inbox, **options)
        layers.append(layer)
        return layer, inbox

    yield make
    for layer in layers:
        await layer.close()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    generate_self_signed(cert, key)
    return cert, key
