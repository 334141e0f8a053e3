"""TCP: both directions, responses over the request's connection, reuse, aliases,
keep-alives and framing over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from transport_helpers import HOSTS, Errors, Inbox, eventually, free_tcp_port, request, response

from sipline.transport import Target, TransportError, TransportLayer

MakeLayer = Callable[..., tuple[TransportLayer, Inbox]]


@pytest.mark.parametrize("host", HOSTS)
async def test_request_and_response_over_one_connection(make_layer: MakeLayer, host: str) -> None:
    client, client_inbox = make_layer()
    server, server_inbox = make_layer()
    listener = await server.listen_tcp(host, 0)
    target = Target("TCP", host, listener.local[1])

    client.send(request(), target)
    data, source = await server_inbox.get()
    assert data == request()
    assert source.transport == "TCP"
    assert source.local == listener.local
    assert source.connection is not None

    # RFC 3261 §18.2.2: the response goes back over the request's connection.
    server.send(response(), Target("TCP", *source.remote), connection=source.connection)
    data, back = await client_inbox.get()
    assert data == response()
    assert back.remote == listener.local
    assert back.connection is client.connection_for(target)
    assert client.stats.connections_total == server.stats.connections_total == 1


@pytest.mark.parametrize("host", HOSTS)
async def test_connection_reuse_and_queueing(make_layer: MakeLayer, host: str) -> None:
    client, _ = make_layer()
    server, inbox = make_layer()
    port = (await server.listen_tcp(host, 0)).local[1]
    target = Target("TCP", f"[{host}]" if ":" in host else host, port)
    # Sent before the connection is up: queued in order on one connection.
    for i in range(5):
        client.send(request(tag=str(i)), target)
    assert len(client.connections) == 1
    for i in range(5):
        data, _ = await inbox.get()
        assert data == request(tag=str(i))
    client.send(request(tag="again"), target)
    assert (await inbox.get())[0] == request(tag="again")
    assert client.stats.connections_total == 1
    assert server.stats.connections_total == 1


async def test_alias_sends_over_the_peers_connection(make_layer: MakeLayer) -> None:
    client, client_inbox = make_layer()
    server, server_inbox = make_layer()
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    client.send(request(), Target("TCP", "127.0.0.1", port))
    _, source = await server_inbox.get()
    assert source.connection is not None
    # The client announced a sent-by nobody listens on; the alias makes it reachable.
    announced = free_tcp_port("127.0.0.1")
    server.add_alias(source.connection, "127.0.0.1", announced)
    errors = Errors()
    server.send(request(tag="back"), Target("TCP", "127.0.0.1", announced), on_error=errors)
    assert (await client_inbox.get())[0] == request(tag="back")
    assert errors.count == 0
    assert server.stats.connections_total == 1


async def test_closed_connection_falls_back_to_target(make_layer: MakeLayer) -> None:
    client, _ = make_layer()
    server, inbox = make_layer()
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    target = Target("TCP", "127.0.0.1", port)
    client.send(request(tag="1"), target)
    await inbox.get()
    first = client.connection_for(target)
    assert first is not None
    first.close()
    await first.wait_closed()
    assert client.connection_for(target) is None
    client.send(request(tag="2"), target, connection=first)
    assert (await inbox.get())[0] == request(tag="2")
    assert client.stats.connections_total == 2


@pytest.mark.parametrize("host", HOSTS)
async def test_send_to_closed_port_reports_error(make_layer: MakeLayer, host: str) -> None:
    client, _ = make_layer()
    errors = Errors()
    target = Target("TCP", host, free_tcp_port(host))
    client.send(request(), target, on_error=errors)
    client.send(request(tag="2"), target, on_error=errors)
    error = await errors.get()
    assert isinstance(error, TransportError)
    assert error.target == target
    await eventually(lambda: errors.count == 2)
    assert client.connections == frozenset()
    assert client.stats.connections_open == 0


async def test_keepalive_ping_is_answered_with_pong(make_layer: MakeLayer) -> None:
    server, inbox = make_layer()
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 3) == b"\r\n"
        writer.write(request() + b"\r\n\r\n")
        assert (await inbox.get())[0] == request()
        assert await asyncio.wait_for(reader.readexactly(2), 3) == b"\r\n"
    finally:
        writer.close()
        await writer.wait_closed()
    assert server.stats.keepalives_in == 2


async def test_split_and_coalesced_messages(make_layer: MakeLayer) -> None:
    server, inbox = make_layer()
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    messages = [request(tag="a", body=b"v=0\r\n\r\n"), request(tag="b"), request(tag="c")]
    stream = b"".join(messages)
    try:
        writer.write(stream[:7])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(stream[7:40])
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(stream[40:])  # the rest of one and two whole messages at once
        for expected in messages:
            data, _ = await inbox.get()
            assert data == expected
    finally:
        writer.close()
        await writer.wait_closed()


async def test_missing_content_length_gets_400_and_close(make_layer: MakeLayer) -> None:
    server, inbox = make_layer()
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        broken = request().replace(b"Content-Length: 0\r\n", b"")
        writer.write(broken)
        answer = await asyncio.wait_for(reader.read(), 3)  # until the server closes
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"SIP/2.0 400 Missing Content-Length\r\n")
    assert b"\r\nCall-ID: call-1\r\n" in answer
    assert answer.endswith(b"Content-Length: 0\r\n\r\n")
    assert inbox.queue.empty()
    assert server.stats.dropped == 1


async def test_close_flushes_and_fails_later_sends(make_layer: MakeLayer) -> None:
    client, _ = make_layer()
    server, inbox = make_layer()
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    client.send(request(tag="1"), Target("TCP", "127.0.0.1", port))
    await inbox.get()
    client.send(request(tag="2"), Target("TCP", "127.0.0.1", port))
    await client.close()
    assert (await inbox.get())[0] == request(tag="2")
    assert client.connections == frozenset()
    assert client.stats.connections_open == 0
    errors = Errors()
    client.send(request(), Target("TCP", "127.0.0.1", port), on_error=errors)
    assert isinstance(await errors.get(), TransportError)
