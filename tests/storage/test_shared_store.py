"""What worker processes sharing one SQLite file rely on: the binding change feed
(seen by a second process's cache); digest nonce counts are not among it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sipline.storage import SCHEMA_VERSION, AsyncStore, Binding, SqliteStore
from sipline.storage.sqlite_schema import MIGRATIONS


def b(contact: str, aor: str = "alice@example.com") -> Binding:
    return Binding(aor, contact, 100.0, "c", 1)


def test_every_binding_change_is_in_the_feed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    assert store.binding_feed_head() == 0
    assert store.binding_changes(0) == (0, [])
    store.upsert_binding(b("sip:a@h"))
    store.upsert_binding(b("sip:a@h"))  # an update
    store.upsert_binding(b("sip:b@h", aor="bob@example.com"))
    head, aors = store.binding_changes(0)
    assert head == store.binding_feed_head() == 3
    assert aors == ["alice@example.com", "bob@example.com"]
    store.remove_bindings("alice@example.com")
    assert store.binding_changes(head) == (4, ["alice@example.com"])
    assert store.binding_changes(4) == (4, [])
    store.close()


def test_a_reader_behind_the_pruned_feed_is_told_to_reload(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    for i in range(5):
        store.upsert_binding(b(f"sip:{i}@h"))
    assert store.prune_binding_changes(2) == 3
    assert store.binding_changes(1) == (5, None)  # changes 2 and 3 are gone
    assert store.binding_changes(3) == (5, ["alice@example.com"])
    store.close()


def test_version_10_drops_the_shared_nonce_counts(tmp_path: Path) -> None:
    """Nonce counts live in the memory of the worker that issued the nonce
    (core/auth_server.py): a file from version 9 loses its table of them."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:9]:
        for statement in statements:
            db.execute(statement)
    db.execute("PRAGMA user_version = 9")
    db.execute("INSERT INTO domains VALUES ('example.com')")
    db.execute("INSERT INTO digest_nonces VALUES ('n1', 1, 1000)")
    db.close()
    store = SqliteStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 10
        assert store.list_domains() == ["example.com"]
        assert store._query("SELECT name FROM sqlite_master WHERE name LIKE '%nonce%'") == []
    finally:
        store.close()


async def test_a_second_process_cache_follows_the_feed(tmp_path: Path) -> None:
    """Two AsyncStores on one file stand for two workers: a write through one shows
    in the other's cache after its next poll, removals too."""
    db = tmp_path / "t.db"
    async with await AsyncStore.open(db) as a, await AsyncStore.open(db) as other:
        other.shared = True
        await a.update_bindings("alice@example.com", upsert=[b("sip:a@h"), b("sip:b@h")])
        assert other.bindings("alice@example.com") == []
        assert await other.poll_binding_changes() == 1
        assert {x.contact for x in other.bindings("alice@example.com")} == {"sip:a@h", "sip:b@h"}
        assert other.binding_for_contact("sip:a@h", now=0.0) is not None
        await a.update_bindings("alice@example.com", remove=["sip:a@h"])
        assert await other.poll_binding_changes() == 1
        assert [x.contact for x in other.bindings("alice@example.com")] == ["sip:b@h"]
        assert other.binding_for_contact("sip:a@h", now=0.0) is None
        assert await other.poll_binding_changes() == 0  # nothing new: nothing reloaded
        await a.update_bindings("bob@example.com", upsert=[b("sip:c@h", aor="bob@example.com")])
        assert [x.contact for x in await other.reload_bindings("bob@example.com")] == ["sip:c@h"]
        assert other.bindings("bob@example.com")[0].contact == "sip:c@h"


async def test_a_pruned_feed_reloads_the_whole_cache(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    async with await AsyncStore.open(db) as a, await AsyncStore.open(db) as other:
        for i in range(4):
            await a.update_bindings(f"u{i}@example.com", upsert=[b("sip:x@h", f"u{i}@example.com")])
        await a.write(a.store.prune_binding_changes, 1)
        await other.poll_binding_changes()
        assert len(other.all_cached_bindings()) == 4
