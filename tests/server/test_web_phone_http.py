"""The web phone's files over the HTTP listener: open without the admin credential
(the SIP account is its login), with a policy that lets the page open WebSockets,
and the WebSocket address its page should dial (direct, or behind a proxy)."""

from __future__ import annotations

import aiohttp
import pytest
from server_helpers import ServerFactory

from sipline.server.config import parse_listen
from sipline.server.ops.config import HttpSettings, OpsConfig
from sipline.server.ops.phone import websocket_url


async def test_phone_is_served_without_the_admin_login(make_server: ServerFactory) -> None:
    listen = [parse_listen("udp:127.0.0.1:0"), parse_listen("ws:127.0.0.1:0")]
    http = HttpSettings(listen="127.0.0.1:0", admin_password="admin-password-1")
    server = await make_server(listen=listen, ops=OpsConfig(http=http))
    assert server.ops is not None
    base = server.ops.url
    ws_port = server.endpoint.local_address("WS").port
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as anon:
        async with anon.get(base + "phone", allow_redirects=False) as response:
            assert response.status == 302 and response.headers["Location"] == "phone/"
        async with anon.get(base + "phone/") as response:
            assert response.status == 200
            assert '<form id="login-form"' in await response.text()
            policy = response.headers["Content-Security-Policy"]
            assert "connect-src 'self' ws: wss:" in policy
        for name in ("phone.js", "phone.css", "jssip.min.js", "LICENSES.txt"):
            async with anon.get(base + "phone/" + name) as response:
                assert response.status == 200, name
        async with anon.get(base + "phone/LICENSES.txt") as response:
            text = await response.text()
            assert "JsSIP" in text and "MIT" in text
        async with anon.get(base + "phone/config.json") as response:
            assert await response.json() == {"websocket": f"ws://127.0.0.1:{ws_port}"}
        async with anon.get(base + "phone/nothing.js") as response:
            assert response.status == 404
        async with anon.get(base + "api/status") as response:
            assert response.status == 401  # the rest still needs the admin credential


@pytest.mark.parametrize(
    ("headers", "host", "secure", "want"),
    [
        ({}, "10.0.0.5:8080", False, "ws://10.0.0.5:8088"),
        ({}, "sip.example.com:8443", True, "wss://sip.example.com:8089"),
        ({}, "[::1]:8080", False, "ws://[::1]:8088"),
        ({"x-forwarded-proto": "https"}, "sip.example.com", False, "wss://sip.example.com/ws"),
        (
            {"x-forwarded-proto": "https", "x-forwarded-host": "phone.example.com"},
            "127.0.0.1:8080",
            False,
            "wss://phone.example.com/ws",
        ),
        ({"forwarded": "for=1.2.3.4;proto=https"}, "sip.example.com", False, "wss://sip.example.com/ws"),
    ],
)  # fmt: skip
def test_websocket_address_for_the_page(
    headers: dict[str, str], host: str, secure: bool, want: str
) -> None:
    listeners = [("ws", 8088), ("wss", 8089)]
    assert websocket_url(headers, host, secure, listeners) == want


def test_no_websocket_listener() -> None:
    assert websocket_url({}, "127.0.0.1:8080", False, []) is None
    assert websocket_url({}, "127.0.0.1:8080", False, [("wss", 8089)]) == "wss://127.0.0.1:8089"
