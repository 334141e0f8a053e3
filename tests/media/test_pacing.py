"""The media clock on an injected clock: a fixed grid, slots spread over the period,
a stall rejoined, and a whole session paced by a fake clock without sleeping."""

from __future__ import annotations

import numpy as np

from sipline.media.audio import ArraySink
from sipline.media_io.pacing import Pacer, loop_clock, pacer_for
from sipline.media_io.session import MediaSession, StreamConfig
from sipline.runtime.timers import Timers
from sipline.testing import FakeClock, SeededEntropy


class _Recorder:
    def __init__(self) -> None:
        self.ticks: list[float] = []

    def on_tick(self, now: float) -> None:
        self.ticks.append(round(now, 6))


def test_sessions_share_slots_of_one_grid() -> None:
    clock = FakeClock(10.0)
    pacer = Pacer(Timers(clock), 0.02)
    a, b = _Recorder(), _Recorder()
    assert pacer.add(a) == 10.0
    assert pacer.add(b) == 10.005  # the next free slot of the period
    clock.advance(0.05)
    assert a.ticks == [10.0, 10.02, 10.04]
    assert b.ticks == [10.005, 10.025, 10.045]
    assert pacer.max_lateness == 0.0


def test_the_grid_does_not_drift_and_rejoins_after_a_stall() -> None:
    class _Stalling(_Recorder):
        def on_tick(self, now: float) -> None:
            super().on_tick(now)
            if len(self.ticks) == 2:
                clock.now += 0.5  # the process stalls inside a tick

    clock = FakeClock(0.0)
    pacer = Pacer(Timers(clock), 0.02, slots=1)
    session = _Stalling()
    pacer.add(session)
    clock.advance(0.6)
    # After the stall (0.02 -> 0.52) the grid is rejoined at the same phase rather
    # than caught up tick by tick from 0.04.
    assert session.ticks[:2] == [0.0, 0.02]
    rejoined = session.ticks[2]
    assert 0.46 < rejoined <= 0.52
    assert all(round(t / 0.02, 6).is_integer() for t in session.ticks)
    assert len(session.ticks) == 2 + round((0.6 - rejoined) / 0.02) + 1


def test_removing_the_last_session_stops_the_timer() -> None:
    clock = FakeClock(0.0)
    timers = Timers(clock)
    pacer = Pacer(timers, 0.02)
    session = _Recorder()
    pacer.add(session)
    pacer.remove(session)
    assert timers.next_deadline() is None


async def test_a_session_on_a_fake_clock_sends_one_frame_per_interval() -> None:
    clock = FakeClock(0.0)
    timers = Timers(clock)
    session = MediaSession(entropy=SeededEntropy(1), clock=timers)
    session.configure(StreamConfig(("127.0.0.1", 9)))
    session.record(ArraySink())
    done = session.play(np.zeros(160 * 10, dtype=np.int16))
    session.start()
    clock.advance(0.99)  # ticks at 0, 0.02, ..., 0.98
    stats = session.stats()
    assert stats.packets_sent == 50 and stats.send_late == stats.skipped == 0
    assert done.done()
    await session.close()
    assert timers.next_deadline() is None


async def test_the_loop_clock_is_shared_per_loop() -> None:
    clock = loop_clock()
    assert loop_clock() is clock
    assert pacer_for(clock, 20) is pacer_for(clock, 20)
    assert pacer_for(clock, 20) is not pacer_for(clock, 30)
