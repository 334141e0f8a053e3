"""RFC 4028 session timers: what a user agent puts in its requests and responses, what
it learns from the other side, and when it must refresh or give up.

Pure functions over messages; the timer itself (when to refresh, when to give up) is
the sans-I/O `sipline.core.session_refresh.SessionRefresh`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.session_refresh import SessionTimer

__all__ = [
    "MIN_SE_FLOOR",
    "SessionTimer",
    "SessionTimerPolicy",
    "TimerDecision",
    "parse_min_se",
    "parse_session_expires",
    "uac_request_headers",
    "uac_timer_from_response",
    "uas_decide",
]

# RFC 4028 §4: Min-SE may not go below 90 seconds.
MIN_SE_FLOOR = 90


@dataclass(frozen=True, slots=True)
class SessionTimerPolicy:
    """What we ask for. `expires_s` None turns session timers off (we still honour a
    peer's). `min_se_s` below 90 breaks RFC 4028 §4 and is only for tests between
    our own agents."""

    expires_s: int | None = 1800
    min_se_s: int = MIN_SE_FLOOR


def parse_session_expires(value: str) -> tuple[int, str | None]:
    """`Session-Expires: delta-seconds *(;se-params)` -> (seconds, refresher or None)."""
    head, *params = [p.strip() for p in value.split(";")]
    if not head.isdigit() or not head.isascii() or len(head) > 10:
        raise RemoteProtocolError("Malformed Session-Expires header")
    refresher = None
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "refresher":
            refresher = val.strip().lower()
            if refresher not in ("uac", "uas"):
                raise RemoteProtocolError("Malformed Session-Expires refresher")
    return int(head), refresher


def parse_min_se(value: str) -> int:
    head = value.split(";", 1)[0].strip()
    if not head.isdigit() or not head.isascii() or len(head) > 10:
        raise RemoteProtocolError("Malformed Min-SE header")
    return int(head)


def _supports_timer(message: Request | Response) -> bool:
    tags = {t.lower() for t in message.option_tags("supported")}
    tags |= {t.lower() for t in message.option_tags("require")}
    return "timer" in tags


def uac_request_headers(
    policy: SessionTimerPolicy, expires_s: int | None = None, *, refresher: str | None = None
) -> list[tuple[str, str]]:
    """Headers for an INVITE (or refresh) we send: Session-Expires and Min-SE (§7.1).
    A first INVITE leaves the refresher to the UAS; a refresh from the refresher says
    `refresher=uac` (it is the UAC of that request)."""
    interval = expires_s if expires_s is not None else policy.expires_s
    if interval is None:
        return []
    value = str(max(interval, policy.min_se_s))
    if refresher is not None:
        value += f";refresher={refresher}"
    return [("Session-Expires", value), ("Min-SE", str(policy.min_se_s))]


def uac_timer_from_response(response: Response) -> SessionTimer | None:
    """The timer a 2xx to our INVITE sets up (§7.2).

    Session-Expires in the 2xx names the refresher; without `Require: timer` the UAS
    does not do timers and a proxy asked for them, so we refresh. No Session-Expires
    means no timer, even if we asked.
    """
    value = response.headers.get("session-expires")
    if value is None:
        return None
    interval, refresher = parse_session_expires(value)
    requires = "timer" in {t.lower() for t in response.option_tags("require")}
    if refresher is None or not requires:
        refresher = "uac"
    return SessionTimer(interval, refresher, refresher == "uac")


@dataclass(frozen=True, slots=True)
class TimerDecision:
    """What a UAS does with an INVITE's session timer request (§9)."""

    timer: SessionTimer | None
    headers: tuple[tuple[str, str], ...] = ()
    reject_min_se: int | None = None  # answer 422 with this Min-SE


def uas_decide(request: Request, policy: SessionTimerPolicy) -> TimerDecision:
    """§9: accept, raise or reject (422) the interval a request asks for, and pick
    the refresher; the returned headers go in our 2xx."""
    value = request.headers.get("session-expires")
    uac_supports = _supports_timer(request)
    if value is None:
        if policy.expires_s is None or not uac_supports:
            return TimerDecision(None)
        # §9: we may start a timer ourselves; the UAC supports it, so it refreshes.
        interval = max(policy.expires_s, policy.min_se_s)
        return TimerDecision(
            SessionTimer(interval, "uac", False),
            (("Session-Expires", f"{interval};refresher=uac"), ("Require", "timer")),
        )
    interval, refresher = parse_session_expires(value)
    if interval < policy.min_se_s:
        if uac_supports:
            return TimerDecision(None, reject_min_se=policy.min_se_s)
        interval = policy.min_se_s  # §9: cannot reject a UAC unaware of timers; raise it
    if policy.expires_s is not None:
        interval = min(interval, max(policy.expires_s, policy.min_se_s))
    if refresher is None:
        refresher = "uac" if uac_supports else "uas"
    elif not uac_supports:
        refresher = "uas"
    headers: list[tuple[str, str]] = [("Session-Expires", f"{interval};refresher={refresher}")]
    if uac_supports:
        headers.append(("Require", "timer"))
    return TimerDecision(SessionTimer(interval, refresher, refresher == "uas"), tuple(headers))
