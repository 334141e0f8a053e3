"""Admission: whether a new request gets a transaction, or a stateless 503 (§21.5.4).

The overload guard (runtime/overload.py) decides how much to shed from its signals;
this module applies that at the door, before the core makes a transaction: a shed
request is answered 503 with Retry-After (§20.33) statelessly (§8.2.7: shedding
holds no memory), its ACK absorbed and a later request in the dialog it never made
answered 481. It also keeps the guard's response-wait signal: the non-INVITE
requests taken, in arrival order, until answered or relayed.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Callable

from sipline.core.builders import build_response
from sipline.core.message import Request, Response
from sipline.core.transaction.layer import TransactionLayer
from sipline.core.transaction.matching import server_key
from sipline.runtime.handles import ServerTransaction
from sipline.runtime.overload import OverloadGuard
from sipline.runtime.stats import EndpointStats

__all__ = ["Admission", "shed_tag"]


class Admission:
    """Sheds new requests as `guard` says, never work in progress (ACK, CANCEL,
    in-dialog requests, retransmissions of requests being worked on)."""

    def __init__(
        self,
        guard: OverloadGuard,
        transactions: TransactionLayer,
        stats: EndpointStats,
        now: Callable[[], float],
    ) -> None:
        self.guard = guard
        self._transactions = transactions
        self._stats = stats
        self._now = now
        # Non-INVITE server transactions in arrival order, with when they came; trimmed
        # lazily, at each sample, of those answered or relayed meanwhile.
        self._waiting: collections.deque[tuple[float, ServerTransaction]] = collections.deque()
        guard.response_wait = self.oldest_wait

    def track(self, st: ServerTransaction) -> None:
        """A new request was taken: a non-INVITE one counts towards the wait signal
        until it is answered or relayed (INVITEs wait for people, not for us)."""
        if st.request.method != "INVITE":
            st.waiting = True
            self._waiting.append((self._now(), st))

    def oldest_wait(self) -> float:
        """Seconds the oldest non-INVITE server transaction has waited for its final
        response (one the core ended unanswered, e.g. on a transport error, waits no
        more)."""
        waiting = self._waiting
        live = self._transactions.get
        while waiting and (not waiting[0][1].waiting or live(waiting[0][1].key) is None):
            waiting.popleft()
        return self._now() - waiting[0][0] if waiting else 0.0

    def absorbs_ack(self, request: Request) -> bool:
        """The ACK for one of our 503s ends here (§17.1.1.3: it is hop by hop)."""
        to_tag = request.to.tag
        if (
            to_tag is not None
            and to_tag.startswith("ol")
            and to_tag == shed_tag(request)
            and self._transactions.get(server_key(request, "INVITE")) is None
        ):
            self._stats.shed_acks += 1
            return True
        return False

    def shed(self, request: Request, method: str) -> Response | None:
        """The stateless answer to send instead of taking `request` (not an ACK), or
        None to take it."""
        to_tag = request.to.tag
        if to_tag is not None:
            if to_tag.startswith("ol") and to_tag == shed_tag(request):
                # §12.1: a 503 makes no dialog, so none has this tag (SIPp sends a BYE
                # in it after a failed call): §12.2.2, 481, statelessly like the 503.
                return build_response(request, 481, to_tag=to_tag)
            return None
        if method == "CANCEL":
            return None
        guard = self.guard
        # §22: credentials answer a challenge of ours, so the work is half done. (Only
        # looked for while something is shed: most requests never need it.)
        headers = request.headers
        continued = guard.shed_fraction > 0.0 and (
            "authorization" in headers or "proxy-authorization" in headers
        )
        why = guard.reason(continued=continued)
        if why is None or self._transactions.get(server_key(request, method)) is not None:
            return None
        self._stats.overload_rejections += 1
        guard.stats.rejected += 1
        return build_response(
            request,
            503,
            f"Service Unavailable ({why})",
            to_tag=shed_tag(request),
            extra=[("Retry-After", str(guard.config.retry_after_s))],
        )


def shed_tag(request: Request) -> str:
    """The To tag of a 503 sent while shedding: the same for a retransmission, for the
    ACK that follows and for any later request that takes it for a dialog's (Call-ID
    and From tag), "ol" to tell it apart."""
    key = f"{request.call_id}\x00{request.from_.tag or ''}"
    return "ol" + hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
