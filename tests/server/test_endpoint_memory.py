"""What the endpoint keeps of a request it answered. A non-INVITE server transaction
stays in Completed for Timer J (64*T1, RFC 3261 §17.2.2) to answer retransmissions,
but for that it needs only the response's bytes: the parsed request is let go at the
final response (a registrar at 1,000 REGISTERs/s held 64,000 of them)."""

from __future__ import annotations

import asyncio
import gc
import socket

import pytest

from sipline.core.message import Request
from sipline.runtime.endpoint import Endpoint, EndpointConfig, ServerTransaction

pytestmark = pytest.mark.serial  # measures time or load (make test runs it alone)

HOST = "127.0.0.1"
COUNT = 50


def options(i: int, port: int, client_port: int) -> bytes:
    return (
        f"OPTIONS sip:server@{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{client_port};branch=z9hG4bKmem{i};rport\r\n"
        f"From: <sip:client@{HOST}>;tag=c{i}\r\nTo: <sip:server@{HOST}>\r\n"
        f"Call-ID: mem-{i}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def live_requests() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, Request))


async def receive(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)


async def test_answered_requests_are_let_go_while_their_transactions_wait_for_timer_j() -> None:
    ep = Endpoint(EndpointConfig())
    answered: list[str] = []

    def handle(st: ServerTransaction) -> None:
        answered.append(st.request.call_id)
        st.respond(200)

    ep.on_request = handle
    _, port = await ep.bind("UDP", HOST, 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind((HOST, 0))
        client.setblocking(False)
        client_port = client.getsockname()[1]
        try:
            before = live_requests()
            first = b""
            for i in range(COUNT):
                client.sendto(options(i, port, client_port), (HOST, port))
                reply = await receive(client)
                assert reply.startswith(b"SIP/2.0 200 ")
                first = first or reply
            assert len(answered) == COUNT
            # Every transaction is still there (Timer J: 32 s over UDP)...
            assert ep.transactions.server_count == COUNT
            # ...but none of the requests is.
            assert live_requests() == before
            # A retransmission still gets the very same response (§17.2.2).
            client.sendto(options(0, port, client_port), (HOST, port))
            assert await receive(client) == first
            assert len(answered) == COUNT
        finally:
            await ep.close()
