"""The entity tags `sipline presence` keeps between runs (RFC 3903 §4.1)."""

from __future__ import annotations

from pathlib import Path

from sipline.cli.presence_state import PresenceState


def test_an_entity_tag_is_kept_per_account_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "state" / "presence.json"
    bob = PresenceState("bob@example.com", "127.0.0.1:5060", path)
    alice = PresenceState("alice@example.com", "127.0.0.1:5060", path)
    assert bob.etag(now=0.0) is None  # no file yet
    bob.save("e1", 100.0)
    alice.save("a1", 100.0)
    assert bob.etag(now=50.0) == "e1" and alice.etag(now=50.0) == "a1"
    assert bob.etag(now=100.0) is None  # expired at the server too
    bob.save(None, 0.0)
    assert bob.etag(now=50.0) is None and alice.etag(now=50.0) == "a1"


def test_a_damaged_file_means_a_fresh_publication(tmp_path: Path) -> None:
    path = tmp_path / "presence.json"
    path.write_text("{not json")
    state = PresenceState("bob@example.com", None, path)
    assert state.etag(now=0.0) is None
    state.save("e2", 10.0)
    assert state.etag(now=0.0) == "e2"
