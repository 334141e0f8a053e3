"""The notifier's subscription state machine (RFC 6665 §4.2), expiry granting and
NOTIFY pacing, with explicit times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.content.subscription import (
    TRANSITIONS,
    Subscription,
    SubscriptionInput,
    SubscriptionState,
    grant_expires,
    next_notify_at,
)

A, P, T = SubscriptionState.ACTIVE, SubscriptionState.PENDING, SubscriptionState.TERMINATED
In = SubscriptionInput


def test_every_state_input_pair_has_a_transition() -> None:
    assert set(TRANSITIONS) == {(s, i) for s in SubscriptionState for i in SubscriptionInput}


@pytest.mark.parametrize(
    ("state", "event", "to", "notify", "reason"),
    [
        (P, In.AUTHORIZED, A, True, None),
        (P, In.REFUSED, T, True, "rejected"),
        (P, In.CHANGED, P, False, None),
        (A, In.CHANGED, A, True, None),
        (A, In.REFUSED, T, True, "rejected"),
        (A, In.EXPIRED, T, True, "timeout"),
        (A, In.UNSUBSCRIBED, T, True, "timeout"),
        (A, In.NOTIFY_FAILED, T, False, None),
        (A, In.GONE, T, True, "noresource"),
        (T, In.REFRESHED, T, False, None),
    ],
)
def test_transitions(
    state: SubscriptionState,
    event: SubscriptionInput,
    to: SubscriptionState,
    notify: bool,
    reason: str | None,
) -> None:
    t = TRANSITIONS[(state, event)]
    assert (t.state, t.notify, t.reason) == (to, notify, reason)


@given(st.lists(st.sampled_from(list(SubscriptionInput)), max_size=30))
def test_terminated_is_terminal_and_keeps_its_first_reason(events: list[SubscriptionInput]) -> None:
    sub = Subscription("presence", "alice@x", "bob@x", expires_at=100.0)
    reason_at_end: str | None = None
    ended = False
    for e in events:
        before = sub.state
        t = sub.apply(e)
        if ended:
            assert before is T and t.state is T and not t.notify
            assert sub.reason == reason_at_end
        elif t.state is T:
            ended, reason_at_end = True, sub.reason
            assert sub.reason == t.reason
    assert sub.state_header(now=0.0).startswith(sub.state.value)


def test_refresh_expiry_and_headers_with_explicit_times() -> None:
    sub = Subscription("presence", "alice@x", "bob@x", expires_at=0.0)
    assert sub.refresh(600, now=10.0).notify
    assert sub.state_header(now=10.0) == "pending;expires=600"
    sub.apply(In.AUTHORIZED)
    assert sub.state_header(now=110.4) == "active;expires=500"
    assert sub.expire(now=609.9) is None
    t = sub.expire(now=610.0)
    assert t is not None and t.notify and sub.state is T
    assert sub.state_header(now=610.0) == "terminated;reason=timeout"
    assert sub.expire(now=700.0) is None


def test_unsubscribe_ends_at_once() -> None:
    sub = Subscription("presence", "alice@x", "bob@x", expires_at=50.0, state=A)
    t = sub.refresh(0, now=20.0)
    assert t.notify and sub.state is T and sub.remaining_s(20.0) == 0


def test_grant_expires() -> None:
    kw = {"default_s": 3600, "min_s": 60, "max_s": 7200}
    assert grant_expires(None, **kw) == 3600
    assert grant_expires(0, **kw) == 0
    assert grant_expires(59, **kw) is None
    assert grant_expires(60, **kw) == 60
    assert grant_expires(10**9, **kw) == 7200


def test_notify_pacing() -> None:
    assert next_notify_at(None, now=10.0, min_interval_s=5.0) == 10.0
    assert next_notify_at(8.0, now=10.0, min_interval_s=5.0) == 13.0
    assert next_notify_at(1.0, now=10.0, min_interval_s=5.0) == 10.0


@given(
    last=st.none() | st.floats(0, 1000),
    now=st.floats(0, 1000),
    gap=st.floats(0, 60),
)
def test_pacing_never_sends_early_or_in_the_past(
    last: float | None, now: float, gap: float
) -> None:
    at = next_notify_at(last, now=now, min_interval_s=gap)
    assert at >= now
    if last is not None:
        assert at >= last + gap
