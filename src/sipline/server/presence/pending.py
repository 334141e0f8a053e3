"""Bounds on the pending subscriptions of watchers nobody vouches for.

A SUBSCRIBE from a stranger (a foreign From, or no credentials) is answered like any
other (RFC 6665 §4.2.1.2: 200 and a NOTIFY, "pending" until the user decides), and
the same whether the user exists or not, so a scanner learns nothing (README "Running
on the Internet"). But each such subscription used to be stored, for any name: a
scanner could fill the store. So a stranger's subscription is kept only when the
user exists and it fits under three limits: per source address, per watched user,
and in all. Otherwise it is answered just the same and not kept (its watcher's
refresh gets 481, §4.1.2.2, and it may subscribe again).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

__all__ = ["PendingLimits", "StrangerPending"]


@dataclass(frozen=True, slots=True)
class PendingLimits:
    per_source: int = 20
    per_target: int = 20
    total: int = 1000


class StrangerPending:
    """Counts the strangers' subscriptions held (by id), per source and per user."""

    __slots__ = ("_by_id", "_sources", "_targets", "limits")

    def __init__(self, limits: PendingLimits) -> None:
        self.limits = limits
        self._by_id: dict[str, tuple[str, str]] = {}
        self._sources: Counter[str] = Counter()
        self._targets: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._by_id)

    def admits(self, source: str, target: str) -> bool:
        limits = self.limits
        return (
            len(self._by_id) < limits.total
            and self._sources[source] < limits.per_source
            and self._targets[target] < limits.per_target
        )

    def add(self, sub_id: str, source: str, target: str) -> None:
        if sub_id in self._by_id:
            return
        self._by_id[sub_id] = (source, target)
        self._sources[source] += 1
        self._targets[target] += 1

    def release(self, sub_id: str) -> None:
        """The subscription is gone, or no longer pending (the user decided)."""
        entry = self._by_id.pop(sub_id, None)
        if entry is None:
            return
        source, target = entry
        for counter, key in ((self._sources, source), (self._targets, target)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
