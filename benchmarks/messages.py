"""The messages the parser benchmark feeds every implementation, and what they hold.

A re-INVITE with an SDP offer (so both tags and a Route header are present, as on
an in-dialog request a proxy forwards) and the 200 OK answering it, as a UA would
send them back through the proxy. Both are written the way common user agents
write them: long-form header names, one value per line, CRLF line ends.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "INVITE",
    "INVITE_FIELDS",
    "OK_200",
    "OK_FIELDS",
    "PROXY_BRANCH",
    "PROXY_VIA",
    "InviteFields",
    "ResponseFields",
]


def _message(start: str, headers: list[str], body: str) -> bytes:
    lines = [start, *headers, f"Content-Length: {len(body.encode())}", "", body]
    return "\r\n".join(lines).encode()


_OFFER = (
    "v=0\r\n"
    "o=alice 2890844526 2890844527 IN IP4 198.51.100.33\r\n"
    "s=-\r\n"
    "c=IN IP4 198.51.100.33\r\n"
    "t=0 0\r\n"
    "m=audio 49172 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)

_ANSWER = (
    "v=0\r\n"
    "o=bob 2808844564 2808844565 IN IP4 203.0.113.7\r\n"
    "s=-\r\n"
    "c=IN IP4 203.0.113.7\r\n"
    "t=0 0\r\n"
    "m=audio 3456 RTP/AVP 0 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)

_ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO, UPDATE"

INVITE = _message(
    "INVITE sip:bob@203.0.113.7:5060;transport=udp SIP/2.0",
    [
        "Via: SIP/2.0/UDP edge.atlanta.example.com:5060;branch=z9hG4bK2d4790.1",
        "Via: SIP/2.0/UDP 198.51.100.33:5060;received=198.51.100.33;rport=5060;branch=z9hG4bK74bf9",
        "Max-Forwards: 69",
        "Route: <sip:proxy.biloxi.example.com;lr>",
        'From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=9fxced76sl',
        'To: "Bob" <sip:bob@biloxi.example.com>;tag=8321234356',
        "Call-ID: 3848276298220188511@atlanta.example.com",
        "CSeq: 2 INVITE",
        "Contact: <sip:alice@198.51.100.33:5060;transport=udp>",
        f"Allow: {_ALLOW}",
        "Supported: replaces, timer, norefersub",
        "User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)",
        "Content-Type: application/sdp",
    ],
    _OFFER,
)

OK_200 = _message(
    "SIP/2.0 200 OK",
    [
        "Via: SIP/2.0/UDP proxy.biloxi.example.com:5060;branch=z9hG4bK83749.1",
        "Via: SIP/2.0/UDP edge.atlanta.example.com:5060;branch=z9hG4bK2d4790.1",
        "Record-Route: <sip:proxy.biloxi.example.com;lr>",
        'From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=9fxced76sl',
        'To: "Bob" <sip:bob@biloxi.example.com>;tag=8321234356',
        "Call-ID: 3848276298220188511@atlanta.example.com",
        "CSeq: 2 INVITE",
        "Contact: <sip:bob@203.0.113.7:5060;transport=udp>",
        f"Allow: {_ALLOW}",
        "Supported: replaces, timer",
        "Server: Grandstream GXP2170 1.0.11.23",
        "Content-Type: application/sdp",
    ],
    _ANSWER,
)

# The Via a proxy adds in front of the others when it forwards the INVITE.
PROXY_BRANCH = "z9hG4bK83749.1"
PROXY_VIA = f"SIP/2.0/UDP proxy.biloxi.example.com:5060;branch={PROXY_BRANCH}"


@dataclass(frozen=True, slots=True)
class InviteFields:
    """What the proxy path reads from a request, the same whatever the parser."""

    request_uri_host: str
    via_branch: str
    via_host: str
    via_port: int
    max_forwards: int
    route_host: str
    to_tag: str
    from_tag: str
    call_id: str
    cseq: int
    cseq_method: str


@dataclass(frozen=True, slots=True)
class ResponseFields:
    """What the proxy path reads from a response."""

    status: int
    via_branch: str
    cseq: int
    cseq_method: str
    to_tag: str


INVITE_FIELDS = InviteFields(
    request_uri_host="203.0.113.7",
    via_branch="z9hG4bK2d4790.1",
    via_host="edge.atlanta.example.com",
    via_port=5060,
    max_forwards=69,
    route_host="proxy.biloxi.example.com",
    to_tag="8321234356",
    from_tag="9fxced76sl",
    call_id="3848276298220188511@atlanta.example.com",
    cseq=2,
    cseq_method="INVITE",
)

OK_FIELDS = ResponseFields(
    status=200,
    via_branch=PROXY_BRANCH,
    cseq=2,
    cseq_method="INVITE",
    to_tag="8321234356",
)
