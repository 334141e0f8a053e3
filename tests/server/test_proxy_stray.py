"""Stray responses at the proxy of `sipline serve`, over real UDP sockets
(RFC 3261 §16.7 / §18.1.2, RFC 6026 §7.2): only a 2xx to INVITE whose top Via is one
of ours is sent on; anything else that matches no transaction is dropped, so a
stranger cannot make the server send datagrams to a host of its choosing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from server_helpers import server_target

from sipline.server.sip_server import SipServer

OUR_BRANCH = "z9hG4bK0123456789abcdef.stray1"


@pytest.fixture
def victim() -> Iterator[socket.socket]:
    """A loopback UDP listener that a reflected datagram would reach."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def stray(server: SipServer, victim: socket.socket, status: int, method: str, branch: str) -> bytes:
    target = server_target(server)
    vport = victim.getsockname()[1]
    reason = {200: "OK", 486: "Busy Here"}[status]
    return (
        f"SIP/2.0 {status} {reason}\r\n"
        f"Via: SIP/2.0/UDP {target.host}:{target.port};branch={branch}\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{vport};branch=z9hG4bKvictim\r\n"
        "From: <sip:a@example.com>;tag=1\r\n"
        "To: <sip:b@example.com>;tag=2\r\n"
        "Call-ID: stray-test\r\n"
        f"CSeq: 1 {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def reaches_victim(server: SipServer, victim: socket.socket, data: bytes) -> bool:
    target = server_target(server)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(data, (target.host, target.port))
        try:
            await asyncio.wait_for(loop.sock_recv(victim, 4096), 1.0)
        except TimeoutError:
            return False
    return True


@pytest.mark.parametrize(("status", "method"), [(486, "INVITE"), (200, "MESSAGE"), (200, "BYE")])
async def test_stray_non_2xx_invite_response_is_dropped(
    server: SipServer, victim: socket.socket, status: int, method: str
) -> None:
    assert not await reaches_victim(
        server, victim, stray(server, victim, status, method, OUR_BRANCH)
    )


async def test_stray_2xx_to_invite_is_forwarded_when_the_top_via_is_ours(
    server: SipServer, victim: socket.socket
) -> None:
    # §16.7 / RFC 6026 §7.2: a late 2xx (fork, retransmission) still reaches the caller.
    assert await reaches_victim(server, victim, stray(server, victim, 200, "INVITE", OUR_BRANCH))


async def test_stray_2xx_to_invite_with_a_foreign_top_branch_is_dropped(
    server: SipServer, victim: socket.socket
) -> None:
    data = stray(server, victim, 200, "INVITE", "z9hG4bKnot-one-of-ours")
    assert not await reaches_victim(server, victim, data)
