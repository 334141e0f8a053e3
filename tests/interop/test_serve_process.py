"""`sipline serve` as a process: one log line per listener, a clear error when a port is
taken, a clean stop on SIGINT and SIGTERM, malformed responses dropped and counted."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from interop_helpers import HOST, free_port_pair, start_serve

pytestmark = pytest.mark.interop


def test_one_line_per_listener_and_clean_stop(tmp_path: Path) -> None:
    server = start_serve(tmp_path)
    listening = [line for line in server.lines if "listening on" in line]
    assert len(listening) == 3, server.lines
    assert any(f"udp:{HOST}:{server.port}" in line for line in listening)
    assert any(f"tcp:{HOST}:{server.port}" in line for line in listening)
    assert any(f"tls:{HOST}:{server.tls_port}" in line for line in listening)
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=10) == 0
    server.stop()


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    server = start_serve(tmp_path, tls=False)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0
    server.stop()


def test_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port_pair()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((HOST, port))
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from sipline.cli.main import main; main()",
                "serve",
                "--listen",
                f"udp:{HOST}:{port}",
                "--db",
                str(tmp_path / "sipline.db"),
            ],
            capture_output=True,
            timeout=30,
            check=False,
            cwd=tmp_path,
        )
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert f"cannot listen on udp:{HOST}:{port}" in err
    assert "address already in use" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "garbage",
    [
        b"SIP/2.0 200 OK\r\nVia: broken\r\n\r\n",
        b"SIP/2.0 999 Nope\r\n\r\n",
        b"SIP/2.0 200 OK\r\nCSeq: x\r\n\r\n",
    ],
)
def test_malformed_responses_are_dropped_and_counted(tmp_path: Path, garbage: bytes) -> None:
    server = start_serve(tmp_path, tls=False)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.5)
            sock.sendto(garbage, (HOST, server.port))
            with pytest.raises(TimeoutError):
                sock.recv(65535)  # a response is never answered
        status = server.wait_status("malformed_responses", 1, timeout=5)
        assert status["malformed_responses"] == 1
        assert status["malformed_requests"] == 0
    finally:
        assert server.stop() == 0
