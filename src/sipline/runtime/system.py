"""The real clock and entropy, for the runtime (the core only ever receives them)."""

from __future__ import annotations

import gc
import os
import time

__all__ = ["SystemClock", "SystemEntropy", "tune_gc"]


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
