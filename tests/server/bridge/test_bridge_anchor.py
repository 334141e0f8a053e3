"""`MediaBridges` as the proxy sees it, with no network but the bridge's own sockets:
a 2xx retransmission outside any transaction gets the same rewritten answer, another
fork's late 2xx is left alone, a BYE ends the call's bridges."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_bridge_plan import CHROMIUM
from test_bridge_signalling import ANSWER

from sipline.core.message import Request, Response, parse_message
from sipline.server.bridge.anchor import MediaBridges
from sipline.server.bridge.plan import SdpKind, sdp_kind
from sipline.server.bridge.webrtc import use_media_address
from sipline.testing.fakes import SeededEntropy


def message(start: str, headers: list[str], body: bytes = b"") -> bytes:
    head = "\r\n".join([start, *headers, f"Content-Length: {len(body)}", "", ""])
    return head.encode() + body


COMMON = [
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc",
    "From: <sip:alice@example.com>;tag=a1",
    "Call-ID: anchor-test",
    "CSeq: 1 INVITE",
    "Content-Type: application/sdp",
]


def invite() -> Request:
    raw = message("INVITE sip:bob@example.com SIP/2.0", [*COMMON, "To: <sip:bob@example.com>"])
    request = parse_message(raw + CHROMIUM)
    assert isinstance(request, Request)
    request.body = CHROMIUM
    return request


def ok(to_tag: str, cseq: str = "1 INVITE") -> Response:
    headers = [h for h in COMMON if not h.startswith("CSeq")]
    headers += [f"To: <sip:bob@example.com>;tag={to_tag}", f"CSeq: {cseq}"]
    response = parse_message(message("SIP/2.0 200 OK", headers, ANSWER))
    assert isinstance(response, Response)
    return response


@pytest.fixture
async def bridges() -> AsyncIterator[MediaBridges]:
    use_media_address(["127.0.0.1"])
    b = MediaBridges(host="127.0.0.1", entropy=SeededEntropy(7))
    try:
        yield b
    finally:
        await b.stop()


async def test_retransmitted_2xx_gets_the_same_answer(bridges: MediaBridges) -> None:
    leg = await bridges.anchor(invite(), CHROMIUM, webrtc_target=False)
    assert leg is not None and sdp_kind(leg.body) is SdpKind.PLAIN
    first = ok("b1")
    leg.response(first)
    assert sdp_kind(first.body) is SdpKind.WEBRTC
    again = ok("b1")
    bridges.stray_response(again)
    assert again.body == first.body
    late_fork = ok("b2")  # another branch's 2xx: not ours to rewrite
    bridges.stray_response(late_fork)
    assert late_fork.body == ANSWER
    reinvite_ok = ok("b1", "2 INVITE")  # a re-INVITE's 2xx is its transaction's business
    bridges.stray_response(reinvite_ok)
    assert reinvite_ok.body == ANSWER


async def test_a_bye_ends_the_calls_bridges(bridges: MediaBridges) -> None:
    request = invite()
    leg = await bridges.anchor(request, CHROMIUM, webrtc_target=False)
    assert leg is not None
    leg.response(ok("b1"))
    assert len(bridges) == 1
    bye = parse_message(
        message(
            "BYE sip:bob@127.0.0.1 SIP/2.0",
            [
                *[h for h in COMMON if not h.startswith(("CSeq", "Content-Type"))],
                "To: <sip:bob@example.com>;tag=b1",
                "CSeq: 2 BYE",
            ],
        )
    )
    assert isinstance(bye, Request)
    assert await bridges.anchor(bye, b"", webrtc_target=False) is None
    assert len(bridges) == 0


async def test_a_failed_branch_closes_its_bridge(bridges: MediaBridges) -> None:
    leg = await bridges.anchor(invite(), CHROMIUM, webrtc_target=False)
    assert leg is not None
    busy = parse_message(
        message("SIP/2.0 486 Busy Here", [*COMMON[:-1], "To: <sip:bob@example.com>;tag=b9"])
    )
    assert isinstance(busy, Response)
    leg.response(busy)
    assert len(bridges) == 0 and not bridges.calls
