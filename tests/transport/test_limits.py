"""Robustness: endless lines, connection limit, idle timeout, callback failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from transport_helpers import Errors, Inbox, eventually, request

from sipline.core.framing import FramingLimits
from sipline.transport import Target, TransportError, TransportLayer
from sipline.transport.stream import error_response

MakeLayer = Callable[..., tuple[TransportLayer, Inbox]]


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(), 3)
    except ConnectionResetError:
        return b""


async def test_endless_header_line_is_cut_off(make_layer: MakeLayer) -> None:
    limits = FramingLimits(max_header_bytes=4096, max_line_bytes=1024)
    server, inbox = make_layer(limits=limits)
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        writer.write(b"OPTIONS sip:a@b SIP/2.0\r\nX-Endless: ")
        # Keep writing until the server hangs up; it must not wait for a line end.
        for _ in range(2000):
            if reader.at_eof() or writer.is_closing():
                break
            writer.write(b"a" * 512)
            sent += 512
            await writer.drain()
            await asyncio.sleep(0)
        assert await read_until_closed(reader) == b""
    except ConnectionResetError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()
    assert sent < 2000 * 512
    assert server.stats.dropped == 1
    assert inbox.queue.empty()
    await eventually(lambda: server.stats.connections_open == 0)


async def connect_from(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))


async def closed_by_server(reader: asyncio.StreamReader, wait_s: float = 0.3) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), wait_s) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def close_all(clients: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, writer in clients:
        writer.close()
    for _, writer in clients:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await writer.wait_closed()


async def test_connection_limit(make_layer: MakeLayer) -> None:
    """At the limit, with every connection busy (each has sent a message) and each
    from its own address, a new inbound connection is refused."""
    limit = 3
    server, inbox = make_layer(max_connections=limit)
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    clients = []
    try:
        for i in range(limit):
            reader, writer = await connect_from(f"127.0.0.{11 + i}", port)
            clients.append((reader, writer))
            writer.write(request(tag=f"c{i}"))
            assert (await inbox.get())[0] == request(tag=f"c{i}")
        late = await connect_from("127.0.0.20", port)
        clients.append(late)
        await eventually(lambda: server.stats.connections_refused == 1)
        assert await closed_by_server(late[0])
        assert server.stats.connections_open == limit
        assert server.stats.connections_evicted == 0
        # Outbound sends past the limit fail too.
        errors = Errors()
        server.send(request(), Target("TCP", "127.0.0.1", 9), on_error=errors)
        assert "too many connections" in str(await errors.get())
        # Once one closes, a new connection is admitted again.
        clients[0][1].close()
        await eventually(lambda: server.stats.connections_open == limit - 1)
        reader, writer = await connect_from("127.0.0.21", port)
        clients.append((reader, writer))
        writer.write(request(tag="late"))
        assert (await inbox.get())[0] == request(tag="late")
    finally:
        await close_all(clients)


async def test_at_the_limit_silent_connections_make_room(make_layer: MakeLayer) -> None:
    """Connections that never completed a message (an attacker holding the limit)
    make room for a new client: the oldest of them is closed."""
    limit = 3
    server, inbox = make_layer(max_connections=limit)
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    attackers = []
    try:
        for _ in range(limit):
            attackers.append(await connect_from("127.0.0.2", port))
            await eventually(lambda: server.stats.connections_open == len(attackers))
        attackers[0][1].write(b"REGISTER sip:a SIP/2.0\r\nVia: x")  # begun, never ended
        reader, writer = await connect_from("127.0.0.3", port)
        attackers.append((reader, writer))
        writer.write(request(tag="legit"))
        assert (await inbox.get())[0] == request(tag="legit")
        assert server.stats.connections_evicted == 1
        assert server.stats.connections_refused == 0
        assert await closed_by_server(attackers[0][0])
        assert not await closed_by_server(attackers[1][0], 0.1)
        await eventually(lambda: server.stats.connections_open == limit)
    finally:
        await close_all(attackers)


async def test_at_the_limit_the_busiest_source_makes_room(make_layer: MakeLayer) -> None:
    limit = 3
    server, inbox = make_layer(max_connections=limit)
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    clients = []
    try:
        for i, host in enumerate(("127.0.0.2", "127.0.0.2", "127.0.0.4")):
            clients.append(await connect_from(host, port))
            clients[-1][1].write(request(tag=f"c{i}"))
            await inbox.get()
        reader, writer = await connect_from("127.0.0.3", port)
        clients.append((reader, writer))
        writer.write(request(tag="legit"))
        assert (await inbox.get())[0] == request(tag="legit")
        assert server.stats.connections_evicted == 1
        # One of 127.0.0.2's (the least recently active: the first) made room.
        assert await closed_by_server(clients[0][0])
        assert not await closed_by_server(clients[2][0], 0.1)
    finally:
        await close_all(clients)


async def test_connections_per_source_are_capped(make_layer: MakeLayer) -> None:
    server, inbox = make_layer(max_connections_per_source=2)
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    clients = []
    try:
        clients.extend([await connect_from("127.0.0.2", port) for _ in range(3)])
        await eventually(lambda: server.stats.connections_refused == 1)
        assert server.stats.connections_open == 2
        assert [await closed_by_server(r, 0.1) for r, _ in clients].count(True) == 1
        # Another address is not affected, and a trusted one is not capped.
        clients.append(await connect_from("127.0.0.3", port))
        server.exempt_source = lambda host: host == "127.0.0.2"
        clients.append(await connect_from("127.0.0.2", port))
        await eventually(lambda: server.stats.connections_open == 4)
        clients[-1][1].write(request(tag="trusted"))
        assert (await inbox.get())[0] == request(tag="trusted")
        assert server.stats.connections_refused == 1
    finally:
        await close_all(clients)


async def test_a_message_must_arrive_whole_within_the_deadline(make_layer: MakeLayer) -> None:
    """Slowloris: a byte now and then keeps a connection from being idle, but the
    message it began must be complete within message_timeout_s."""
    server, inbox = make_layer(message_timeout_s=0.5, idle_timeout_s=60.0)
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    loop = asyncio.get_running_loop()
    trickle = await connect_from("127.0.0.2", port)
    silent = await connect_from("127.0.0.3", port)
    served = await connect_from("127.0.0.4", port)
    clients = [trickle, silent, served]
    started = loop.time()
    try:
        served[1].write(request(tag="whole"))
        assert (await inbox.get())[0] == request(tag="whole")
        data = request(tag="slow")
        for i in range(20):
            if trickle[0].at_eof():
                break
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                trickle[1].write(data[i : i + 1])
            await asyncio.sleep(0.1)
        await eventually(lambda: server.stats.message_timeouts == 2)
        assert 0.5 <= loop.time() - started < 1.5
        assert await closed_by_server(trickle[0])
        assert await closed_by_server(silent[0])  # never sent a byte: due all the same
        # A connection between messages is only subject to the idle timeout.
        assert not await closed_by_server(served[0], 0.1)
        served[1].write(request(tag="again"))
        assert (await inbox.get())[0] == request(tag="again")
        assert inbox.queue.empty()
    finally:
        await close_all(clients)


async def test_idle_connections_are_closed(make_layer: MakeLayer) -> None:
    server, inbox = make_layer(idle_timeout_s=0.2)
    client, _ = make_layer(idle_timeout_s=0.2)
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await asyncio.sleep(0.1)
        writer.write(request())  # activity pushes the deadline back
        await inbox.get()
        assert await read_until_closed(reader) == b""
    finally:
        writer.close()
        await writer.wait_closed()
    assert 0.25 <= loop.time() - started < 2
    # Outbound connections time out the same way.
    client.send(request(), Target("TCP", "127.0.0.1", port))
    await inbox.get()
    await eventually(lambda: client.stats.connections_open == 0)
    await eventually(lambda: server.stats.connections_open == 0)


async def test_error_response_needs_a_request_with_a_via() -> None:
    header = request().replace(b"Content-Length: 0\r\n", b"l: x\r\n")
    answer = error_response(header, 400, "Invalid Content-Length")
    assert answer is not None
    assert answer.startswith(b"SIP/2.0 400 Invalid Content-Length\r\nVia: ")
    assert b"CSeq: 1 OPTIONS\r\n" in answer
    assert error_response(b"SIP/2.0 200 OK\r\nl: x\r\n\r\n", 400, "x") is None
    # A Via is enough to answer on the connection (RFC 4475 §3.1.2.4: ideally 400).
    assert error_response(b"OPTIONS sip:a SIP/2.0\r\nv: x\r\n\r\n", 400, "x") is not None
    assert error_response(b"OPTIONS sip:a SIP/2.0\r\ni: x\r\n\r\n", 400, "x") is None


async def test_unknown_transport_is_reported(make_layer: MakeLayer) -> None:
    layer, _ = make_layer()
    errors = Errors()
    layer.send(b"x", Target("SCTP", "127.0.0.1", 5060), on_error=errors)
    assert isinstance(await errors.get(), TransportError)
