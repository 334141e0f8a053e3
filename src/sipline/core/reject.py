"""Stateless error responses for requests too broken to parse fully (RFC 3261 §8.2.6, §16.3).

When `parse_message` or the transaction layer rejects a request, a server still owes
the sender an answer if it can tell where the answer goes: this scans the raw header
lines for Via, From, To, Call-ID and CSeq and copies them byte for byte, as §8.2.6.2
asks, without trusting anything else in the message.
"""

from __future__ import annotations

from sipline.core.headers import COMPACT_FORMS

__all__ = ["minimal_response"]

_COPY = ("via", "from", "to", "call-id", "cseq")
# A Via is all a response needs to be routed back (§18.2.2); the other headers are
# copied when present. RFC 4475 §3.1.2.4 ('insuf': no From, To or Call-ID): ideally 400.
_REQUIRED = ("via",)


def minimal_response(data: bytes, status: int, reason: str, *, to_tag: str | None) -> bytes | None:
    """A response to the request in `data` with the copied fields, or None when the
    request is a response, an ACK, or has no Via to route a response by."""
    head_end = data.find(b"\r\n\r\n")
    head = data if head_end < 0 else data[:head_end]
    lines = head.lstrip(b"\r\n").split(b"\r\n")
    start = lines[0]
    if start[:4].upper() == b"SIP/" or start.startswith(b"ACK "):
        return None  # never answer a response or an ACK (§17.2.3)
    copied: list[bytes] = []
    seen: set[str] = set()
    current: str | None = None
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            if current is not None and copied:
                copied[-1] += b"\r\n" + line
            continue
        name, colon, _ = line.partition(b":")
        if not colon:
            current = None
            continue
        key = name.strip(b" \t").decode("latin-1").lower()
        key = COMPACT_FORMS.get(key, key)
        current = key if key in _COPY else None
        if current is not None:
            if current == "to" and to_tag is not None and b";tag=" not in line.replace(b" ", b""):
                line = line.rstrip(b" \t") + f";tag={to_tag}".encode()
            copied.append(line)
            seen.add(current)
    if not all(k in seen for k in _REQUIRED):
        return None
    status_line = f"SIP/2.0 {status} {reason}".encode("utf-8", "replace")
    return b"\r\n".join([status_line, *copied, b"Content-Length: 0"]) + b"\r\n\r\n"
