"""The RFC 4028 session timer, driven by time alone: golden tables (now, input) ->
(actions, next deadline), and every (state, input) pair of the table."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sipline.core.session_refresh import (
    REFRESH_TABLE,
    RefreshAction,
    RefreshInput,
    RefreshState,
    SessionRefresh,
    SessionTimer,
)

OURS = SessionTimer(1800, "uac", True)
THEIRS = SessionTimer(1800, "uas", False)
SEND = RefreshAction.SEND_REFRESH
REPORT = RefreshAction.REPORT_REFRESHED
BYE = RefreshAction.END_WITH_BYE


def test_the_refresher_refreshes_at_half_the_interval() -> None:
    timer = SessionRefresh()
    assert timer.negotiate(OURS, now=0.0) == ()
    assert (timer.state, timer.next_deadline()) == (RefreshState.REFRESHER, 900.0)
    assert timer.handle_timers(now=899.9) == ()
    assert timer.handle_timers(now=900.0) == (SEND,)
    assert (timer.state, timer.next_deadline()) == (RefreshState.REFRESHING, None)
    # The refresh's 2xx negotiates again: reported, and the next refresh is due at 1805.
    assert timer.negotiate(OURS, now=905.0) == (REPORT,)
    assert (timer.state, timer.next_deadline()) == (RefreshState.REFRESHER, 1805.0)


def test_the_other_side_gives_up_before_expiry_unless_refreshed() -> None:
    timer = SessionRefresh()
    timer.negotiate(THEIRS, now=0.0)
    assert timer.next_deadline() == 1800 - 32  # min(32 s, a third)
    assert timer.negotiate(THEIRS, now=900.0) == ()  # their refresh came: a new deadline
    assert timer.next_deadline() == 900 + 1768
    assert timer.handle_timers(now=2668.0) == (BYE,)
    assert (timer.state, timer.next_deadline()) == (RefreshState.ENDED, None)


def test_short_interval_gives_up_at_two_thirds() -> None:
    timer = SessionRefresh()
    timer.negotiate(SessionTimer(90, "uas", False), now=10.0)
    assert timer.next_deadline() == 70.0  # 90 - 30


def test_a_failed_refresh_ends_the_session() -> None:
    timer = SessionRefresh()
    timer.negotiate(OURS, now=0.0)
    timer.handle_timers(now=900.0)
    assert timer.refresh_failed(now=901.0) == (BYE,)
    assert timer.state is RefreshState.ENDED


def test_a_refresh_answered_without_a_timer_ends_the_session() -> None:
    timer = SessionRefresh()
    timer.negotiate(OURS, now=0.0)
    timer.handle_timers(now=900.0)
    assert timer.negotiate(None, now=901.0) == (BYE,)


def test_no_timer_and_stop() -> None:
    timer = SessionRefresh()
    assert timer.negotiate(None, now=0.0) == ()
    assert (timer.state, timer.next_deadline()) == (RefreshState.INACTIVE, None)
    timer.negotiate(THEIRS, now=1.0)
    timer.negotiate(None, now=2.0)  # a later 2xx turned it off
    assert (timer.state, timer.next_deadline()) == (RefreshState.INACTIVE, None)
    timer.negotiate(OURS, now=3.0)
    assert timer.stop(now=4.0) == ()
    assert (timer.state, timer.next_deadline()) == (RefreshState.ENDED, None)
    assert timer.negotiate(OURS, now=5.0) == ()
    assert timer.state is RefreshState.ENDED


def test_the_table_is_total_and_ended_is_final() -> None:
    assert set(REFRESH_TABLE) == {(s, i) for s in RefreshState for i in RefreshInput}
    for inp in RefreshInput:
        assert REFRESH_TABLE[RefreshState.ENDED, inp] == ((), RefreshState.ENDED)


def _feed(timer: SessionRefresh, inp: RefreshInput, now: float) -> tuple[float, tuple]:
    if inp is RefreshInput.WE_REFRESH:
        return now, timer.negotiate(OURS, now=now)
    if inp is RefreshInput.PEER_REFRESHES:
        return now, timer.negotiate(THEIRS, now=now)
    if inp is RefreshInput.NO_TIMER:
        return now, timer.negotiate(None, now=now)
    if inp is RefreshInput.REFRESH_FAILED:
        return now, timer.refresh_failed(now=now)
    if inp is RefreshInput.STOP:
        return now, timer.stop(now=now)
    due = timer.next_deadline()
    when = max(now, due) if due is not None else now
    return when, timer.handle_timers(now=when)


_TIMED = (RefreshInput.REFRESH_DUE, RefreshInput.EXPIRY_DUE)


@given(st.lists(st.tuples(st.sampled_from(list(RefreshInput)), st.floats(0, 2000)), max_size=30))
def test_every_input_in_every_state_moves_by_the_table(
    steps: list[tuple[RefreshInput, float]],
) -> None:
    timer = SessionRefresh()
    now = 0.0
    for inp, dt in steps:
        before = timer.state
        deadline = timer.next_deadline()
        now, actions = _feed(timer, inp, now + dt)
        if inp in _TIMED:
            fired = (
                RefreshInput.REFRESH_DUE
                if before is RefreshState.REFRESHER
                else RefreshInput.EXPIRY_DUE
            )
            if deadline is None:
                assert (actions, timer.state) == ((), before)
            else:
                assert (actions, timer.state) == REFRESH_TABLE[before, fired]
        else:
            assert (actions, timer.state) == REFRESH_TABLE[before, inp]
        # A deadline exactly when waiting to refresh or for the peer's refresh.
        waiting = timer.state in (RefreshState.REFRESHER, RefreshState.WATCHING)
        assert (timer.next_deadline() is not None) == waiting
        if timer.state is RefreshState.ENDED:
            assert timer.handle_timers(now=now + 1e6) == ()


def test_every_state_is_reached_so_every_pair_is_driven() -> None:
    paths = {
        RefreshState.INACTIVE: [],
        RefreshState.REFRESHER: [RefreshInput.WE_REFRESH],
        RefreshState.REFRESHING: [RefreshInput.WE_REFRESH, RefreshInput.REFRESH_DUE],
        RefreshState.WATCHING: [RefreshInput.PEER_REFRESHES],
        RefreshState.ENDED: [RefreshInput.STOP],
    }
    for state, path in paths.items():
        for inp in RefreshInput:
            timer = SessionRefresh()
            now = 0.0
            for step in path:
                now, _ = _feed(timer, step, now)
            assert timer.state is state
            _, actions = _feed(timer, inp, now)
            if inp in _TIMED:
                # A timer input fires the timer the state armed, whichever was named.
                armed = {
                    RefreshState.REFRESHER: RefreshInput.REFRESH_DUE,
                    RefreshState.WATCHING: RefreshInput.EXPIRY_DUE,
                }.get(state)
                expected = REFRESH_TABLE[state, armed] if armed else ((), state)
            else:
                expected = REFRESH_TABLE[state, inp]
            assert (actions, timer.state) == expected
