"""Messages for the dialog tests: an INVITE from Alice and the responses Bob's side sends."""

from __future__ import annotations

from sipline.core.builders import build_response
from sipline.core.message import Request, Response, parse_message

INVITE = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n"
    "Max-Forwards: 70\r\n"
    "{record_route}"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: {cseq} INVITE\r\n"
    "Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)


def invite(cseq: int = 314159, record_route: list[str] | None = None) -> Request:
    rr = "".join(f"Record-Route: {r}\r\n" for r in record_route or [])
    msg = parse_message(INVITE.format(cseq=cseq, record_route=rr).encode())
    assert isinstance(msg, Request)
    return msg


def answer(
    request: Request,
    status: int,
    tag: str | None,
    *,
    contact: str | None = "<sip:bob@192.0.2.4>",
    record_route: list[str] | None = None,
) -> Response:
    """A response as it reaches the caller: Record-Route as the proxies left it."""
    extra = [("Record-Route", r) for r in record_route or []]
    if contact is not None:
        extra.append(("Contact", contact))
    response = build_response(request, status, to_tag=tag, extra=extra)
    # Through the wire and back, as a received message would be.
    parsed = parse_message(response.to_bytes())
    assert isinstance(parsed, Response)
    return parsed


def reparse(request: Request) -> Request:
    """A request as the far end receives it (a Via is added first, as a UA would)."""
    request.headers.add("Via", "SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKtest", first=True)
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, Request)
    return parsed
