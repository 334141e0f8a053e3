"""Building requests (RFC 3261 §8.1.1) and responses (§8.2.6), and fresh identifiers.

Identifiers come from an injected `Entropy`: branches carry the §8.1.1.7 magic cookie,
tags and Call-IDs are long enough (≥ 32 random bits, §19.3) to be globally unique.
Responses copy the request's Via, From, Call-ID and CSeq fields byte for byte.
"""

from __future__ import annotations

import hashlib

from sipline.core.clock import Entropy, token_from_bytes
from sipline.core.headers import Headers
from sipline.core.message import Request, Response
from sipline.core.uri import Uri
from sipline.core.views import NameAddr

__all__ = [
    "MAGIC_COOKIE",
    "REASON_PHRASES",
    "build_request",
    "build_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "stateless_tag",
]

MAGIC_COOKIE = "z9hG4bK"  # §8.1.1.7

# §21 (and the RFCs that added codes since).
REASON_PHRASES = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    439: "First Hop Lacks Outbound Support",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
}


def new_branch(entropy: Entropy) -> str:
    return MAGIC_COOKIE + token_from_bytes(entropy.random_bytes(12))


def new_tag(entropy: Entropy) -> str:
    return token_from_bytes(entropy.random_bytes(8))


def stateless_tag(request: Request) -> str:
    """A To tag for a response sent without transaction state (§8.2.7): derived from the
    request's Call-ID, From and CSeq fields as received, so a retransmission is answered
    with the same tag."""
    h = hashlib.blake2b(digest_size=8)
    for key, line in zip(request.headers._keys, request.headers._lines, strict=True):
        if key in _STATELESS_TAG_KEYS:
            h.update(line)
    return "sl" + h.hexdigest()


_STATELESS_TAG_KEYS = frozenset({"call-id", "from", "cseq"})


def new_call_id(entropy: Entropy, host: str | None = None) -> str:
    cid = token_from_bytes(entropy.random_bytes(16))
    return f"{cid}@{host}" if host else cid


def build_request(
    method: str,
    uri: Uri,
    *,
    from_: NameAddr,
    to: NameAddr,
    call_id: str,
    cseq: int,
    via: str | list[str],
    contact: NameAddr | None = None,
    max_forwards: int = 70,
    routes: list[NameAddr] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> Request:
    """A request with the §8.1.1 mandatory fields in the conventional order.

    `via` is the complete value(s) including the branch parameter.
    """
    h = Headers()
    for v in [via] if isinstance(via, str) else via:
        h.add("Via", v)
    h.add("Max-Forwards", str(max_forwards))
    for route in routes or ():
        h.add("Route", str(route))
    h.add("From", str(from_))
    h.add("To", str(to))
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        h.add("Contact", str(contact))
    for name, value in extra or ():
        h.add(name, value)
    if content_type is not None:
        h.add("Content-Type", content_type)
    h.add("Content-Length", str(len(body)))
    return Request(method, uri, h, body)


_COPIED = ("via", "from", "call-id", "cseq")


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    copy_record_route: bool = False,
    extra: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to `request` per §8.2.6.2: Via, From, Call-ID and CSeq copied as
    received, To copied with `to_tag` added when the request's To has none (never on
    100 Trying, §8.2.6.2). With `copy_record_route`, Record-Route is copied too, as a
    UAS does for dialog-creating responses (§12.1.1)."""
    src = request.headers
    keys: list[str] = []
    lines: list[bytes] = []
    for key, line in zip(src._keys, src._lines, strict=True):
        if key in _COPIED or (copy_record_route and key == "record-route"):
            keys.append(key)
            lines.append(line)
        elif key == "to":
            keys.append(key)
            if to_tag is not None and status != 100 and request.to.tag is None:
                line = line.rstrip(b" \t") + f";tag={to_tag}".encode()
            lines.append(line)
    h = Headers(keys, lines)
    for name, value in extra or ():
        h.add(name, value)
    if content_type is not None:
        h.add("Content-Type", content_type)
    h.add("Content-Length", str(len(body)))
    if reason is None:
        reason = REASON_PHRASES.get(status, "")
    return Response(status, reason, h, body)
