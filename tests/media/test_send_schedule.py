"""When a stream's frames fall due: one per interval, late ones counted, a long stall
skipped rather than sent in a burst (driven by time alone)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sipline.media.send_schedule import MAX_CATCH_UP, SendSchedule

STEP = 0.02


def test_ticks_on_time_send_one_frame_each() -> None:
    schedule = SendSchedule(next_due=1.0)
    assert [schedule.due(1.0 + k * STEP, STEP) for k in range(5)] == [(0, 1)] * 5
    assert schedule.late == schedule.skipped == 0
    assert schedule.due(1.09, STEP) == (0, 0)  # early: nothing yet


def test_a_short_stall_is_caught_up_and_counted_late() -> None:
    schedule = SendSchedule(next_due=0.0)
    # (now, (skipped, sent), late so far): a tick 50 ms late sends the 3 frames due.
    golden = [
        (0.00, (0, 1), 0),
        (0.07, (0, 3), 2),
        (0.08, (0, 1), 2),
    ]
    for now, expected, late in golden:
        assert schedule.due(now, STEP) == expected
        assert schedule.late == late
    assert schedule.skipped == 0


def test_a_long_stall_is_skipped_not_burst() -> None:
    schedule = SendSchedule(next_due=0.0)
    assert schedule.due(0.0, STEP) == (0, 1)
    # Due from 0.02: 48 frames skipped, the last two (0.98, 1.00) sent.
    assert schedule.due(1.0, STEP) == (48, 2)
    assert schedule.skipped == 48 and schedule.next_due > 1.0


def test_resume_after_hold_starts_now() -> None:
    schedule = SendSchedule(next_due=0.0)
    schedule.resume(5.0)
    assert schedule.due(5.0, STEP) == (0, 1)
    schedule.resume(1.0)  # never back in time
    assert schedule.next_due == 5.0 + STEP


@given(st.lists(st.floats(0.0, 0.5), min_size=1, max_size=50))
def test_no_frame_is_lost_or_sent_twice(gaps: list[float]) -> None:
    schedule = SendSchedule(next_due=0.0)
    now, sent = 0.0, 0
    for gap in gaps:
        now += gap
        _, send = schedule.due(now, STEP)
        assert send <= MAX_CATCH_UP + 2
        sent += send
        assert schedule.next_due > now
    # Every interval up to now is accounted for once: sent or skipped.
    assert sent + schedule.skipped == round(schedule.next_due / STEP)
