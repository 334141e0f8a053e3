"""Which failure responses are worth trying again later, and which end the attempt.

RFC 3261 §21 sorts final responses by what the requester may do next. A request
that failed for a reason that passes (the recipient was unreachable or busy, the
server overloaded) may succeed if sent again later; a request the recipient judged
and refused (it cannot read the body, it does not want it, 6xx "global failure")
fails the same way every time, so retrying it only wastes work and, for an ordered
queue, holds back everything behind it.
"""

from __future__ import annotations

__all__ = ["TRANSIENT_STATUSES", "is_transient"]

TRANSIENT_STATUSES = frozenset(
    {
        408,  # §21.4.9 Request Timeout (also our own timeouts: Timer B/F)
        480,  # §21.4.18 Temporarily Unavailable
        486,  # §21.4.24 Busy Here: "the callee's end system was contacted successfully"
        500,  # §21.5.1 Server Internal Error: "MAY indicate ... Retry-After"
        503,  # §21.5.4 Service Unavailable (also our own transport failures)
        504,  # §21.5.5 Server Time-out
    }
)


def is_transient(status: int) -> bool:
    """Whether a request that failed with `status` may succeed when sent again later.

    Every other 4xx (415, 488, 404, ...) and every 6xx (§21.6, "global failure",
    e.g. 606 Not Acceptable) is permanent."""
    return status in TRANSIENT_STATUSES
