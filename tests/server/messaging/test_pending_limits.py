"""The counts behind the strangers' pending-subscription limits."""

from __future__ import annotations

from sipline.server.presence.pending import PendingLimits, StrangerPending


def test_limits_per_source_per_user_and_in_all_and_release() -> None:
    pending = StrangerPending(PendingLimits(per_source=2, per_target=2, total=3))
    pending.add("a", "10.0.0.1", "bob@x")
    pending.add("a", "10.0.0.1", "bob@x")  # the same subscription counts once
    pending.add("b", "10.0.0.1", "carol@x")
    assert not pending.admits("10.0.0.1", "dave@x")  # per source
    pending.add("c", "10.0.0.2", "bob@x")
    assert not pending.admits("10.0.0.3", "bob@x")  # per user
    assert not pending.admits("10.0.0.3", "dave@x")  # in all
    pending.release("a")
    pending.release("a")
    assert len(pending) == 2
    assert pending.admits("10.0.0.1", "bob@x")
    pending.release("b")
    pending.release("c")
    assert len(pending) == 0 and pending.admits("10.0.0.1", "bob@x")
