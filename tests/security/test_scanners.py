"""Known scanners are refused at once: SIPVicious' svmap (User-Agent
"friendly-scanner") from 127.0.0.2 finds nothing at a real `sipline serve`, its address
is banned (a plain OPTIONS from it is ignored too) and the ban is logged; a client on
another address is answered throughout."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "interop"))
from interop_helpers import HOST, need, start_serve

pytestmark = pytest.mark.interop


def options(port: int, source: str, ua: str = "legit-phone/1.0") -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(1.0)
        local = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{local};branch=z9hG4bK-sc{local};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:100@{HOST}>;tag=sc\r\nTo: <sip:100@{HOST}>\r\n"
            f"Call-ID: scan-{local}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {ua}\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        sock.sendto(request, (HOST, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def test_svmap_finds_nothing_and_its_address_is_banned(tmp_path: Path) -> None:
    svmap = need("svmap")
    server = start_serve(tmp_path / "serve", tls=False, workers=2)
    try:
        out = subprocess.run(
            [svmap, "-b", "127.0.0.2", "-p", str(server.port), HOST],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        print("\n" + (out.stdout + out.stderr).strip())
        assert "found nothing" in out.stdout + out.stderr
        assert options(server.port, "127.0.0.2") is None  # banned: ignored
        answer = options(server.port, "127.0.0.3")
        assert answer is not None and answer.startswith(b"SIP/2.0 200")
        server.wait_line("scanner-refused src=127.0.0.2:", timeout=5)
        line = server.wait_line("scanner-refused", timeout=1)
        assert 'ua="friendly-scanner"' in line
    finally:
        code = server.stop()
    assert code == 0, "\n".join(server.lines[-20:])
