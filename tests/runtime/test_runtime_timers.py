"""`Timers`: every timer above the core on the injected clock, one loop handle."""

from __future__ import annotations

import asyncio

import pytest

from sipline.runtime.system import SystemClock
from sipline.runtime.timers import Timers
from sipline.testing import FakeClock, advance


def test_a_stepped_clock_fires_timers_in_deadline_order_at_their_deadlines() -> None:
    clock = FakeClock(start=10.0)
    timers = Timers(clock)
    fired: list[tuple[str, float]] = []
    timers.call_at(12.0, lambda: fired.append(("b", clock.now)))
    timers.call_later(1.0, lambda: fired.append(("a", clock.now)))
    late = timers.call_at(15.0, lambda: fired.append(("never", clock.now)))
    timers.call_at(12.0, lambda: fired.append(("c", clock.now)))
    late.cancel()
    assert timers.next_deadline() == 11.0
    clock.advance(1.5)
    assert fired == [("a", 11.0)]
    clock.advance(10.0)
    assert fired == [("a", 11.0), ("b", 12.0), ("c", 12.0)]
    assert clock.now == 21.5
    assert timers.next_deadline() is None


def test_a_timer_set_by_a_firing_timer_fires_within_the_same_advance() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[float] = []

    def again() -> None:
        fired.append(clock.now)
        if len(fired) < 4:
            timers.call_later(0.5 * 2 ** len(fired), again)

    timers.call_at(0.5, again)
    clock.advance(32.0)
    # an RFC 3261 Timer A schedule: each deadline from the one that fired
    assert fired == [0.5, 1.5, 3.5, 7.5]


async def test_sleep_and_wait_for_run_on_the_stepped_clock() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    slept = asyncio.ensure_future(timers.sleep(5.0))
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waited = asyncio.ensure_future(timers.wait_for(never, 2.0))
    await advance(clock, 1.0)
    assert not slept.done() and not waited.done()
    await advance(clock, 1.0)
    with pytest.raises(TimeoutError):
        await waited
    assert never.cancelled()
    assert not slept.done()
    await advance(clock, 3.0)
    assert slept.done()


async def test_wait_for_returns_the_result_and_cancels_its_timer() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waited = asyncio.ensure_future(timers.wait_for(result, 2.0))
    await advance(clock, 1.0)
    result.set_result(7)
    assert await waited == 7
    assert timers.next_deadline() is None


async def test_outside_cancellation_is_not_a_timeout() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waited = asyncio.ensure_future(timers.wait_for(never, 2.0))
    await advance(clock, 0.5)
    waited.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waited


async def test_on_the_system_clock_one_loop_handle_follows_the_earliest_deadline() -> None:
    timers = Timers(SystemClock())
    done = asyncio.Event()
    fired: list[str] = []
    timers.call_later(0.05, lambda: (fired.append("late"), done.set()))
    timers.call_later(0.01, lambda: fired.append("early"))
    await asyncio.wait_for(done.wait(), 2.0)
    assert fired == ["early", "late"]
    await timers.sleep(0.01)
    timers.close()
    assert timers.next_deadline() is None


def test_the_heap_drops_cancelled_timers_once_they_are_over_half_of_it() -> None:
    """As asyncio's loop: past 100 entries, more than half cancelled rebuilds the heap."""
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[int] = []
    kept = [timers.call_at(1000.0 + i, fired.append, i) for i in range(60)]
    dropped = [timers.call_at(10.0 + i, fired.append, -i) for i in range(60)]
    assert timers.heap_size == 120
    for timer in dropped[:60]:
        timer.cancel()
    # 61 of 120 would be cancelled at the next one: the 60th left the heap at 50%.
    assert timers.heap_size == 120
    kept[0].cancel()  # 61 of 120: over half
    assert timers.heap_size == 59
    assert timers.next_deadline() == 1001.0
    kept[0].cancel()  # a second cancel counts once
    clock.advance(2000.0)
    assert fired == list(range(1, 60))
    assert timers.heap_size == 0


def test_a_small_heap_is_not_rebuilt_and_pops_cancelled_timers_lazily() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    handles = [timers.call_at(1.0 + i, lambda: None) for i in range(50)]
    for timer in handles[:-1]:
        timer.cancel()
    assert timers.heap_size == 50
    assert timers.next_deadline() == 50.0
    assert timers.heap_size == 1


def test_close_drops_every_timer() -> None:
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[int] = []
    timer = timers.call_later(1.0, fired.append, 1)
    timers.close()
    timer.cancel()  # harmless after close
    clock.advance(5.0)
    assert fired == [] and timers.heap_size == 0 and timers.next_deadline() is None


async def test_wait_for_a_gather_times_out_as_a_timeout() -> None:
    """A cancelled gather() ends with CancelledError as its exception rather than as
    cancelled; the timeout is still a TimeoutError."""
    clock = FakeClock()
    timers = Timers(clock)
    loop = asyncio.get_running_loop()
    parts: list[asyncio.Future[int]] = [loop.create_future(), loop.create_future()]
    waited = asyncio.ensure_future(timers.wait_for(asyncio.gather(*parts), 1.0))
    await advance(clock, 1.0)
    with pytest.raises(TimeoutError):
        await waited
    assert all(part.cancelled() for part in parts)
