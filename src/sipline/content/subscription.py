"""Subscriptions as a notifier keeps them (RFC 6665 §4.2): states and transitions as a
table, expiry granting, and the pacing of NOTIFYs. Pure: time comes in as `now`.

A subscription is pending (waiting for the presentity's authorisation), active, or
terminated (RFC 6665 §4.1.3). Every input in every state has an entry in
`TRANSITIONS`, which says the next state, whether a NOTIFY goes out, and the reason
a terminated NOTIFY carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "TRANSITIONS",
    "Subscription",
    "SubscriptionInput",
    "SubscriptionState",
    "Transition",
    "grant_expires",
    "next_notify_at",
]


class SubscriptionState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"


class SubscriptionInput(StrEnum):
    AUTHORIZED = "authorized"  # the watcher may see the resource
    PENDED = "pended"  # no decision about the watcher yet
    REFUSED = "refused"  # the watcher is blocked
    REFRESHED = "refreshed"  # a SUBSCRIBE with a non-zero expiry (§4.2.1.2)
    UNSUBSCRIBED = "unsubscribed"  # a SUBSCRIBE with Expires: 0 (§4.2.1.4)
    EXPIRED = "expired"  # not refreshed in time (§4.2.2)
    CHANGED = "changed"  # the resource's state changed
    NOTIFY_FAILED = "notify_failed"  # a NOTIFY got 481, 408 or no answer (§4.2.2)
    GONE = "gone"  # the resource no longer exists


@dataclass(frozen=True, slots=True)
class Transition:
    state: SubscriptionState
    notify: bool
    reason: str | None = None  # RFC 6665 §4.2.2 reason of a terminated NOTIFY


St, In = SubscriptionState, SubscriptionInput
_T = Transition
TRANSITIONS: dict[tuple[SubscriptionState, SubscriptionInput], Transition] = {
    (St.PENDING, In.AUTHORIZED): _T(St.ACTIVE, True),
    (St.PENDING, In.PENDED): _T(St.PENDING, False),
    (St.PENDING, In.REFUSED): _T(St.TERMINATED, True, "rejected"),
    (St.PENDING, In.REFRESHED): _T(St.PENDING, True),
    (St.PENDING, In.UNSUBSCRIBED): _T(St.TERMINATED, True, "timeout"),
    (St.PENDING, In.EXPIRED): _T(St.TERMINATED, True, "timeout"),
    (St.PENDING, In.CHANGED): _T(St.PENDING, False),  # nothing to show a pending watcher
    (St.PENDING, In.NOTIFY_FAILED): _T(St.TERMINATED, False),
    (St.PENDING, In.GONE): _T(St.TERMINATED, True, "noresource"),
    (St.ACTIVE, In.AUTHORIZED): _T(St.ACTIVE, False),
    (St.ACTIVE, In.PENDED): _T(St.PENDING, True),
    (St.ACTIVE, In.REFUSED): _T(St.TERMINATED, True, "rejected"),
    (St.ACTIVE, In.REFRESHED): _T(St.ACTIVE, True),
    (St.ACTIVE, In.UNSUBSCRIBED): _T(St.TERMINATED, True, "timeout"),
    (St.ACTIVE, In.EXPIRED): _T(St.TERMINATED, True, "timeout"),
    (St.ACTIVE, In.CHANGED): _T(St.ACTIVE, True),
    (St.ACTIVE, In.NOTIFY_FAILED): _T(St.TERMINATED, False),
    (St.ACTIVE, In.GONE): _T(St.TERMINATED, True, "noresource"),
}
for _input in SubscriptionInput:  # terminated is terminal: nothing moves it
    TRANSITIONS[(St.TERMINATED, _input)] = _T(St.TERMINATED, False)
del St, In, _T


@dataclass(slots=True)
class Subscription:
    """One subscription's state at the notifier."""

    event: str
    resource: str
    watcher: str
    expires_at: float
    state: SubscriptionState = SubscriptionState.PENDING
    reason: str | None = None

    def apply(self, event: SubscriptionInput) -> Transition:
        transition = TRANSITIONS[(self.state, event)]
        if transition.state is SubscriptionState.TERMINATED and self.reason is None:
            self.reason = transition.reason
        self.state = transition.state
        return transition

    def refresh(self, expires_s: int, *, now: float) -> Transition:
        """A SUBSCRIBE arrived with the granted `expires_s` (0 ends it)."""
        if expires_s == 0:
            self.expires_at = now
            return self.apply(SubscriptionInput.UNSUBSCRIBED)
        self.expires_at = now + expires_s
        return self.apply(SubscriptionInput.REFRESHED)

    def expire(self, *, now: float) -> Transition | None:
        """The EXPIRED transition when the subscription has run out at `now`."""
        if self.state is SubscriptionState.TERMINATED or now < self.expires_at:
            return None
        return self.apply(SubscriptionInput.EXPIRED)

    def remaining_s(self, now: float) -> int:
        return max(0, math.ceil(self.expires_at - now - 1e-9))

    def state_header(self, *, now: float) -> str:
        """Subscription-State (RFC 6665 §8.2.3)."""
        if self.state is SubscriptionState.TERMINATED:
            return "terminated" + (f";reason={self.reason}" if self.reason else "")
        return f"{self.state.value};expires={self.remaining_s(now)}"


def grant_expires(requested: int | None, *, default_s: int, min_s: int, max_s: int) -> int | None:
    """The expiry granted for a SUBSCRIBE or PUBLISH asking for `requested` seconds
    (RFC 6665 §4.2.1.1, RFC 3903 §6 step 5): the default when absent, shortened to
    `max_s`, 0 kept (an unsubscribe or removal); None when too brief (answer 423
    with Min-Expires: `min_s`)."""
    if requested is None:
        return default_s
    if requested == 0:
        return 0
    if requested < min_s:
        return None
    return min(requested, max_s)


def next_notify_at(last_sent: float | None, *, now: float, min_interval_s: float) -> float:
    """When a NOTIFY for a change at `now` may go: at once, or once `min_interval_s`
    has passed since the last one (RFC 3856 §6.4: at most one notification per
    presentity every few seconds; RFC 6665 §4.2.2 throttling)."""
    if last_sent is None:
        return now
    return max(now, last_sent + min_interval_s)
