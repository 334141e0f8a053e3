"""The UAS 2xx retransmission and ACK wait (RFC 3261 §13.3.1.4), driven by time alone:
golden tables (now, input) -> (actions, next deadline), and every (state, input)
pair of the table."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sipline.core.invite_usage import (
    ANSWER_TABLE,
    AnswerRetransmission,
    UsageAction,
    UsageInput,
    UsageState,
)
from sipline.core.timers import TimerConfig

RESEND = UsageAction.RESEND_2XX
ARM = UsageAction.ARM_RETRANSMIT
BYE = UsageAction.END_WITH_BYE
Row = tuple[float, str, tuple[UsageAction, ...], float | None]


def run_timers(usage: AnswerRetransmission, until: float) -> list[Row]:
    """Call `handle_timers` exactly at each deadline the machine announces."""
    rows: list[Row] = []
    while (due := usage.next_deadline()) is not None and due <= until:
        actions = usage.handle_timers(now=due)
        rows.append((due, "timers", actions, usage.next_deadline()))
    return rows


def test_udp_2xx_retransmitted_doubling_to_t2_then_given_up_at_64_t1() -> None:
    usage = AnswerRetransmission(reliable=False, timers=TimerConfig(), now=0.0)
    assert usage.next_deadline() == 0.5
    rows = run_timers(usage, 100.0)
    times = [row[0] for row in rows]
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    assert all(row[2] == (RESEND, ARM) for row in rows[:-1])
    assert rows[-1] == (32.0, "timers", (BYE,), None)
    assert usage.state is UsageState.GAVE_UP and usage.finished


def test_reliable_2xx_is_not_retransmitted_and_gives_up_at_64_t1() -> None:
    usage = AnswerRetransmission(reliable=True, timers=TimerConfig(), now=10.0)
    assert run_timers(usage, 100.0) == [(42.0, "timers", (BYE,), None)]


def test_ack_stops_the_retransmissions() -> None:
    usage = AnswerRetransmission(reliable=False, timers=TimerConfig(), now=0.0)
    rows = run_timers(usage, 2.0)
    assert [row[0] for row in rows] == [0.5, 1.5]
    assert usage.receive_ack(now=2.2) == (UsageAction.PASS_ACK,)
    assert usage.next_deadline() is None
    assert usage.receive_ack(now=2.3) == ()  # a retransmitted ACK is absorbed
    assert usage.state is UsageState.CONFIRMED


def test_stop_cancels_everything() -> None:
    usage = AnswerRetransmission(reliable=False, timers=TimerConfig(), now=0.0)
    assert usage.stop(now=0.1) == ()
    assert usage.next_deadline() is None and usage.state is UsageState.STOPPED
    assert usage.handle_timers(now=100.0) == ()


def test_fast_timers_follow_t1_and_t2() -> None:
    usage = AnswerRetransmission(
        reliable=False, timers=TimerConfig(t1=0.05, t2=0.4, t4=0.5), now=0.0
    )
    times = [round(row[0], 3) for row in run_timers(usage, 10.0)]
    assert times[:6] == [0.05, 0.15, 0.35, 0.75, 1.15, 1.55]
    assert times[-1] == 3.2


def test_a_late_wake_up_catches_up_without_shifting_the_schedule() -> None:
    usage = AnswerRetransmission(reliable=False, timers=TimerConfig(), now=0.0)
    # Woken at 4.0 only: the 0.5, 1.5 and 3.5 resends all go out, the next stays 7.5.
    assert usage.handle_timers(now=4.0) == (RESEND, ARM) * 3
    assert usage.next_deadline() == 7.5
    # Woken long after 64*T1: the session ends, with no resend after the deadline.
    actions = usage.handle_timers(now=40.0)
    assert actions[-1] is BYE and actions.count(RESEND) == 7  # 7.5, 11.5, ... 31.5


def test_the_table_is_total_and_only_waiting_does_anything() -> None:
    assert set(ANSWER_TABLE) == {(s, i) for s in UsageState for i in UsageInput}
    for (state, _), (actions, after) in ANSWER_TABLE.items():
        if state is not UsageState.WAITING_ACK:
            assert (actions, after) == ((), state)


def _feed(usage: AnswerRetransmission, inp: UsageInput, now: float) -> tuple[float, tuple]:
    """Deliver one input; a timer input fires at its deadline (or now, if none is armed)."""
    if inp is UsageInput.ACK:
        return now, usage.receive_ack(now=now)
    if inp is UsageInput.STOP:
        return now, usage.stop(now=now)
    due = usage.next_deadline()
    when = max(now, due) if due is not None else now
    return when, usage.handle_timers(now=when)


@given(
    reliable=st.booleans(),
    steps=st.lists(st.tuples(st.sampled_from(list(UsageInput)), st.floats(0, 5)), max_size=30),
)
def test_every_input_in_every_state_moves_by_the_table(
    reliable: bool, steps: list[tuple[UsageInput, float]]
) -> None:
    usage = AnswerRetransmission(reliable=reliable, timers=TimerConfig(), now=0.0)
    now = 0.0
    for inp, dt in steps:
        before = usage.state
        now, actions = _feed(usage, inp, now + dt)
        if inp in (UsageInput.ACK, UsageInput.STOP):
            assert (actions, usage.state) == ANSWER_TABLE[before, inp]
        # A finished usage has no deadline and never acts again; a live one has one.
        if usage.finished:
            assert usage.next_deadline() is None
            assert usage.handle_timers(now=now + 100) == ()
        else:
            deadline = usage.next_deadline()
            assert deadline is not None and deadline > now
        assert not (reliable and RESEND in actions)
        assert (BYE in actions) == (usage.state is UsageState.GAVE_UP and before is not usage.state)


def test_every_pair_of_the_table_is_reachable() -> None:
    """Each state can be reached, so the hypothesis test above covers every pair."""
    for inp in (UsageInput.ACK, UsageInput.STOP, UsageInput.GIVE_UP):
        usage = AnswerRetransmission(reliable=False, timers=TimerConfig(), now=0.0)
        if inp is UsageInput.GIVE_UP:
            usage.handle_timers(now=32.0)
        else:
            _feed(usage, inp, 0.1)
        for second in UsageInput:
            state = usage.state
            _feed(usage, second, 50.0)
            assert usage.state is ANSWER_TABLE[state, second][1]
