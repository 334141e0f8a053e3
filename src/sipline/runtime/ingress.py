"""Where a received request came from, and where its responses go (RFC 3261 §18.2).

`inbound_for` notes the real source of a request in its top Via (§18.2.1, RFC 3581
rport) and works out the address its responses go to (§18.2.2); `malformed_answer`
is the stateless error response to a request too broken to parse (§8.2.7).
"""

from __future__ import annotations

from typing import Final

from sipline.core.builders import new_tag
from sipline.core.clock import Entropy
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request
from sipline.core.reject import minimal_response
from sipline.transport import Source, Target
from sipline.transport.base import normalize_host

__all__ = ["DEFAULT_PORT", "Inbound", "inbound_for", "is_response", "malformed_answer"]

DEFAULT_PORT: Final = {"UDP": 5060, "TCP": 5060, "TLS": 5061, "WS": 80, "WSS": 443}


class Inbound:
    """Where a request came from and where its responses go (§18.2.2, RFC 3581)."""

    __slots__ = ("reply", "source")

    def __init__(self, source: Source, reply: Target) -> None:
        self.source = source
        self.reply = reply

    @property
    def transport(self) -> str:
        return self.source.transport

    @property
    def remote(self) -> tuple[str, int]:
        return self.source.remote


def inbound_for(request: Request, source: Source) -> Inbound:
    """§18.2.1: note the real source in the top Via (received, RFC 3581 rport), and
    work out where responses go (§18.2.2)."""
    via = request.top_via
    host, port = source.remote
    changed = False
    if normalize_host(via.host) != host:
        via.params.set("received", host)
        changed = True
    if via.has_rport:
        via.params.set("rport", str(port))
        if "received" not in via.params:
            via.params.set("received", host)
        changed = True
    if changed:
        request.replace_top_via(via)
    if source.transport == "UDP":
        reply_port = port if via.has_rport else (via.port or 5060)
        reply = Target("UDP", host, reply_port)
    else:
        reply = Target(source.transport, host, via.port or DEFAULT_PORT[source.transport])
    return Inbound(source, reply)


def is_response(data: bytes) -> bool:
    """Whether unparsable bytes look like a response (dropped: nobody to answer)."""
    return data.lstrip(b"\r\n")[:4].upper() == b"SIP/"


def malformed_answer(data: bytes, exc: RemoteProtocolError, entropy: Entropy) -> bytes | None:
    """The stateless answer to a request that failed to parse with `exc` (its status,
    e.g. 400 or 513), or None when too little of it survived to answer."""
    return minimal_response(data, exc.status, exc.reason, to_tag=new_tag(entropy))
