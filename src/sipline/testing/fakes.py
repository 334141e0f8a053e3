"""A hand-stepped clock and a seeded entropy source."""

from __future__ import annotations

import hashlib

__all__ = ["FakeClock", "SeededEntropy"]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 0.0, wall_start: float = 1_790_000_000.0) -> None:
        self.now = start
        self._wall_offset = wall_start - start

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self._wall_offset

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


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
