"""Shared builders and a recorder for the transaction-layer tests."""

from __future__ import annotations

from collections.abc import Callable

from sipline.core.builders import build_response
from sipline.core.message import Request, Response, parse_message
from sipline.core.transaction import TransactionLayer, build_ack
from sipline.core.transaction.events import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    TransportFailed,
)

TEMPLATE = (
    "{method} {uri} SIP/2.0\r\n"
    "Via: SIP/2.0/{transport} {sent_by};branch={branch}\r\n"
    "Max-Forwards: 70\r\n"
    "Route: <sip:ss1.atlanta.example.com;lr>\r\n"
    "To: Bob <sip:bob@biloxi.example.com>{to_tag}\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    "CSeq: {cseq} {cseq_method}\r\n"
    "Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)


def request(
    method: str = "INVITE",
    *,
    branch: str = "z9hG4bK74bf9",
    transport: str = "UDP",
    sent_by: str = "client.atlanta.example.com:5060",
    cseq: int = 1,
    cseq_method: str | None = None,
    uri: str = "sip:bob@biloxi.example.com",
    to_tag: str | None = None,
) -> Request:
    text = TEMPLATE.format(
        method=method,
        uri=uri,
        transport=transport,
        sent_by=sent_by,
        branch=branch,
        cseq=cseq,
        cseq_method=cseq_method or method,
        to_tag=f";tag={to_tag}" if to_tag else "",
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int, *, to_tag: str | None = "8321234356") -> Response:
    """A response to `req` as it would arrive from the wire."""
    msg = parse_message(build_response(req, status, to_tag=to_tag).to_bytes())
    assert isinstance(msg, Response)
    return msg


def ack_for(req: Request, resp: Response) -> Request:
    """The ACK a peer's INVITE client transaction sends for a non-2xx (same branch)."""
    msg = parse_message(build_ack(req, resp).to_bytes())
    assert isinstance(msg, Request)
    return msg


def describe(ev: TransactionEvent) -> str:
    if isinstance(ev, RequestReceived):
        return f"RequestReceived {ev.request.method}"
    if isinstance(ev, CancelReceived):
        return f"CancelReceived invite={'yes' if ev.invite_key else 'no'}"
    if isinstance(ev, AckReceived):
        return f"AckReceived {'matched' if ev.key else 'unmatched'}"
    if isinstance(ev, ResponseReceived):
        return f"ResponseReceived {ev.response.status}"
    if isinstance(ev, StrayResponse):
        return f"StrayResponse {ev.response.status}"
    if isinstance(ev, TransactionTimedOut):
        return f"TimedOut {ev.timer.name}"
    if isinstance(ev, TransportFailed):
        return "TransportFailed"
    assert isinstance(ev, TransactionTerminated)
    return "Terminated"


def start_line(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode()
    if line.startswith("SIP/2.0 "):
        return line[8:11]  # the status code
    return line.split(" ", 1)[0]  # the method


def drain(layer: TransactionLayer) -> tuple[list[str], list[str]]:
    sent = [start_line(o.data) for o in layer.datagrams_to_send()]
    events: list[str] = []
    while (ev := layer.next_event()) is not None:
        events.append(describe(ev))
    return sent, events


Row = tuple[float, str, list[str], list[str], float | None]


class Recorder:
    """Builds a golden table: (now, input) -> (messages sent, events, next deadline)."""

    def __init__(self, layer: TransactionLayer) -> None:
        self.layer = layer
        self.rows: list[Row] = []

    def at(self, now: float, label: str, fn: Callable[[], object]) -> None:
        fn()
        sent, events = drain(self.layer)
        self.rows.append((now, label, sent, events, self.layer.next_deadline()))

    def timers_until(self, end: float) -> None:
        """Call handle_timers exactly at each deadline up to `end`."""
        while (d := self.layer.next_deadline()) is not None and d <= end:
            self.at(d, "timers", lambda d=d: self.layer.handle_timers(now=d))  # type: ignore[misc]
