"""Event loop choice: the transports work on uvloop and on stock asyncio."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from transport_helpers import Inbox, request

from sipline.transport import Target, TransportLayer
from sipline.transport.loop import new_event_loop, run, uvloop_available
from sipline.transport.tls import client_context, server_context


async def exchange(cert: Path, key: Path) -> tuple[str, list[bytes]]:
    inbox = Inbox()
    server = TransportLayer(inbox)
    client = TransportLayer(
        lambda data, source: None, tls_client_context=client_context(ca_path=cert)
    )
    try:
        udp = await server.listen_udp("127.0.0.1", 0)
        tcp = await server.listen_tcp("127.0.0.1", 0)
        tls = await server.listen_tls("127.0.0.1", 0, server_context(cert, key))
        await client.listen_udp("127.0.0.1", 0)
        client.send(request(tag="u"), Target("UDP", *udp.local))
        client.send(request(tag="t"), Target("TCP", *tcp.local))
        client.send(request(tag="s"), Target("TLS", *tls.local))
        got = sorted([(await inbox.get())[0] for _ in range(3)])
    finally:
        await client.close()
        await server.close()
    return type(asyncio.get_running_loop()).__module__, got


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_run_on_either_loop(use_uvloop: bool, tls_files: tuple[Path, Path]) -> None:
    if use_uvloop and not uvloop_available():
        pytest.skip("uvloop not installed")
    module, got = run(exchange(*tls_files), use_uvloop=use_uvloop)
    assert got == sorted(request(tag=tag) for tag in "uts")
    assert module.startswith("uvloop") == use_uvloop


def test_new_event_loop_without_uvloop() -> None:
    loop = new_event_loop(use_uvloop=False)
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
