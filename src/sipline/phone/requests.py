"""Sending a request and waiting for its final response, answering digest challenges
(RFC 3261 §22.2, §22.3) by one policy for every request a user agent sends: calls,
requests inside a dialog, registration, MESSAGE, SUBSCRIBE and PUBLISH.

The policy: credentials for the realms answered before go on up front (§22.3); a 401
or 407 is answered when the `DigestClient` can (it refuses a second challenge to a
fresh answer: a wrong password); the retry is a new transaction (a new branch) with
a higher CSeq (§22.2: "with a new CSeq and the same Call-ID"); at most
`MAX_CHALLENGES` challenges per request, so a server that challenges forever does not
hold us forever.
"""

from __future__ import annotations

from collections.abc import Callable

from sipline.core.message import Request, Response
from sipline.phone.credentials import DigestClient
from sipline.runtime.endpoint import ClientTransaction, Endpoint
from sipline.transport import Target

__all__ = ["MAX_CHALLENGES", "RequestSender"]

MAX_CHALLENGES = 3


class RequestSender:
    """The one way a user agent sends a request that may be challenged."""

    def __init__(self, endpoint: Endpoint, digest: DigestClient | None) -> None:
        self.endpoint = endpoint
        self.digest = digest

    def prepare(self, request: Request) -> None:
        """§22.3: credentials for the realms we know, with the next nonce count."""
        if self.digest is not None:
            self.digest.apply_cached(request)

    def answer_challenge(
        self, request: Request, response: Response, next_cseq: Callable[[], int] | None = None
    ) -> bool:
        """Make `request` ready to go again with credentials answering `response` (a 401
        or 407): True, or False when there is nothing we can answer."""
        if response.status not in (401, 407) or self.digest is None:
            return False
        if not self.digest.authorize(request, response):
            return False
        renew(request, next_cseq)
        return True

    async def send(
        self,
        request: Request,
        target: Target,
        *,
        next_cseq: Callable[[], int] | None = None,
        on_response: Callable[[Request, Response], None] | None = None,
        on_transaction: Callable[[ClientTransaction], None] | None = None,
        proceed: Callable[[], bool] | None = None,
    ) -> Response:
        """Send `request` to `target` and return its final response, after answering
        up to `MAX_CHALLENGES` challenges. `next_cseq` gives the CSeq of a retry (the
        dialog's, say; else one more); `on_response` sees every response;
        `on_transaction` each client transaction (to CANCEL it); `proceed` is asked
        before a retry (False: return the challenge instead)."""
        self.prepare(request)
        challenges = 0
        while True:
            seen = None if on_response is None else _bind(on_response, request)
            ct = self.endpoint.send_request(request, target, on_response=seen)
            if on_transaction is not None:
                on_transaction(ct)
            response = await ct.final
            if challenges >= MAX_CHALLENGES or (proceed is not None and not proceed()):
                return response
            if not self.answer_challenge(request, response, next_cseq):
                return response
            challenges += 1


def renew(request: Request, next_cseq: Callable[[], int] | None = None) -> None:
    """Ready `request` to be sent again as a new transaction (§8.1.3.5, §22.2): its
    Via goes (the endpoint adds one with a new branch) and its CSeq goes up."""
    request.headers.remove("Via")
    seq = next_cseq() if next_cseq is not None else request.cseq.seq + 1
    request.headers.set("CSeq", f"{seq} {request.method}")


def _bind(
    on_response: Callable[[Request, Response], None], request: Request
) -> Callable[[Response], None]:
    def seen(response: Response) -> None:
        on_response(request, response)

    return seen
