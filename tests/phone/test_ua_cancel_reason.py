"""A CANCEL's Reason (RFC 3326) says why the ringing stopped: a forking proxy cancels
the other branches with `SIP;cause=200` once one device answered."""

from __future__ import annotations

import asyncio
import socket

import pytest
from ua_helpers import HOST, agent

from sipline.phone.cancel_reason import cancel_text
from sipline.phone.events import EndedBy

_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _request(method: str, port: int, here: int, extra: str = "", body: str = "") -> bytes:
    head = (
        f"{method} sip:bob@{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{here};branch=z9hG4bK-fork-1\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: cancel-reason@{HOST}\r\nCSeq: 1 {method}\r\n"
        f"Contact: <sip:alice@{HOST}:{here}>\r\n{extra}"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ('Reason: SIP;cause=200;text="Call completed elsewhere"\r\n', "answered elsewhere"),
        ('Reason: SIP;cause=603;text="Declined"\r\n', "declined elsewhere"),
        ('Reason: Q.850;cause=16;text="Normal call clearing"\r\n', "Normal call clearing"),
        ("", "cancelled by the caller"),
    ],
)
async def test_the_cancel_reason_is_what_the_call_ends_with(reason: str, expected: str) -> None:
    async with agent("bob") as bob:
        port = bob.endpoint.local_address("UDP").port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((HOST, 0))
            sock.settimeout(5)
            here = sock.getsockname()[1]
            sock.sendto(_request("INVITE", port, here, body=_SDP), (HOST, port))
            theirs = await bob.next_call(5)
            sock.sendto(_request("CANCEL", port, here, reason), (HOST, port))
            ended = await asyncio.wait_for(theirs.ended, 5)
    assert expected in ended.reason and ended.by is EndedBy.REMOTE and ended.status == 487


def test_cancel_text_reads_lists_and_ignores_junk() -> None:
    assert cancel_text(['Q.850;cause=16, SIP;cause=200;text="x, y"']) == "answered elsewhere"
    assert cancel_text(["SIP;cause=600"]) == "busy everywhere"
    assert cancel_text(["garbage;;;", ""]) == "cancelled by the caller"
    assert cancel_text(['SIP;cause=487;text="Gave up"']) == "cancelled: Gave up"
