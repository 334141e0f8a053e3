"""The media clock: one timer chain per clock and packet time.

Every session with the same packet time ticks on a fixed grid: its tick k is due at
t0 + k * period, computed from the previous deadline rather than from when the
callback ran, so lateness never accumulates into drift. Sessions are spread over
`SLOTS` phases of the period (a session joins the least loaded one), so that a
thousand sessions do not all send in one burst: each callback serves one slot, and
the datagrams that arrive meanwhile are handled between slots. After a stall longer
than a few periods the grid is rejoined (the sessions skip what they missed).

The grid runs on a `MediaClock`: the event loop's own (`loop_clock`, the default) or
any object with `now()` and `call_at()`, such as the endpoint's
`sipline.runtime.timers.Timers`, so a test steps media time with a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Protocol

from sipline.media.send_schedule import MAX_CATCH_UP

__all__ = [
    "MAX_CATCH_UP",
    "SLOTS",
    "Cancellable",
    "LoopClock",
    "MediaClock",
    "Pacer",
    "Ticking",
    "loop_clock",
    "pacer_for",
]

log = logging.getLogger("sipline.media")

# Phases per period: 4 slots of 5 ms for 20 ms packets.
SLOTS = 4


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class MediaClock(Protocol):
    """Monotonic seconds and one-shot callbacks at a time on them."""

    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable: ...


class LoopClock:
    """The event loop's clock: media timing on the loop, as real calls run it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def now(self) -> float:
        return self.loop.time()

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable:
        return self.loop.call_at(when, callback)


_LOOP_CLOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopClock] = (
    weakref.WeakKeyDictionary()
)


def loop_clock(loop: asyncio.AbstractEventLoop | None = None) -> LoopClock:
    """The one `LoopClock` of `loop` (default: the running loop), so its sessions share
    their pacers."""
    loop = loop if loop is not None else asyncio.get_running_loop()
    clock = _LOOP_CLOCKS.get(loop)
    if clock is None:
        clock = _LOOP_CLOCKS[loop] = LoopClock(loop)
    return clock


class Ticking(Protocol):
    def on_tick(self, now: float) -> None: ...


class Pacer:
    """Calls `on_tick(now)` on every registered session once per `period` seconds."""

    def __init__(self, clock: MediaClock, period: float, slots: int = SLOTS) -> None:
        self.clock = clock
        self.period = period
        self.step = period / slots
        self.slots: list[list[Ticking]] = [[] for _ in range(slots)]
        self._slot_of: dict[int, int] = {}
        self._handle: Cancellable | None = None
        self.next_tick = 0.0  # when slot `self._next_slot` is due
        self._next_slot = 0
        self.ticks = 0
        self.max_lateness = 0.0  # seconds the worst tick ran after its deadline

    @property
    def sessions(self) -> list[Ticking]:
        return [s for slot in self.slots for s in slot]

    def add(self, session: Ticking) -> float:
        """Register a session; returns the grid time of its first tick."""
        if id(session) in self._slot_of:
            return self._due_of(self._slot_of[id(session)])
        if self._handle is None:
            self.next_tick = self.clock.now()
            self._next_slot = 0
            self._handle = self.clock.call_at(self.next_tick, self._tick)
        index = min(range(len(self.slots)), key=lambda i: len(self.slots[i]))
        self.slots[index].append(session)
        self._slot_of[id(session)] = index
        return self._due_of(index)

    def _due_of(self, index: int) -> float:
        """The next time slot `index` is served."""
        ahead = (index - self._next_slot) % len(self.slots)
        return self.next_tick + ahead * self.step

    def remove(self, session: Ticking) -> None:
        index = self._slot_of.pop(id(session), None)
        if index is not None:
            self.slots[index].remove(session)
        if not self._slot_of and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        now = self.clock.now()
        self.ticks += 1
        self.max_lateness = max(self.max_lateness, now - self.next_tick)
        for session in list(self.slots[self._next_slot]):
            try:
                session.on_tick(now)
            except Exception:
                log.exception("media session tick failed")
        step = self.step
        nxt = self.next_tick + step
        if nxt < now - MAX_CATCH_UP * self.period:
            # A long stall: rejoin the grid at the same phase; sessions skip what they missed.
            nxt += (now - nxt) // self.period * self.period
        self.next_tick = nxt
        self._next_slot = (self._next_slot + 1) % len(self.slots)
        self._handle = self.clock.call_at(nxt, self._tick) if self._slot_of else None


_PACERS: weakref.WeakKeyDictionary[MediaClock, dict[int, Pacer]] = weakref.WeakKeyDictionary()


def pacer_for(clock: MediaClock, ptime_ms: int) -> Pacer:
    """The shared pacer of `clock` for packets of `ptime_ms`."""
    per_clock = _PACERS.setdefault(clock, {})
    pacer = per_clock.get(ptime_ms)
    if pacer is None:
        pacer = per_clock[ptime_ms] = Pacer(clock, ptime_ms / 1000)
    return pacer
