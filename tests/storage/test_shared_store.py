"""What worker processes sharing one store rely on: the binding change feed (seen by a
second process's cache, never by the writer itself); digest nonce counts are not among it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from sipline.storage import SCHEMA_VERSION, AsyncStore, Binding, SqliteStore, Store
from sipline.storage.location import DatabaseLocation, open_store
from sipline.storage.sqlite_schema import MIGRATIONS


def b(contact: str, aor: str = "alice@example.com") -> Binding:
    return Binding(aor, contact, 100.0, "c", 1)


def changes(store: Store, after: int, head: int) -> tuple[int, list[str] | None]:
    """`binding_changes(after)` once the feed reached `head` (a NOTIFY reaches the
    listener a moment after the writer's commit returned; SQLite's feed at once)."""
    deadline = time.monotonic() + 3
    while True:
        found = store.binding_changes(after)
        if found[0] >= head or time.monotonic() > deadline:
            return found
        time.sleep(0.005)


def test_every_binding_change_of_another_store_is_in_the_feed(database: DatabaseLocation) -> None:
    """Another store (another process, the CLI) sees each change once per AOR and
    write; the writer's own changes are not handed back to it."""
    store, reader = open_store(database), open_store(database)
    start = reader.binding_feed_head()
    assert reader.binding_changes(start) == (start, [])
    store.upsert_binding(b("sip:a@h"))
    store.upsert_binding(b("sip:a@h"))  # an update
    store.upsert_binding(b("sip:b@h", aor="bob@example.com"))
    head, aors = changes(reader, start, start + 3)
    assert head == reader.binding_feed_head() == start + 3
    assert aors == ["alice@example.com", "bob@example.com"]
    assert store.binding_changes(store.binding_feed_head())[1] == []  # its own: none
    store.remove_bindings("alice@example.com")
    store.remove_binding("bob@example.com", "sip:nothing@h")  # removes nothing: no change
    assert changes(reader, head, head + 1) == (head + 1, ["alice@example.com"])
    assert reader.binding_changes(head + 1) == (head + 1, [])
    store.upsert_binding(b("sip:c@h", aor="carol@example.com"))
    store.update_bindings("carol@example.com")  # nothing to do: no change
    assert store.purge_expired(now=1000.0) == 2  # bob and carol: one change each
    assert changes(reader, head + 1, head + 4)[1] == ["carol@example.com", "bob@example.com"]
    store.close()
    reader.close()


def test_the_writer_skips_its_own_changes(tmp_path: Path) -> None:
    """Schema 13: each change names its origin; a store's own are left out, the CLI's
    (another store on the same file) are not."""
    store, cli = SqliteStore(tmp_path / "t.db"), SqliteStore(tmp_path / "t.db")
    assert store.origin != cli.origin
    store.upsert_binding(b("sip:a@h"))
    cli.upsert_binding(b("sip:b@h", aor="bob@example.com"))
    assert store.binding_changes(0) == (2, ["bob@example.com"])
    assert cli.binding_changes(0) == (2, ["alice@example.com"])
    store.close()
    cli.close()


def test_a_reader_behind_the_pruned_feed_is_told_to_reload(tmp_path: Path) -> None:
    store, reader = SqliteStore(tmp_path / "t.db"), SqliteStore(tmp_path / "t.db")
    for i in range(5):
        store.upsert_binding(b(f"sip:{i}@h"))
    assert store.prune_binding_changes(2) == 3
    assert reader.binding_changes(1) == (5, None)  # changes 2 and 3 are gone
    assert reader.binding_changes(3) == (5, ["alice@example.com"])
    store.close()
    reader.close()


def old_file(tmp_path: Path, version: int) -> tuple[Path, sqlite3.Connection]:
    """A SQLite file at schema `version`, as an older sipline left it."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:version]:
        for statement in statements:
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {version:d}")
    return path, db


def test_version_10_drops_the_shared_nonce_counts(tmp_path: Path) -> None:
    """Nonce counts live in the memory of the worker that issued the nonce
    (core/auth_server.py): a file from version 9 loses its table of them."""
    path, db = old_file(tmp_path, 9)
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


async def reloaded(store: AsyncStore) -> int:
    """Poll until something was reloaded (a NOTIFY reaches the listener a moment after
    the writer's commit returned); how many AORs."""
    for _ in range(300):
        n = await store.poll_binding_changes()
        if n:
            return n
        await asyncio.sleep(0.01)
    return 0


async def test_a_second_process_cache_follows_the_feed(database: DatabaseLocation) -> None:
    """Two AsyncStores on one database stand for two workers: a write through one shows
    in the other's cache after its next poll, removals too; the writer reloads nothing."""
    db = str(database)
    async with await AsyncStore.open(db) as a, await AsyncStore.open(db) as other:
        other.shared = True
        await a.update_bindings("alice@example.com", upsert=[b("sip:a@h"), b("sip:b@h")])
        assert other.bindings("alice@example.com") == []
        assert await a.poll_binding_changes() == 0  # its own write: in its cache already
        assert await reloaded(other) == 1
        assert {x.contact for x in other.bindings("alice@example.com")} == {"sip:a@h", "sip:b@h"}
        assert other.binding_for_contact("sip:a@h", now=0.0) is not None
        await a.update_bindings("alice@example.com", remove=["sip:a@h"])
        assert await reloaded(other) == 1
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


def test_version_13_moves_the_feed_from_triggers_to_the_writer(tmp_path: Path) -> None:
    """A file from version 10 keeps its feed rows (of no known origin: every reader
    reloads them) and loses the triggers: the store writes the rows itself."""
    path, db = old_file(tmp_path, 10)
    db.execute("INSERT INTO bindings(aor, contact, expires_at, call_id, cseq, updated_at)"
               " VALUES ('alice@example.com', 'sip:a@h', 100, 'c', 1, 0)")  # fmt: skip
    db.close()
    store = SqliteStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 13
        assert store._query("SELECT name FROM sqlite_master WHERE type = 'trigger'"
                            " AND name LIKE 'bindings_%'") == []  # fmt: skip
        assert store.binding_changes(0) == (1, ["alice@example.com"])
        store.upsert_binding(b("sip:b@h"))
        assert store._query("SELECT seq, origin FROM binding_changes") == [
            (1, ""),
            (2, store.origin),
        ]
    finally:
        store.close()
