"""The media clock: one `loop.call_at` chain per event loop and packet time.

Every session with the same packet time ticks on a fixed grid: its tick k is due at
t0 + k * period, computed from the previous deadline rather than from when the
callback ran, so lateness never accumulates into drift. Sessions are spread over
`SLOTS` phases of the period (a session joins the least loaded one), so that a
thousand sessions do not all send in one burst: each callback serves one slot, and
the datagrams that arrive meanwhile are handled between slots. After a stall longer
than a few periods the grid is rejoined (the sessions skip what they missed).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

__all__ = ["MAX_CATCH_UP", "SLOTS", "Pacer", "Ticking", "pacer_for"]

log = logging.getLogger("sipline.media")

# A stall longer than this many periods is skipped rather than caught up in a burst.
MAX_CATCH_UP = 3
# Phases per period: 4 slots of 5 ms for 20 ms packets.
SLOTS = 4


class Ticking(Protocol):
    def _on_tick(self, now: float) -> None: ...


class Pacer:
    """Calls `_on_tick(now)` on every registered session once per `period` seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float, slots: int = SLOTS) -> None:
        self.loop = loop
        self.period = period
        self.step = period / slots
        self.slots: list[list[Ticking]] = [[] for _ in range(slots)]
        self._slot_of: dict[int, int] = {}
        self._handle: asyncio.TimerHandle | None = None
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
            self.next_tick = self.loop.time()
            self._next_slot = 0
            self._handle = self.loop.call_at(self.next_tick, self._tick)
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
        now = self.loop.time()
        self.ticks += 1
        self.max_lateness = max(self.max_lateness, now - self.next_tick)
        for session in list(self.slots[self._next_slot]):
            try:
                session._on_tick(now)
            except Exception:
                log.exception("media session tick failed")
        step = self.step
        nxt = self.next_tick + step
        if nxt < now - MAX_CATCH_UP * self.period:
            # A long stall: rejoin the grid at the same phase; sessions skip what they missed.
            nxt += (now - nxt) // self.period * self.period
        self.next_tick = nxt
        self._next_slot = (self._next_slot + 1) % len(self.slots)
        self._handle = self.loop.call_at(nxt, self._tick) if self._slot_of else None


_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Pacer]] = (
    weakref.WeakKeyDictionary()
)


def pacer_for(loop: asyncio.AbstractEventLoop, ptime_ms: int) -> Pacer:
    """The shared pacer of `loop` for packets of `ptime_ms`."""
    per_loop = _PACERS.setdefault(loop, {})
    pacer = per_loop.get(ptime_ms)
    if pacer is None:
        pacer = per_loop[ptime_ms] = Pacer(loop, ptime_ms / 1000)
    return pacer
