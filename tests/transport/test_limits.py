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


async def test_connection_limit(make_layer: MakeLayer) -> None:
    limit = 3
    server, inbox = make_layer(max_connections=limit)
    port = (await server.listen_tcp("127.0.0.1", 0)).local[1]
    clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(limit + 5)]
    try:
        await eventually(lambda: server.stats.connections_refused == 5)
        assert server.stats.connections_open == limit

        async def refused(reader: asyncio.StreamReader) -> bool:
            try:
                return await asyncio.wait_for(reader.read(1), 0.3) == b""
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False

        results = await asyncio.gather(*(refused(reader) for reader, _ in clients))
        assert results.count(True) == 5
        # The admitted ones are still served.
        for (_, writer), was_refused in zip(clients, results, strict=True):
            if not was_refused:
                writer.write(request())
        for _ in range(limit):
            assert (await inbox.get())[0] == request()
        # Outbound sends past the limit fail too.
        errors = Errors()
        server.send(request(), Target("TCP", "127.0.0.1", 9), on_error=errors)
        assert "too many connections" in str(await errors.get())
        # Once one closes, a new connection is admitted again.
        for (_, writer), was_refused in zip(clients, results, strict=True):
            if not was_refused:
                writer.close()
                break
        await eventually(lambda: server.stats.connections_open == limit - 1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        clients.append((reader, writer))
        writer.write(request(tag="late"))
        assert (await inbox.get())[0] == request(tag="late")
    finally:
        for _, writer in clients:
            writer.close()
        for _, writer in clients:
            with contextlib.suppress(ConnectionResetError):
                await writer.wait_closed()


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
