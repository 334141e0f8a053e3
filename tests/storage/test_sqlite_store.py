"""SQLite specifics: file creation, pragmas, schema versioning and open errors."""

from __future__ import annotations

import concurrent.futures
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from sipline.storage import SCHEMA_VERSION, Binding, SqliteStore, StoreError


def test_created_on_first_run_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = SqliteStore(path)
    assert path.exists()
    assert store.schema_version == SCHEMA_VERSION
    store.add_domain("example.com")
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    again = SqliteStore(path)  # reopening migrates nothing and keeps the data
    assert again.list_domains() == ["example.com"]
    again.close()


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "fk.db")
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store._db.execute("INSERT INTO users(username, domain) VALUES ('a', 'nowhere')")
    store.close()


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(StoreError, match=re.escape(f"cannot open database {path}")):
        SqliteStore(path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an SQLite file, just some text" * 100)
    with pytest.raises(StoreError, match=re.escape(f"cannot open database {path}")):
        SqliteStore(path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(path)


def test_two_connections_see_each_others_commits(tmp_path: Path) -> None:
    # The CLI edits accounts while the server runs: both open the same file.
    path = tmp_path / "shared.db"
    server, cli = SqliteStore(path), SqliteStore(path)
    cli.add_domain("example.com")
    cli.add_user("alice", "example.com", "pw")
    assert server.lookup_ha1("alice", "example.com", "MD5") is not None
    server.upsert_binding(Binding("alice@example.com", "sip:a@h", 10.0, "c", 1))
    assert len(cli.all_bindings()) == 1
    server.close()
    cli.close()


def test_processes_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    """Several nodes starting on one fresh database: each step runs once, whoever
    takes it, and every opener gets the whole schema (README "Running several nodes")."""
    path = tmp_path / "shared.db"
    start = threading.Barrier(6)

    def open_store() -> int:
        start.wait()
        store = SqliteStore(path, timeout_s=30.0)
        try:
            return store.schema_version
        finally:
            store.close()

    for _ in range(3):
        path.unlink(missing_ok=True)
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            assert set(pool.map(lambda _: open_store(), range(6))) == {SCHEMA_VERSION}
