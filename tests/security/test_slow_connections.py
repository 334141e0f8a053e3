"""TCP against a real `sipline serve`: slowloris connections (a byte a second) are
closed by the message deadline, a legitimate REGISTER is answered while attackers
hold the connection limit, and one address holds at most its share of connections."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "interop"))
from flood_load import DOMAIN, register_text
from interop_helpers import HOST, ServeProcess, raise_nofile, start_serve

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ATTACKERS = [f"127.0.0.{10 + i}" for i in range(8)]


def connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=5, source_address=(host, 0))
    sock.setblocking(False)
    return sock


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class Trickle:
    """Write one byte a second to each socket of a request that never ends."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self.socks = socks
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        data = b"REGISTER sip:" + b"x" * 10_000
        i = 0
        while not self.stop.wait(1.0):
            for sock in self.socks:
                with contextlib.suppress(OSError):
                    sock.send(data[i : i + 1])
            i += 1

    def end(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.socks:
            sock.close()


def tcp_register(server: ServeProcess, host: str) -> bytes:
    with socket.create_connection((HOST, server.port), timeout=5, source_address=(host, 0)) as s:
        local = s.getsockname()
        data = register_text("alice", local, server.port, f"tcp-{host}", 1)
        s.sendall(data.replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65535)
            if not chunk:
                break
            answer += chunk
    return answer


def test_slow_connections_are_closed_and_a_client_still_gets_in(tmp_path: Path) -> None:
    raise_nofile(4096)
    config = f'[server]\ndomains = ["{DOMAIN}"]\n[limits]\nmax_connections = 100\n'
    server = start_serve(tmp_path / "serve", config, tls=False, workers=2)
    socks: list[socket.socket] = []
    trickle = None
    try:
        for host in ATTACKERS:  # 8 addresses x 15 = 120 connections for a limit of 100
            socks.extend(connect(host, server.port) for _ in range(15))
        trickle = Trickle(socks)
        time.sleep(2.0)
        started = time.monotonic()
        answer = tcp_register(server, "127.0.0.3")
        took = time.monotonic() - started
        assert answer.startswith(b"SIP/2.0 401"), answer[:80]
        # Every trickling connection is closed by the deadline (10 s), well before the
        # idle timeout (300 s).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(closed(s) for s in socks):
            time.sleep(0.5)
        open_left = sum(not closed(s) for s in socks)
        status = server.status()
        print(
            f"\n120 slow connections (limit 100): legitimate REGISTER answered in {took:.2f} s;"
            f" {open_left} still open after the deadline; message_timeouts="
            f"{status['message_timeouts']} connections_evicted={status['connections_evicted']}"
        )
        assert open_left == 0
        assert status["message_timeouts"] + status["connections_evicted"] >= 100
    finally:
        if trickle is not None:
            trickle.end()
        code = server.stop()
    assert code == 0, "\n".join(server.lines[-20:])


def test_one_address_holds_at_most_its_share_of_connections(tmp_path: Path) -> None:
    config = f'[server]\ndomains = ["{DOMAIN}"]\n[limits]\nmax_connections_per_source = 8\n'
    server = start_serve(tmp_path / "serve", config, tls=False, workers=1)
    socks: list[socket.socket] = []
    try:
        socks.extend(connect("127.0.0.2", server.port) for _ in range(20))
        time.sleep(1.0)
        open_now = sum(not closed(s) for s in socks)
        answer = tcp_register(server, "127.0.0.3")
        print(f"\n20 connections from one address, cap 8: {open_now} kept open")
        assert open_now == 8
        assert answer.startswith(b"SIP/2.0 401")
        assert any("conn-limit src=127.0.0.2:" in line for line in server.lines)
    finally:
        for sock in socks:
            sock.close()
        code = server.stop()
    assert code == 0, "\n".join(server.lines[-20:])
