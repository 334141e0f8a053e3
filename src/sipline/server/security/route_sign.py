"""A signed Record-Route: in-dialog requests come back through us only for dialogs
we record-routed.

RFC 3261 §16.6 step 4: a proxy that record-routes puts its own URI in Record-Route,
and §19.1.1 leaves that URI's parameters to the element that made it: they are
opaque to every other element, which copies the route set unchanged (§12.1.1,
§12.1.2). Ours carries `sl=<token>`, a truncated HMAC-SHA256 of the Call-ID and the
From tag of the dialog-creating request under the server secret (the one that keys
digest nonces, shared by all worker processes, so any worker verifies it).

A request in that dialog carries the same Call-ID and the caller's tag as its From
tag (caller to callee) or its To tag (callee to caller), so the Route (or, after a
strict router, the Request-URI; §16.4) naming us is checked against both. A Route
through us with a missing, forged or other dialog's token is not "our dialog": the
relay gate judges the request like any other that names its own target.
"""

from __future__ import annotations

import hashlib
import hmac

from sipline.core.message import Request
from sipline.core.uri import SipUri, Uri

__all__ = ["PARAM", "RouteSigner"]

PARAM = "sl"
_TOKEN_BYTES = 12  # 96 bits: not guessable within any number of tries that matters


class RouteSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        self._key = hashlib.sha256(b"sipline record-route\x00" + secret).digest()

    def token(self, call_id: str, tag: str) -> str:
        msg = f"{call_id}\x00{tag}".encode("utf-8", "surrogateescape")
        return hmac.new(self._key, msg, "sha256").digest()[:_TOKEN_BYTES].hex()

    def param(self, request: Request) -> str:
        """`;sl=<token>` for the Record-Route of a dialog-creating request."""
        return f";{PARAM}={self.token(request.call_id, request.from_.tag or '')}"

    def toward_creator(self, uri: Uri, request: Request) -> bool:
        """Does our URI `uri` carry the token of `request`'s dialog, made from the tag
        the request names in To: a request toward the UA that created the dialog (the
        callee's, to the caller)?"""
        tag = request.to.tag
        given = uri.params.get(PARAM) if isinstance(uri, SipUri) else None
        if not given or tag is None:
            return False
        expected = self.token(request.call_id, tag).encode("ascii")
        return hmac.compare_digest(given.lower().encode("ascii", "replace"), expected)

    def signed_for(self, uri: Uri, request: Request) -> bool:
        """Does our URI `uri` carry the token of `request`'s dialog?"""
        if not isinstance(uri, SipUri):
            return False
        given = uri.params.get(PARAM)
        if not given:
            return False
        given = given.lower()
        for tag in (request.from_.tag, request.to.tag):
            if tag is not None and hmac.compare_digest(
                given.encode("ascii", "replace"),
                self.token(request.call_id, tag).encode("ascii"),
            ):
                return True
        return False
