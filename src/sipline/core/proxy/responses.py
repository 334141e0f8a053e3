"""Choosing and shaping the responses a proxy sends upstream (RFC 3261 §16.7)."""

from __future__ import annotations

from collections.abc import Iterable

from sipline.core.message import Response

__all__ = ["ANSWERED_ELSEWHERE", "better", "decline_reason", "merge_challenges", "strip_top_via"]

# RFC 3326 §2 (its example): what a forking proxy says to the branches it cancels once
# one answered, so their devices do not report a missed call.
ANSWERED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'

_CHALLENGES = ("WWW-Authenticate", "Proxy-Authenticate")


def decline_reason(status: int) -> str:
    """RFC 3326: the Reason of the CANCELs a 6xx causes (§16.7 step 5)."""
    return f"SIP;cause={status}"


def strip_top_via(response: Response) -> Response:
    """§16.7 step 3: our own Via comes off before the response goes upstream."""
    out = Response(
        response.status,
        response.reason,
        response.headers.copy(),
        response.body,
        start=response.raw_start,
    )
    out.headers.pop_first_value("Via")
    return out


def better(candidate: Response, current: Response) -> bool:
    """§16.7 step 6: 6xx beats everything; otherwise the lowest class wins, and
    within 4xx the auth challenges and specific answers beat the generic ones."""
    c, b = candidate.status, current.status
    if b >= 600:
        return False
    if c >= 600:
        return True
    if c // 100 != b // 100:
        return c // 100 < b // 100
    # Prefer 401/407 (the caller can act on them) over 408/480-style failures.
    if c in (401, 407) and b not in (401, 407):
        return True
    return c < b and b not in (401, 407)


def challenges_of(response: Response) -> list[tuple[str, str]]:
    """The challenges a 401 or 407 carries (§16.7 step 7 collects them all)."""
    name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
    return [(name, v) for v in response.headers.get_all(name)]


def merge_challenges(best: Response, challenges: Iterable[tuple[str, str]]) -> Response:
    """§16.7 step 7: one response carrying every branch's challenges, our Via off."""
    out = strip_top_via(best)
    for name in _CHALLENGES:
        out.headers.remove(name)
    for name, value in challenges:
        out.headers.add(name, value)
    return out
