"""Time and randomness, injected.

The core never reads a clock or an entropy source itself: callers pass `now`
(monotonic seconds) into every time-dependent call and hand an `Entropy` to the
objects that mint identifiers (branches, tags, Call-IDs, cnonces, SSRCs).
`sipline.runtime` supplies the real ones; `sipline.testing` supplies fakes.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Clock", "Entropy", "token_from_bytes"]


class Clock(Protocol):
    """Where the runtime reads time. The core itself only ever receives `now`."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (for Date headers, schedules and expiry)."""
        ...


class Entropy(Protocol):
    """Unpredictable bytes for protocol identifiers."""

    def random_bytes(self, n: int) -> bytes:
        """Return `n` unpredictable bytes."""
        ...


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def token_from_bytes(data: bytes) -> str:
    """Encode random bytes as a SIP `token` (alphanumerics only, safe in every header)."""
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out) or "0"
