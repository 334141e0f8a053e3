"""SIP over WebSocket (RFC 7118) through the transport layer, with aiohttp's client
standing in for a browser over real loopback sockets."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from transport_helpers import Errors, Inbox, eventually, request, response
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from sipline.core.framing import FramingLimits
from sipline.transport import Target, TransportLayer, WsPolicy
from sipline.transport.tls import server_context
from sipline.transport.websocket import origin_allowed

MakeLayer = Callable[..., tuple[TransportLayer, Inbox]]


async def _listen(make_layer: MakeLayer, **options: object) -> tuple[TransportLayer, Inbox, int]:
    server, inbox = make_layer(**options)
    bound = await server.listen_ws("127.0.0.1", 0)
    return server, inbox, bound.local[1]


async def test_one_sip_message_per_websocket_message_both_ways(make_layer: MakeLayer) -> None:
    server, inbox, port = await _listen(make_layer)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"ws://127.0.0.1:{port}/", protocols=("sip",)) as ws,
    ):
        assert ws.protocol == "sip"  # RFC 7118 §4.1: the server picks "sip"
        await ws.send_str(request().decode())
        data, source = await inbox.get()
        assert data == request()
        assert source.transport == "WS"
        assert source.connection is not None
        # RFC 3261 §18.2.2 / RFC 7118 §5: the response goes back over the connection.
        server.send(response(), Target("WS", *source.remote), connection=source.connection)
        message = await ws.receive(timeout=3)
        assert message.type == aiohttp.WSMsgType.TEXT
        assert message.data.encode() == response()
        # A request to the browser's flow (transport, address) finds its connection.
        server.send(request(tag="to-browser"), Target("WS", *source.remote))
        message = await ws.receive(timeout=3)
        assert message.data.encode() == request(tag="to-browser")
        # Binary frames carry SIP too (RFC 7118 §5.1).
        await ws.send_bytes(request(tag="binary"))
        assert (await inbox.get())[0] == request(tag="binary")
    await eventually(lambda: server.stats.connections_open == 0)
    assert server.stats.messages_in == 2


async def test_a_websocket_is_never_dialled(make_layer: MakeLayer) -> None:
    layer, _ = make_layer()
    errors = Errors()
    layer.send(request(), Target("WS", "127.0.0.1", 9), on_error=errors)
    assert "no open WebSocket connection" in str(await errors.get())
    assert not layer.connections


async def test_handshake_without_the_sip_subprotocol_is_refused(make_layer: MakeLayer) -> None:
    _, _, port = await _listen(make_layer)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(f"ws://127.0.0.1:{port}/")
    assert caught.value.status == 400


async def test_plain_http_get_is_answered_and_closed(make_layer: MakeLayer) -> None:
    _, _, port = await _listen(make_layer)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    async with asyncio.timeout(3):
        answer = await reader.read()
    assert answer.startswith(b"HTTP/1.1 400")
    writer.close()


@pytest.mark.parametrize(
    ("origin", "allowed", "accepted"),
    [
        ("http://127.0.0.1:8080", (), True),  # the page came from the host dialled
        ("https://evil.example", (), False),
        ("https://phone.example", ("https://phone.example",), True),
        ("https://evil.example", ("*",), True),
    ],
)
async def test_origin_check(
    make_layer: MakeLayer, origin: str, allowed: tuple[str, ...], accepted: bool
) -> None:
    server, inbox, port = await _listen(make_layer)
    server.ws_policy = WsPolicy(origins=allowed)
    url = f"ws://127.0.0.1:{port}/"
    async with aiohttp.ClientSession() as http:
        if not accepted:
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(url, protocols=("sip",), origin=origin)
            assert caught.value.status == 403
            return
        async with http.ws_connect(url, protocols=("sip",), origin=origin) as ws:
            await ws.send_str(request().decode())
            assert (await inbox.get())[0] == request()


def test_origin_rules() -> None:
    assert origin_allowed(None, "sip.example:443")  # not a browser
    assert origin_allowed("https://sip.example", "sip.example:8443")
    assert origin_allowed("HTTPS://SIP.EXAMPLE/", "sip.example")
    assert not origin_allowed("null", "sip.example")
    assert not origin_allowed("https://sip.example.evil", "sip.example")
    assert origin_allowed("https://a.example", "b.example", ("https://a.example/",))
    # The server's domains and their subdomains (but not the top-level domain).
    served = {"example.com", "com"}.__contains__
    assert origin_allowed("https://phone.example.com:8443", "10.0.0.1:8089", (), served)
    assert origin_allowed("https://example.com", "10.0.0.1", (), served)
    assert not origin_allowed("https://evil.org", "10.0.0.1", (), served)
    assert not origin_allowed("https://other.com", "10.0.0.1", (), {"com"}.__contains__)


async def test_crlf_keepalive_is_answered(make_layer: MakeLayer) -> None:
    server, inbox, port = await _listen(make_layer)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"ws://127.0.0.1:{port}/", protocols=("sip",)) as ws,
    ):
        await ws.send_str("\r\n\r\n")  # RFC 5626 §3.5.1 over a WebSocket message
        pong = await ws.receive(timeout=3)
        assert pong.data == "\r\n"
    assert server.stats.keepalives_in == 1
    assert inbox.queue.empty()


async def test_too_big_a_message_closes_with_1009(make_layer: MakeLayer) -> None:
    limits = FramingLimits(max_header_bytes=1024, max_body_bytes=1024, max_buffered_bytes=2048)
    server, inbox, port = await _listen(make_layer, limits=limits)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"ws://127.0.0.1:{port}/", protocols=("sip",)) as ws,
    ):
        await ws.send_str("x" * 4096)
        closing = await ws.receive(timeout=3)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1009
    assert inbox.queue.empty()
    assert server.stats.dropped == 1


async def test_silent_browser_is_pinged_then_closed(make_layer: MakeLayer) -> None:
    server, _, port = await _listen(make_layer)
    server.ws_policy = WsPolicy(ping_interval_s=0.2)
    async with aiohttp.ClientSession() as http:
        # aiohttp answers pings by itself: the connection stays up past the interval.
        async with http.ws_connect(f"ws://127.0.0.1:{port}/", protocols=("sip",)) as ws:
            await ws.send_str("\r\n\r\n")
            await ws.receive(timeout=3)
            reading = asyncio.ensure_future(ws.receive())
            await asyncio.sleep(0.7)
            assert server.stats.connections_open == 1
            reading.cancel()
        # A client that never answers is closed after two intervals of silence.
        async with http.ws_connect(f"ws://127.0.0.1:{port}/", protocols=("sip",), autoping=False):
            await eventually(lambda: server.stats.connections_open == 1)
            await eventually(lambda: server.stats.connections_open == 0, timeout=2)


async def test_wss_with_the_servers_certificate(
    make_layer: MakeLayer, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    server, inbox = make_layer()
    port = (await server.listen_ws("127.0.0.1", 0, server_context(cert, key))).local[1]
    trust = ssl.create_default_context(cafile=cert)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"wss://localhost:{port}/", protocols=("sip",), ssl=trust) as ws,
    ):
        await ws.send_str(request().decode())
        _, source = await inbox.get()
        assert source.transport == "WSS"
        server.send(response(), Target("WSS", *source.remote), connection=source.connection)
        assert (await ws.receive(timeout=3)).data.encode() == response()


async def test_fragmented_message_is_one_sip_message(make_layer: MakeLayer) -> None:
    # wsproto as the client: it can send one WebSocket message in several frames.
    _, inbox, port = await _listen(make_layer)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = WSConnection(ConnectionType.CLIENT)
    writer.write(client.send(Request(host=f"127.0.0.1:{port}", target="/", subprotocols=["sip"])))
    client.receive_data(await reader.read(4096))
    assert any(isinstance(e, AcceptConnection) for e in client.events())
    text = request().decode()
    half = len(text) // 2
    writer.write(client.send(TextMessage(data=text[:half], message_finished=False)))
    await writer.drain()
    await asyncio.sleep(0.05)
    assert inbox.queue.empty()  # half a message delivers nothing
    writer.write(client.send(TextMessage(data=text[half:], message_finished=True)))
    assert (await inbox.get())[0] == request()
    writer.close()


async def test_no_handshake_within_the_message_timeout_closes(make_layer: MakeLayer) -> None:
    server, _, port = await _listen(make_layer, message_timeout_s=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the end of it
    async with asyncio.timeout(3):
        assert await reader.read() == b""
    assert server.stats.message_timeouts == 1
    writer.close()
