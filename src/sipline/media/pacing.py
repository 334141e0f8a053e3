"""The media clock: one `loop.call_at` chain per event loop and packet time.

Every session with the same packet time ticks together, on a fixed grid: tick k is
due at t0 + k * period, computed from the previous deadline rather than from when the
callback ran, so lateness never accumulates into drift. After a stall longer than a
few periods the grid is rejoined (the sessions skip what they missed). One timer for
hundreds of sessions instead of one each keeps the event loop's heap small.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Protocol

__all__ = ["MAX_CATCH_UP", "Pacer", "Ticking", "pacer_for"]

log = logging.getLogger("sipline.media")

# A stall longer than this many periods is skipped rather than caught up in a burst.
MAX_CATCH_UP = 3


class Ticking(Protocol):
    def _on_tick(self, now: float) -> None: ...


class Pacer:
    """Calls `_on_tick(now)` on every registered session once per `period` seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float) -> None:
        self.loop = loop
        self.period = period
        self.sessions: list[Ticking] = []
        self._handle: asyncio.TimerHandle | None = None
        self.next_tick = 0.0
        self.ticks = 0
        self.max_lateness = 0.0  # seconds the worst tick ran after its deadline

    def add(self, session: Ticking) -> float:
        """Register a session; returns the grid time of its first tick."""
        if session not in self.sessions:
            self.sessions.append(session)
        if self._handle is None:
            self.next_tick = self.loop.time()
            self._handle = self.loop.call_at(self.next_tick, self._tick)
        return self.next_tick

    def remove(self, session: Ticking) -> None:
        with contextlib.suppress(ValueError):
            self.sessions.remove(session)
        if not self.sessions and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        now = self.loop.time()
        self.ticks += 1
        self.max_lateness = max(self.max_lateness, now - self.next_tick)
        for session in list(self.sessions):
            try:
                session._on_tick(now)
            except Exception:
                log.exception("media session tick failed")
        step = self.period
        nxt = self.next_tick + step
        if nxt < now - MAX_CATCH_UP * step:
            nxt += (now - nxt) // step * step
        self.next_tick = nxt
        self._handle = self.loop.call_at(nxt, self._tick) if self.sessions else None


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
