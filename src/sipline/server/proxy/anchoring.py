"""Media anchored at the server for some branches (the media bridge,
sipline.server.bridge): what the proxy asks of it, and where.

The proxy knows nothing of media. For each leg of an INVITE, UPDATE or BYE it asks the
`MediaAnchor` whether the leg's SDP must change; an anchored leg carries its new body
and rewrites the SDP of the responses its branch returns. The anchor is told whether
the leg's contact speaks WebRTC (sipline.server.bridge.plan.webrtc_contact).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

from sipline.core.message import Request, Response

if TYPE_CHECKING:
    from sipline.server.proxy.targets import Leg

__all__ = ["ANCHORED_METHODS", "AnchoredLeg", "MediaAnchor", "anchor_legs"]

ANCHORED_METHODS = frozenset({"INVITE", "UPDATE", "BYE"})


class AnchoredLeg(Protocol):
    """One branch whose SDP the anchor rewrites."""

    body: bytes  # what the branch's request carries instead of the received body

    def response(self, response: Response) -> None:
        """Rewrite `response`'s SDP in place before it is relayed upstream."""


class MediaAnchor(Protocol):
    async def anchor(
        self, request: Request, body: bytes, *, webrtc_target: bool
    ) -> AnchoredLeg | None:
        """An anchored leg for `request` going to a contact of that kind, or None: the
        leg passes untouched (a BYE is noted and passes untouched)."""

    def stray_response(self, response: Response) -> None:
        """Rewrite a 2xx retransmission that came outside any transaction."""


async def anchor_legs(anchor: MediaAnchor | None, request: Request, legs: list[Leg]) -> list[Leg]:
    """`legs`, with those the anchor takes carrying their anchored request body."""
    if anchor is None or request.method not in ANCHORED_METHODS:
        return legs
    out = []
    for leg in legs:
        body = leg.body if leg.body is not None else request.body
        anchored = await anchor.anchor(request, body, webrtc_target=leg.webrtc)
        if anchored is None:
            out.append(leg)
        else:
            out.append(dataclasses.replace(leg, body=anchored.body, anchored=anchored))
    return out
