"""Failing over between the targets a `Locator` ordered (RFC 3263 §4.3), sans-I/O."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from sipline.core.routing import Target

__all__ = ["Failover", "FailureKind", "failure_from_status"]


class FailureKind(Enum):
    """What makes a client move on to the next target (RFC 3263 §4.3)."""

    TRANSPORT_ERROR = "transport error"
    TIMEOUT = "timeout"  # Timer B or F fired with no response at all
    SERVICE_UNAVAILABLE = "503"


def failure_from_status(status: int) -> FailureKind | None:
    """Only a 503 response sends the request elsewhere; any other answer is final."""
    return FailureKind.SERVICE_UNAVAILABLE if status == 503 else None


class Failover:
    """A cursor over the ordered targets: each failure moves to the next one.

    Every retry is a new transaction (new Via branch, RFC 3263 §4.3); this object only
    says where it goes.
    """

    __slots__ = ("_index", "_targets", "failures")

    def __init__(self, targets: Sequence[Target]) -> None:
        self._targets = tuple(targets)
        self._index = 0
        self.failures: list[tuple[Target, FailureKind]] = []

    @property
    def current(self) -> Target | None:
        return self._targets[self._index] if self._index < len(self._targets) else None

    @property
    def remaining(self) -> int:
        """Targets not yet tried, the current one included."""
        return max(0, len(self._targets) - self._index)

    def fail(self, kind: FailureKind) -> Target | None:
        """Record that the current target failed; return the next one, or None if none."""
        current = self.current
        if current is None:
            return None
        self.failures.append((current, kind))
        self._index += 1
        return self.current
