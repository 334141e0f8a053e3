"""`sipline serve` under hostile input: garbage datagrams, an endless TCP header line and
10,000 connection attempts leave it answering, with its memory bounded.

The server runs as a real subprocess on loopback; the attacks come from this process's
own sockets, so nothing here depends on a peer's behaviour.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import HOST, ServeProcess, raise_nofile, start_serve

pytestmark = pytest.mark.interop

MAX_CONNECTIONS = 500
ATTEMPTS = 10_000


def options(port: int, tag: str, transport: str = "UDP") -> bytes:
    return (
        f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {HOST}:5999;branch=z9hG4bK-hostile-{tag};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{HOST}>;tag={tag}\r\n"
        f"To: <sip:{HOST}:{port}>\r\n"
        f"Call-ID: hostile-{tag}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def udp_options_answered(server: ServeProcess, tag: str) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.bind((HOST, 0))
        for _ in range(5):  # the answer may queue behind the attack's replies
            sock.sendto(options(server.port, tag), (HOST, server.port))
            try:
                while True:
                    data = sock.recv(65535)
                    if f"Call-ID: hostile-{tag}".encode() in data:
                        return data
            except TimeoutError:
                continue
    raise AssertionError(f"no answer to OPTIONS {tag}")


def tcp_options_answered(server: ServeProcess, tag: str) -> bytes:
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(options(server.port, tag, "TCP"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65535)
            if not chunk:
                break
            data += chunk
    return data


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[ServeProcess]:
    config = f"[limits]\nmax_connections = {MAX_CONNECTIONS}\nidle_timeout_s = 120\n"
    server = start_serve(tmp_path / "serve", config, tls=False)
    yield server
    assert server.alive(), "\n".join(server.lines[-20:])
    assert server.stop() == 0, "\n".join(server.lines[-20:])


def test_garbage_datagrams(guarded: ServeProcess) -> None:
    rng = random.Random(4475)
    template = options(guarded.port, "tmpl")
    before = guarded.rss_kib()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for i in range(5000):
            kind = i % 3
            if kind == 0:
                data = rng.randbytes(rng.randrange(1, 1400))
            elif kind == 1:  # a request cut short, or with a byte flipped
                cut = template[: rng.randrange(1, len(template))]
                data = cut if rng.random() < 0.5 else _flip(rng, template)
            else:  # a huge but well-framed start line and header
                data = b"OPTIONS sip:" + b"a" * rng.randrange(1000, 60000) + b" SIP/2.0\r\n\r\n"
            sock.sendto(data, (HOST, guarded.port))
            if i % 200 == 0:
                time.sleep(0.005)  # keep within what loopback buffers hold
    assert b"SIP/2.0 200 OK" in udp_options_answered(guarded, "after-garbage")
    status = guarded.status()
    assert status["malformed_requests"] > 1000
    assert guarded.rss_kib() - before < 50_000


def _flip(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]


def test_endless_header_line_is_cut_off(guarded: ServeProcess) -> None:
    before = guarded.rss_kib()
    with socket.create_connection((HOST, guarded.port), timeout=10) as sock:
        sock.sendall(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP ")
        sent, closed = 0, False
        chunk = b"a" * 65536
        try:
            while sent < 64 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        if not closed:
            sock.settimeout(5)
            try:
                while sock.recv(65536):
                    pass
            except ConnectionResetError:
                pass
            closed = True
    assert closed
    assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes of one header line"
    assert b"SIP/2.0 200 OK" in tcp_options_answered(guarded, "after-long-line")
    assert guarded.rss_kib() - before < 50_000


def test_ten_thousand_connections_are_bounded(guarded: ServeProcess) -> None:
    if raise_nofile(ATTEMPTS + 200) < ATTEMPTS + 100:
        pytest.skip("cannot open enough file descriptors here")
    before = guarded.rss_kib()
    sockets: list[socket.socket] = []
    try:
        for i in range(ATTEMPTS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex((HOST, guarded.port))
            sockets.append(sock)
            if i % 250 == 249:
                time.sleep(0.02)  # let the accept queue drain
        status = guarded.wait_status("connections", MAX_CONNECTIONS, timeout=20)
        assert status["connections"] <= MAX_CONNECTIONS
        # UDP service goes on while TCP is saturated; memory stays bounded.
        assert b"SIP/2.0 200 OK" in udp_options_answered(guarded, "while-saturated")
        assert guarded.rss_kib() - before < 100_000
    finally:
        for sock in sockets:
            sock.close()
    drained = guarded.wait_status("connections", 0, timeout=20)
    assert drained["connections"] == 0
    assert b"SIP/2.0 200 OK" in tcp_options_answered(guarded, "after-release")
