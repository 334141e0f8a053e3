"""§16.6 steps 1-8: the request a branch sends, made from the one received."""

from __future__ import annotations

from sipline.core.builders import MAGIC_COOKIE
from sipline.core.message import Request
from sipline.runtime.endpoint import Endpoint
from sipline.server.proxy.local import LocalNames
from sipline.server.proxy.targets import Leg

__all__ = ["DIALOG_CREATING", "branch_request"]

DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})


def branch_request(
    original: Request,
    leg: Leg,
    *,
    endpoint: Endpoint,
    local: LocalNames,
    record_route: bool,
    inbound_transport: str,
    loop_hash: str,
    inbound_flow: str | None = None,
) -> Request:
    """A copy of `original` for `leg`, with our Via on top (branch: the §16.6 step 8
    loop hash, a dot, a random part; see sipline.server.proxy.stray). `inbound_flow`:
    the token of the stream flow `original` came on, for our Record-Route on its side."""
    # An untouched Request-URI keeps the raw start line.
    start = original.raw_start if leg.uri == original.uri_text else None
    request = Request(original.method, leg.uri, original.headers.copy(), original.body, start=start)
    h = request.headers
    for name, value in leg.set_headers:
        h.set(name, value)
    for name, value in leg.headers:
        h.add(name, value)
    if leg.body is not None:
        request.body = leg.body
    mf = original.max_forwards
    h.set("Max-Forwards", str((mf if mf is not None else 70) - 1))  # §16.6 step 3
    for p in reversed(leg.path):  # RFC 3327: the Path becomes the Route set, in order
        h.add("Route", p, first=True)
    if record_route and original.method in DIALOG_CREATING and original.to.tag is None:
        hop_transport = leg.hop.transport
        pinned = leg.anchored is not None  # its bridge lives in this process
        if inbound_transport != hop_transport:
            # Double Record-Route when the transport changes: each side sees ours.
            inbound_rr = local.record_route(
                inbound_transport, original, inbound_flow, pinned=pinned
            )
            h.add("Record-Route", inbound_rr, first=True)
            inbound_flow = None
        outbound_rr = local.record_route(hop_transport, original, inbound_flow, pinned=pinned)
        h.add("Record-Route", outbound_rr, first=True)
    branch_id = f"{MAGIC_COOKIE}{loop_hash}.{endpoint.new_branch()[len(MAGIC_COOKIE) :]}"
    h.add("Via", endpoint.via_value(leg.hop, branch_id), first=True)
    return request
