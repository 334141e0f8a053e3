"""Every invalid request of RFC 4475 and RFC 5118, sent over UDP to a real server, is
answered as `sipline check` says it should be (RFC 3261 §8.2.6, RFC 4475 §3.1.2):
the status, and a reason phrase that names the defect."""

from __future__ import annotations

import asyncio
import csv
import re
import socket
from pathlib import Path

import pytest
from server_helpers import server_target

from sipline.cli.check import check_bytes
from sipline.server.sip_server import SipServer

DATA = Path(__file__).parents[1] / "data"


def _invalid_requests() -> list[tuple[str, bytes]]:
    found = []
    for folder, wire in (("rfc4475", "rfc4475"), ("rfc5118", "rfc5118/wire")):
        with (DATA / folder / "MANIFEST.tsv").open(encoding="utf-8", newline="") as f:
            names = [row["file"] for row in csv.DictReader(f, delimiter="\t")]
        for name in names:
            data = (DATA / wire / name).read_bytes()
            result = check_bytes(name, data)
            if result.kind == "request" and not result.valid:
                found.append((name, data))
    return found


INVALID = _invalid_requests()


_VIA = re.compile(rb"^((?:Via|v)[ \t]*:[ \t]*SIP/2\.0/)(?:UDP|TCP)([ \t]+)[^;\r\n]+", re.I | re.M)


def _via_to(data: bytes, port: int) -> bytes:
    """The top Via's sent-by pointed at our socket, so that the answer routed by it
    (§18.2.2) comes back to us; a Via that is itself the defect is left alone."""
    return _VIA.sub(lambda m: m.group(1) + b"UDP" + m.group(2) + b"127.0.0.1:%d" % port, data, 1)


_VIA_LINE = re.compile(rb"^(?:Via|v)[ \t]*:", re.I | re.M)


def _status_line(datagram: bytes) -> str:
    return datagram.split(b"\r\n", 1)[0].decode("utf-8", "replace")


@pytest.mark.parametrize(("name", "data"), INVALID, ids=[n for n, _ in INVALID])
async def test_invalid_request_is_answered_as_check_says(
    server: SipServer, name: str, data: bytes
) -> None:
    expected = check_bytes(name, data).response
    assert expected is not None
    target = server_target(server)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        data = _via_to(data, sock.getsockname()[1])
        await loop.sock_sendto(sock, data, (target.host, target.port))
        if not _VIA_LINE.search(data):
            # No Via: nowhere to route an answer (§8.2.6.2 copies it), so none is sent.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(loop.sock_recv(sock, 65535), 1.0)
            return
        answer = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5.0)
    assert _status_line(answer) == expected
