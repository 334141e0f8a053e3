"""A browser-like client over SIP WebSocket (RFC 7118) registers with a real server
the way JsSIP does (Via host and Contact under `.invalid`, RFC 5626 reg-id and
+sip.instance), and requests for it come back over its own connection: nothing
resolves `.invalid`. aiohttp's client is the browser; a `UserAgent` on UDP is the
other side."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from server_helpers import configured
from service_calls import DOMAIN, HOST, add_users, running, user_agent

from sipline.core.auth import Challenge, answer_challenge
from sipline.core.message import Request, Response, parse_message
from sipline.phone.im import MessageFailed
from sipline.runtime.system import SystemEntropy
from sipline.server.config import ServerSection, parse_listen
from sipline.server.config_values import ConfigError, load_section
from sipline.server.sip_server import SipServer

pytestmark = pytest.mark.timeout(30)

INSTANCE = f"<urn:uuid:{uuid.UUID(int=7)}>"


class BrowserLike:
    """Just enough of a JsSIP user agent, over one WebSocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, user: str) -> None:
        self.ws = ws
        self.user = user
        self.cseq = 0
        self.contact = f"sip:{user}x9@df7jal23ls0d.invalid;transport=ws"

    async def receive(self) -> Request | Response:
        message = await self.ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        return parse_message(message.data.encode())

    async def request(self, method: str, uri: str, *, extra: str = "", body: str = "") -> Response:
        """Send `method`, answering one digest challenge."""
        call_id = uuid.uuid4().hex
        authorization = ""
        for _ in range(2):
            self.cseq += 1
            text = (
                f"{method} {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                "Max-Forwards: 69\r\n"
                f"To: <sip:{self.user if method == 'REGISTER' else 'bob'}@{DOMAIN}>\r\n"
                f"From: <sip:{self.user}@{DOMAIN}>;tag=t{self.user}\r\n"
                f"Call-ID: {call_id}\r\nCSeq: {self.cseq} {method}\r\n"
                f"{authorization}{extra}Content-Length: {len(body.encode())}\r\n\r\n{body}"
            )
            await self.ws.send_str(text)
            reply = await self.receive()
            while isinstance(reply, Response) and reply.status < 200:
                reply = await self.receive()
            assert isinstance(reply, Response)
            if reply.status not in (401, 407):
                return reply
            name = "WWW-Authenticate" if reply.status == 401 else "Proxy-Authenticate"
            challenge = Challenge.parse(reply.headers.get(name) or "")
            credentials = answer_challenge(
                challenge,
                method=method,
                uri=uri,
                username=self.user,
                password=f"{self.user}-pw",
                body=body.encode(),
                entropy=SystemEntropy(),
            )
            field = "Authorization" if reply.status == 401 else "Proxy-Authorization"
            authorization = f"{field}: {credentials.serialize()}\r\n"
        raise AssertionError("challenged twice")

    async def register(self) -> Response:
        return await self.request(
            "REGISTER",
            f"sip:{DOMAIN}",
            extra=(
                f'Contact: <{self.contact}>;+sip.ice;reg-id=1;+sip.instance="{INSTANCE}";'
                "expires=600\r\nSupported: path,gruu,outbound\r\n"
            ),
        )


@pytest.fixture
async def ws_server(tmp_path: Path) -> AsyncIterator[SipServer]:
    db = tmp_path / "ws.db"
    add_users(db, ["alice", "bob"])
    listen = [parse_listen(f"udp:{HOST}:0"), parse_listen(f"ws:{HOST}:0")]
    async with running(configured(listen=listen, domains=[DOMAIN], database=db)) as server:
        yield server


async def test_registered_browser_gets_requests_over_its_websocket(ws_server: SipServer) -> None:
    ws_port = ws_server.endpoint.local_address("WS").port
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"ws://{HOST}:{ws_port}/", protocols=("sip",), origin=f"http://{HOST}:8080"
        ) as ws,
        user_agent(ws_server, "bob") as bob,
    ):
        browser = BrowserLike(ws, "alice")  # its page came from the server's own host
        ok = await browser.register()
        assert ok.status == 200
        # RFC 5626 §6: the registrar did outbound processing for the reg-id.
        assert "outbound" in (ok.headers.get("Supported") or "")
        assert "df7jal23ls0d.invalid" in (ok.headers.get("Contact") or "")
        [binding] = ws_server.backend.bindings(f"alice@{DOMAIN}")
        assert binding.received is not None and binding.received.startswith("ws:")
        # RFC 5626 §4.3: the Contact of the dialogs it starts carries "ob"; the same device.
        assert ws_server.backend.binding_for_contact(browser.contact + ";ob") == binding

        # bob (UDP) writes to alice: the MESSAGE reaches the browser over its WebSocket.
        task = asyncio.ensure_future(bob.send_message(f"sip:alice@{DOMAIN}", "hello browser"))
        incoming = await browser.receive()
        assert isinstance(incoming, Request) and incoming.method == "MESSAGE"
        assert incoming.body == b"hello browser"
        assert incoming.uri_text == browser.contact
        # Our Via says WS: the proxy sent it over the WebSocket transport.
        assert incoming.top_via.transport == "WS"
        reply = incoming.headers
        await ws.send_str(
            "SIP/2.0 200 OK\r\n"
            + "".join(f"Via: {v}\r\n" for v in reply.get_all("Via"))
            + f"From: {reply.get('From')}\r\nTo: {reply.get('To')};tag=b1\r\n"
            + f"Call-ID: {reply.get('Call-ID')}\r\nCSeq: {reply.get('CSeq')}\r\n"
            + "Content-Length: 0\r\n\r\n"
        )
        assert (await task).status == 200

        # And the browser writes back, through the proxy, to bob on UDP.
        answer = await browser.request(
            "MESSAGE",
            f"sip:bob@{DOMAIN}",
            extra="Content-Type: text/plain\r\n",
            body="hello phone",
        )
        assert answer.status == 200
        received = await bob.next_message(timeout=5)
        assert received.text == "hello phone"


async def test_closed_websocket_is_not_dialled_again(ws_server: SipServer) -> None:
    ws_port = ws_server.endpoint.local_address("WS").port
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{HOST}:{ws_port}/", protocols=("sip",)) as ws:
            assert (await BrowserLike(ws, "alice").register()).status == 200
        async with user_agent(ws_server, "bob") as bob:
            # The binding outlives the connection, but nothing dials a `.invalid` host
            # or a browser: the message fails at once instead of waiting for DNS.
            with pytest.raises(MessageFailed) as failed:
                await bob.send_message(f"sip:alice@{DOMAIN}", "are you there")
            assert failed.value.status >= 400
    assert ws_server.endpoint.transports.stats.connections_open == 0


async def test_page_from_another_site_is_refused(ws_server: SipServer) -> None:
    ws_port = ws_server.endpoint.local_address("WS").port
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(
                f"ws://{HOST}:{ws_port}/", protocols=("sip",), origin="https://evil.example"
            )
        assert caught.value.status == 403
        # A page under a domain the server serves is its own.
        async with http.ws_connect(
            f"ws://{HOST}:{ws_port}/", protocols=("sip",), origin=f"https://phone.{DOMAIN}"
        ) as ws:
            assert (await BrowserLike(ws, "alice").register()).status == 200


async def test_configured_origins_may_open_a_websocket(tmp_path: Path) -> None:
    """`[server] ws_origins` lets pages of another site in (a web phone hosted elsewhere)."""
    db = tmp_path / "ws.db"
    add_users(db, ["alice"])
    listen = [parse_listen(f"udp:{HOST}:0"), parse_listen(f"ws:{HOST}:0")]
    config = configured(
        listen=listen, domains=[DOMAIN], database=db, ws_origins=("https://phones.example:8443",)
    )
    async with running(config) as server, aiohttp.ClientSession() as http:
        url = f"ws://{HOST}:{server.endpoint.local_address('WS').port}/"
        async with http.ws_connect(
            url, protocols=("sip",), origin="https://phones.example:8443"
        ) as ws:
            assert (await BrowserLike(ws, "alice").register()).status == 200
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(url, protocols=("sip",), origin="https://phones.example")
        assert caught.value.status == 403


def test_ws_origins_must_be_origins() -> None:
    assert load_section(ServerSection, "server", {"ws_origins": ["*"]}).ws_origins == ("*",)
    with pytest.raises(ConfigError, match=r"server.ws_origins: 'phones.example' is not an origin"):
        load_section(ServerSection, "server", {"ws_origins": ["phones.example"]})
