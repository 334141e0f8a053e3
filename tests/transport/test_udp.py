"""UDP: both directions on IPv4 and IPv6, keep-alives, garbage, STUN."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Callable

import pytest
from transport_helpers import HOSTS, Errors, Inbox, request, response

from sipline.transport import Source, Target, TransportError, TransportLayer

MakeLayer = Callable[..., tuple[TransportLayer, Inbox]]


async def raw_udp(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


@pytest.mark.parametrize("host", HOSTS)
async def test_request_and_response(make_layer: MakeLayer, host: str) -> None:
    alice, alice_inbox = make_layer()
    bob, bob_inbox = make_layer()
    a = await alice.listen_udp(host, 0)
    b = await bob.listen_udp(host, 0)
    assert a.transport == "UDP"
    assert a.local[0] == host
    assert a.local[1] != 0

    alice.send(request(), Target("UDP", host, b.local[1]))
    data, source = await bob_inbox.get()
    assert data == request()
    assert source == Source("UDP", a.local, b.local, None)

    bob.send(response(), Target("UDP", *source.remote))
    data, source = await alice_inbox.get()
    assert data == response()
    assert source.remote == b.local
    assert alice.stats.messages_out == bob.stats.messages_in == 1
    assert alice.stats.bytes_out == len(request())


async def test_send_from_chosen_local_socket(make_layer: MakeLayer) -> None:
    alice, _ = make_layer()
    bob, bob_inbox = make_layer()
    await alice.listen_udp("127.0.0.1", 0)
    second = await alice.listen_udp("127.0.0.1", 0)
    b = await bob.listen_udp("127.0.0.1", 0)
    alice.send(request(), Target("UDP", "127.0.0.1", b.local[1]), local=second.local)
    _, source = await bob_inbox.get()
    assert source.remote == second.local


async def test_keepalives_and_garbage(make_layer: MakeLayer) -> None:
    bob, inbox = make_layer()
    b = await bob.listen_udp("127.0.0.1", 0)
    sock = await raw_udp("127.0.0.1")
    with sock:
        for datagram in (b"\r\n\r\n", b"\r\n", b"", b"\x17\x03garbage\xff", b"\r\n" + request()):
            sock.sendto(datagram, b.local)
        # Garbage is handed up as bytes (the message layer decides); CRLFs are not.
        data, _ = await inbox.get()
        assert data == b"\x17\x03garbage\xff"
    # Leading CRLFs before a message are stripped (RFC 3261 §7.5).
    data, _ = await inbox.get()
    assert data == request()
    assert bob.stats.keepalives_in == 3
    assert inbox.queue.empty()


async def test_callback_errors_do_not_stop_receiving() -> None:
    received: list[bytes] = []

    def on_message(data: bytes, source: Source) -> None:
        received.append(data)
        if len(received) == 1:
            raise RuntimeError("application bug")

    layer = TransportLayer(on_message)
    try:
        local = (await layer.listen_udp("127.0.0.1", 0)).local
        layer.send(b"ONE", Target("UDP", *local))
        layer.send(b"TWO", Target("UDP", *local))
        async with asyncio.timeout(3):
            while len(received) < 2:
                await asyncio.sleep(0.005)
    finally:
        await layer.close()
    assert received == [b"ONE", b"TWO"]


async def test_stun_binding_request_is_answered(make_layer: MakeLayer) -> None:
    bob, inbox = make_layer()
    b = await bob.listen_udp("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    sock = await raw_udp("127.0.0.1")
    with sock:
        transaction = bytes(range(12))
        sock.sendto(struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, transaction), b.local)
        reply = await asyncio.wait_for(loop.sock_recv(sock, 2048), 3)
        kind, length, cookie, tid = struct.unpack_from("!HHI12s", reply)
        assert (kind, cookie, tid) == (0x0101, 0x2112A442, transaction)
        attr_type, attr_len, _, family, xport = struct.unpack_from("!HHBBH", reply, 20)
        assert (attr_type, attr_len, family, length) == (0x0020, 8, 0x01, 12)
        xaddr = int.from_bytes(reply[28:32], "big") ^ 0x2112A442
        port = xport ^ 0x2112
        assert (str(ipaddress.IPv4Address(xaddr)), port) == sock.getsockname()
    assert inbox.queue.empty()
    assert bob.stats.keepalives_in == 1


async def test_no_socket_for_family_reports_error(make_layer: MakeLayer) -> None:
    layer, _ = make_layer()
    await layer.listen_udp("127.0.0.1", 0)
    errors = Errors()
    layer.send(b"x", Target("UDP", "::1", 5060), on_error=errors)
    assert isinstance(await errors.get(), TransportError)
    assert layer.stats.send_errors == 1


async def test_udp_target_must_be_an_ip_address(make_layer: MakeLayer) -> None:
    layer, _ = make_layer()
    await layer.listen_udp("127.0.0.1", 0)
    errors = Errors()
    layer.send(b"x", Target("UDP", "localhost", 5060), on_error=errors)
    assert "not an IP address" in str(await errors.get())


async def test_listen_on_used_port_raises_transport_error(make_layer: MakeLayer) -> None:
    layer, _ = make_layer()
    taken = await layer.listen_udp("127.0.0.1", 0)
    with pytest.raises(TransportError):
        await layer.listen_udp("127.0.0.1", taken.local[1])
