"""Flood control inside `sipline serve` (runtime/flood.py, server/flood.py), over real
UDP sockets: a banned address is ignored, except for an emergency call from a device
registered there (counted, never blocked); bans are logged in the fixed format."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from server_helpers import DOMAIN, ServerFactory, UAFactory
from sipua import HOST

from sipline.server.sip_server import SipServer

pytestmark = pytest.mark.serial  # measures time or load (make test runs it alone)


def invite(port: int, local: int, target: str, caller: str, n: int) -> bytes:
    return (
        f"INVITE {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK-em{n};rport\r\nMax-Forwards: 70\r\n"
        f"From: <sip:{caller}@{DOMAIN}>;tag=em{n}\r\nTo: <{target}>\r\n"
        f"Call-ID: emergency-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:{caller}@{HOST}:{local}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def answered(sock: socket.socket, port: int, data: bytes, wait_s: float = 1.0) -> bool:
    loop = asyncio.get_running_loop()
    sock.sendto(data, (HOST, port))
    try:
        await asyncio.wait_for(loop.sock_recv(sock, 65535), wait_s)
    except TimeoutError:
        return False
    return True


async def test_a_banned_address_is_ignored_but_its_emergency_calls_pass(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server: SipServer = await make_server(flood_exempt=[])  # 127.0.0.1 counted too
    ua = await make_ua(server)
    assert (await ua.register(f"alice@{DOMAIN}", "alice-pw")).final.status == 200
    flood = server.endpoint.flood
    assert flood is not None
    flood.ban(HOST, 60.0)
    port = server.endpoint.local_address("UDP").port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.setblocking(False)
        local = sock.getsockname()[1]
        ordinary = invite(port, local, f"sip:bob@{DOMAIN}", "alice", 1)
        assert not await answered(sock, port, ordinary)
        stranger = invite(port, local, f"sip:112@{DOMAIN}", "carol", 2)  # no device here
        assert not await answered(sock, port, stranger)
        emergency = invite(port, local, f"sip:112@{DOMAIN}", "alice", 3)
        assert await answered(sock, port, emergency, 3.0)
    assert flood.stats.spared == 1
    assert flood.stats.dropped == 2


async def test_a_flood_is_banned_and_logged(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(flood_exempt=[], flood_requests=50)
    port = server.endpoint.local_address("UDP").port
    caplog.set_level(logging.WARNING, logger="sipline.security")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.setblocking(False)
        local = sock.getsockname()[1]
        for n in range(200):
            sock.sendto(invite(port, local, f"sip:bob@{DOMAIN}", "x", n + 10), (HOST, port))
        flood = server.endpoint.flood
        assert flood is not None
        for _ in range(100):
            if flood.stats.dropped >= 150:
                break
            await asyncio.sleep(0.02)
    assert flood.stats.bans == 1 and flood.stats.dropped == 150
    [line] = [r.getMessage() for r in caplog.records if r.name == "sipline.security"]
    assert line.startswith(f'flood-ban src={HOST}:{local} user="" ua="" reason=')
    assert "flood_bans=1 flood_banned=1 flood_dropped=150" in server.status()
