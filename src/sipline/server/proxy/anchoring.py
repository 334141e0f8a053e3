"""Media anchored at the server for some branches (the media bridge,
sipline.server.bridge): what the proxy asks of it, and where.

The proxy knows nothing of media. For each leg of an INVITE, UPDATE or BYE it asks the
`MediaAnchor` whether the leg's SDP must change; an anchored leg carries its new body
and rewrites the SDP of the responses its branch returns. The anchor is told whether
the leg's contact speaks WebRTC (sipline.server.bridge.plan.webrtc_contact).
"""

from __future__ import annotations

from typing import Protocol

from sipline.core.message import Request, Response

__all__ = ["ANCHORED_METHODS", "AnchoredLeg", "MediaAnchor"]

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

    def ack(self, request: Request) -> None:
        """Take the answer an ACK carries to an offer the anchor made in a 2xx."""
