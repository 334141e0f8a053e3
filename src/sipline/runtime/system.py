"""The real clock and entropy, for the runtime (the core only ever receives them)."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import time

__all__ = ["MemoryRelease", "SystemClock", "SystemEntropy", "release_memory", "tune_gc"]


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class SystemEntropy:
    """Identifiers from the operating system's CSPRNG (unpredictable tags, branches, nonces)."""

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)


def tune_gc(gen0_threshold: int = 20_000) -> None:
    """For a long-running server, once it has started: move everything alive now (modules,
    configuration, caches loaded at start) out of the collector's sight, and collect
    the young generation less often.

    A message handled allocates many short-lived objects but makes no reference cycles
    worth chasing on every 700 allocations, and each full collection used to walk the
    whole heap (some 340,000 start-up objects: 0.2 s with the loop stopped, enough to
    make every peer retransmit). Cycles are still collected, only less eagerly.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)


def _malloc_trim() -> None:
    """glibc's malloc_trim(0): hand free heap pages back to the system (not only the top
    of the heap); a no-op where there is no glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def release_memory() -> None:
    """Collect everything (a full collection also empties the interpreter's free lists,
    so whole pymalloc arenas can go) and give the freed heap back to the system."""
    gc.collect()
    _malloc_trim()


class MemoryRelease:
    """After a burst: once the transaction table that grew past `min_peak` entries has
    drained to an eighth of its peak, release the memory it held (`release_memory`).

    A flood fills the table (completed non-INVITE transactions wait for Timer J,
    §17.2.2); when they end, the memory they took stays in the interpreter's free lists
    and in the C heap, which neither gives back by itself: a worker stayed at 3x its
    idle size after a flood. Called with the live count now and then (housekeeping),
    it acts at most once per burst."""

    def __init__(self, min_peak: int = 5000) -> None:
        self.min_peak = min_peak
        self.peak = 0  # the most live transactions since the last release
        self._floor = 0  # ... and how many were left then: a burst grows past it
        self.releases = 0

    def observe(self, live: int) -> bool:
        self.peak = max(self.peak, live)
        if self.peak - self._floor < self.min_peak or live > self.peak // 8:
            return False
        self.peak = self._floor = live
        self.releases += 1
        release_memory()
        return True
