"""Requests the transaction layer builds itself: the ACK for a non-2xx final response
(RFC 3261 §17.1.1.3) and CANCEL (§9.1), both copied from the request they refer to.

The copied fields keep their raw bytes; only CSeq (new method) and, for the ACK, To
(from the response, with its tag) differ.
"""

from __future__ import annotations

from sipline.core.headers import Headers
from sipline.core.message import Request, Response

__all__ = ["build_ack", "build_cancel"]


def _derive(request: Request, method: str, to_line: bytes) -> Request:
    src = request.headers
    h = Headers()
    # A single Via, equal to the top Via of the request (§17.1.1.3, §9.1).
    top = src.raw("via")[0]
    if b"," in top:
        h.add("Via", str(request.top_via))
    else:
        h.add_raw("via", top)
    max_forwards = src.raw("max-forwards")
    if max_forwards:
        h.add_raw("max-forwards", max_forwards[0])
    else:
        h.add("Max-Forwards", "70")
    # The same Route set as the request, so both follow its path (§17.1.1.3, §9.1).
    for line in src.raw("route"):
        h.add_raw("route", line)
    h.add_raw("from", src.raw("from")[0])
    h.add_raw("to", to_line)
    h.add_raw("call-id", src.raw("call-id")[0])
    h.add("CSeq", f"{request.cseq.seq} {method}")
    h.add("Content-Length", "0")
    return Request(method, request.uri_text, h)


def build_ack(invite: Request, response: Response) -> Request:
    """§17.1.1.3: Request-URI, Call-ID, From, CSeq number, top Via and Route of the
    INVITE; To of the response (it carries the UAS's tag); CSeq method ACK."""
    return _derive(invite, "ACK", response.headers.raw("to")[0])


def build_cancel(request: Request) -> Request:
    """§9.1: a CANCEL for `request`, with its Request-URI, Call-ID, To, From, CSeq number,
    top Via (so the same branch) and Route."""
    return _derive(request, "CANCEL", request.headers.raw("to")[0])
