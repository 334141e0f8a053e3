"""A hand-stepped clock and a seeded entropy source."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Protocol

__all__ = ["FakeClock", "SeededEntropy", "advance"]


class _Due(Protocol):
    """What `sipline.runtime.timers.Timers` offers a clock that steps by hand."""

    def next_deadline(self) -> float | None: ...

    def run_due(self) -> int: ...


class FakeClock:
    """A clock that moves only when told to.

    Timers attached to it (`sipline.runtime.timers.Timers` attaches itself) fire as
    `advance` passes their deadlines, each with the clock reading its deadline, in
    deadline order; so a whole server or user agent runs on it without sleeping.
    """

    def __init__(self, start: float = 0.0, wall_start: float = 1_790_000_000.0) -> None:
        self.now = start
        self._wall_offset = wall_start - start
        self._attached: list[_Due] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self._wall_offset

    def attach(self, timers: _Due) -> None:
        self._attached.append(timers)

    def next_deadline(self) -> float | None:
        deadlines = [d for t in self._attached if (d := t.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def advance(self, seconds: float) -> float:
        """Move time on by `seconds`, firing every attached timer that falls due on the way
        (synchronously; what the callbacks start as tasks runs when the loop next turns:
        use `await advance(clock, seconds)` to let it)."""
        target = self.now + seconds
        while (due := self.next_deadline()) is not None and due <= target:
            self.now = max(self.now, due)
            for timers in list(self._attached):
                timers.run_due()
        self.now = target
        return self.now


async def advance(clock: FakeClock, seconds: float, *, turns: int = 20) -> float:
    """Move `clock` on by `seconds` one deadline at a time, letting the event loop turn
    between deadlines, so that tasks woken by one timer can set the next before time
    passes it (a retransmission schedule, a refresh after a response)."""
    target = clock.now + seconds
    await _turn(turns)
    while (due := clock.next_deadline()) is not None and due <= target:
        clock.advance(max(0.0, due - clock.now))
        await _turn(turns)
    clock.advance(target - clock.now)
    await _turn(turns)
    return clock.now


async def _turn(turns: int) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


class SeededEntropy:
    """Reproducible 'random' bytes: SHA-256 in counter mode over a seed."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed.to_bytes(8, "big", signed=True)
        self._counter = 0

    def random_bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self._counter += 1
            out += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
        return out[:n]
