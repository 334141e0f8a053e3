"""The endpoint's parts: handles only where the application needs them, the 2xx ACK
through the core, its Timers closed with it, the §18.1.1 move to TCP, the UDP queue
probe on the transport. Over real loopback sockets, on a FakeClock."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from sipline.core.message import Request, parse_message
from sipline.runtime.addresses import LocalAddress, LocalAddresses
from sipline.runtime.endpoint import Endpoint, ServerTransaction
from sipline.testing import FakeClock, advance
from sipline.transport import Target

HOST = "127.0.0.1"


def request(method: str, port: int, client_port: int, n: int, *, cseq: str = "") -> bytes:
    return (
        f"{method} sip:server@{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{client_port};branch=z9hG4bKrt{n};rport\r\n"
        f"From: <sip:client@{HOST}>;tag=c{n}\r\nTo: <sip:server@{HOST}>\r\n"
        f"Call-ID: rt-{n}\r\nCSeq: 1 {cseq or method}\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def receive(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)


@pytest.fixture
async def client() -> AsyncIterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.setblocking(False)
        yield sock


async def test_handles_are_kept_only_for_invites_and_counted_from_core_keys(
    client: socket.socket,
) -> None:
    clock = FakeClock()
    ep = Endpoint(clock=clock)
    held: list[ServerTransaction] = []

    def handle(st: ServerTransaction) -> None:
        if st.request.method == "INVITE":
            held.append(st)  # rings: answered later
        else:
            st.respond(200)

    ep.on_request = handle
    _, port = await ep.bind("UDP", HOST, 0)
    me = client.getsockname()[1]
    try:
        client.sendto(request("OPTIONS", port, me, 1), (HOST, port))
        assert (await receive(client)).startswith(b"SIP/2.0 200 ")
        assert ep.pending_transactions == 0 and not ep._invites  # answered: let go
        assert ep.transactions.server_count == 1  # the core keeps it for Timer J
        client.sendto(request("INVITE", port, me, 2), (HOST, port))
        for _ in range(1000):  # read and handed up (no 100 yet: Trying waits 200 ms)
            if held:
                break
            await asyncio.sleep(0)
        assert ep.pending_transactions == 1 and list(ep._invites.values()) == held
        held[0].respond(486)
        assert (await receive(client)).startswith(b"SIP/2.0 486 ")
        assert ep.pending_transactions == 0
        # §9.2: a CANCEL after the final response still finds its INVITE: 200, not 481.
        client.sendto(request("CANCEL", port, me, 2), (HOST, port))
        assert (await receive(client)).startswith(b"SIP/2.0 200 ")
        # Timer H (64*T1) ends the INVITE transaction in the core, and its handle with it.
        await advance(clock, 33.0)
        assert not ep._invites and ep.transactions.server_count == 0
    finally:
        await ep.close()
        client.close()


async def test_a_2xx_ack_goes_out_through_the_cores_send_stateless(
    client: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = Endpoint(clock=FakeClock())
    await ep.bind("UDP", HOST, 0)
    queued: list[object] = []
    core_send = ep.transactions.send_stateless

    def spy(msg: object, **kwargs: object) -> None:
        queued.append(msg)
        core_send(msg, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ep.transactions, "send_stateless", spy)
    me = client.getsockname()[1]
    ack = parse_message(request("ACK", me, me, 3))
    assert isinstance(ack, Request)
    try:
        ep.send_stateless(ack, Target("UDP", HOST, me))
        assert queued == [ack]
        assert (await receive(client)).startswith(b"ACK sip:server@")
    finally:
        await ep.close()
        client.close()


async def test_close_drops_every_timer_of_the_endpoint() -> None:
    clock = FakeClock()
    ep = Endpoint(clock=clock)
    fired: list[int] = []
    ep.timers.call_later(1.0, fired.append, 1)
    await ep.close()
    assert ep.timers.next_deadline() is None
    clock.advance(2.0)
    assert fired == []


def test_a_request_too_big_for_udp_moves_to_tcp_when_it_can() -> None:
    """§18.1.1: within 200 bytes of a 1500-byte MTU, a request goes over TCP."""
    addresses = LocalAddresses()
    addresses.add(LocalAddress("UDP", HOST, 5060, HOST))
    big = parse_message(
        request("MESSAGE", 5062, 5070, 4).replace(b"Max", b"X-Pad: " + b"x" * 1400 + b"\r\nMax")
    )
    small = parse_message(request("MESSAGE", 5062, 5070, 5))
    assert isinstance(big, Request) and isinstance(small, Request)
    target = Target("UDP", HOST, 5062)
    assert addresses.add_via(small, target, "z9hG4bKs") == target
    assert addresses.add_via(big, target, "z9hG4bKb") == target  # no TCP to move to
    addresses.add(LocalAddress("TCP", HOST, 5060, HOST))
    big.headers.pop_first_value("Via")
    moved = addresses.add_via(big, target, "z9hG4bKb")
    assert moved == Target("TCP", HOST, 5062)
    assert big.top_via.transport == "TCP" and big.top_via.branch == "z9hG4bKb"


async def test_the_udp_queue_probe_is_a_transport_method(client: socket.socket) -> None:
    ep = Endpoint(clock=FakeClock())
    _, port = await ep.bind("UDP", HOST, 0)
    try:
        for _ in range(20):  # sent while this coroutine holds the loop: none is read
            client.sendto(b"\r\n\r\n" + b"x" * 500, (HOST, port))
        fill = ep.transports.udp_queue_fill()
        assert 0.0 <= fill < 1.0
        [bound] = ep.transports.bound_sockets
        assert bound.transport == "UDP" and bound.local[1] == port
    finally:
        await ep.close()
        client.close()


async def test_the_tap_sees_received_messages_parsed_once(client: socket.socket) -> None:
    """The tap gets every message as bytes; a received one also as the message the
    endpoint parsed (so call records need not parse it again), before the Via fix-up
    changes it; a malformed one and what is sent, as bytes only."""
    ep = Endpoint(clock=FakeClock())
    seen: list[tuple[bool, bytes, object]] = []
    vias: list[str] = []

    def tap(
        sent: bool,
        data: bytes,
        transport: str,
        local: object,
        remote: object,
        message: object = None,
    ) -> None:
        seen.append((sent, data, message))
        if isinstance(message, Request):
            vias.append(str(message.top_via))

    ep.tap = tap
    ep.on_request = lambda st: st.respond(200)
    _, port = await ep.bind("UDP", HOST, 0)
    me = client.getsockname()[1]
    try:
        options = request("OPTIONS", port, me, 7)
        client.sendto(b"NOT SIP AT ALL\r\n\r\n", (HOST, port))  # no Via: no answer
        client.sendto(options, (HOST, port))
        await receive(client)  # the 200: both datagrams were handled, in order
    finally:
        await ep.close()
    received = [(data, message) for sent, data, message in seen if not sent]
    assert [data for data, _ in received] == [b"NOT SIP AT ALL\r\n\r\n", options]
    assert received[0][1] is None
    parsed = received[1][1]
    assert isinstance(parsed, Request) and parsed.call_id == "rt-7"
    assert vias == [f"SIP/2.0/UDP {HOST}:{me};branch=z9hG4bKrt7;rport"]  # before §18.2.1
    assert [message for sent, _, message in seen if sent] == [None]
