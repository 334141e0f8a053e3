"""The real clock and entropy, for the runtime (the core only ever receives them)."""

from __future__ import annotations

import os
import time

__all__ = ["SystemClock", "SystemEntropy"]


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class SystemEntropy:
    """Identifiers from the operating system's CSPRNG (unpredictable tags, branches, nonces)."""

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)
