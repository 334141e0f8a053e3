"""The routing part of the store contract (rules documents, device records), and the
migration that adds it to a version 1 database without touching its data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sipline.storage import SCHEMA_VERSION, DeviceInfo, SqliteStore, Store
from sipline.storage.sqlite_schema import MIGRATIONS


def test_rules_set_get_list_replace_remove(store: Store) -> None:
    assert store.get_route_rules("alice@example.com") is None
    assert store.list_route_rules() == []
    store.set_route_rules("bob@example.com", '{"dnd": true}', 1.0)
    store.set_route_rules("alice@example.com", "{}", 2.0)
    store.set_route_rules("alice@example.com", '{"dnd": false}', 3.0)
    assert store.get_route_rules("alice@example.com") == '{"dnd": false}'
    assert store.list_route_rules() == [
        ("alice@example.com", '{"dnd": false}'),
        ("bob@example.com", '{"dnd": true}'),
    ]
    assert store.remove_route_rules("alice@example.com")
    assert not store.remove_route_rules("alice@example.com")
    assert store.list_route_rules() == [("bob@example.com", '{"dnd": true}')]


def test_device_info_upsert_list_remove(store: Store) -> None:
    a = DeviceInfo("alice@example.com", "<urn:uuid:1>", "desk", "berlin", None, "manual", 5.0)
    b = DeviceInfo(
        "alice@example.com",
        "sip:alice@192.0.2.2",
        None,
        "munich",
        "<presence/>",
        "geolocation",
        6.0,
    )
    c = DeviceInfo("bob@example.com", "sip:bob@192.0.2.3", "mobile")
    for info in (b, a, c):
        store.set_device_info(info)
    assert store.get_device_info("alice@example.com", "<urn:uuid:1>") == a
    assert store.list_device_info("alice@example.com") == [a, b]
    assert store.list_device_info() == [a, b, c]
    moved = DeviceInfo(a.aor, a.device, "desk", "hamburg", None, "network", 9.0)
    store.set_device_info(moved)
    assert store.get_device_info(a.aor, a.device) == moved
    assert store.remove_device_info(a.aor, a.device)
    assert not store.remove_device_info(a.aor, a.device)
    assert store.get_device_info(a.aor, a.device) is None


def test_route_marks_change_with_every_write(store: Store) -> None:
    empty = store.route_marks()
    assert empty == ((0, 0.0), (0, 0.0))
    store.set_route_rules("alice@example.com", "{}", 10.0)
    one = store.route_marks()
    assert one[0] == (1, 10.0)
    store.set_route_rules("alice@example.com", "{}", 11.0)
    assert store.route_marks()[0] == (1, 11.0)
    store.remove_route_rules("alice@example.com")
    assert store.route_marks()[0] == (0, 0.0)
    store.set_device_info(DeviceInfo("a@b", "d", updated_at=4.0))
    assert store.route_marks()[1] == (1, 4.0)


def test_writes_are_atomic_in_a_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.set_route_rules("alice@example.com", "{}", 1.0)
        store.set_device_info(DeviceInfo("alice@example.com", "d"))
        raise RuntimeError("abort")
    assert store.list_route_rules() == [] and store.list_device_info() == []


def test_version_1_database_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO domains(name) VALUES ('example.com')")
    db.execute("INSERT INTO users(username, domain) VALUES ('alice', 'example.com')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = SqliteStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 2
        assert store.get_user("alice", "example.com") is not None
        store.set_route_rules("alice@example.com", "{}", 1.0)
    finally:
        store.close()
    reopened = SqliteStore(path)
    try:
        assert reopened.list_route_rules() == [("alice@example.com", "{}")]
    finally:
        reopened.close()
