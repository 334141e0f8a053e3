"""The messaging and presence part of the store contract (stored messages, delivery
leases, publications, watcher rules, subscriptions), and the migration to version 3."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipline.storage import (
    SCHEMA_VERSION,
    NewMessage,
    Publication,
    SqliteStore,
    Store,
    SubscriptionRecord,
)
from sipline.storage.sqlite_schema import MIGRATIONS

ALICE = "alice@example.com"


@pytest.fixture(params=["sqlite-file", "sqlite-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = SqliteStore(tmp_path / "sipline.db" if request.param == "sqlite-file" else ":memory:")
    yield s
    s.close()


def message(text: str, *, aor: str = ALICE, at: float = 10.0, ttl: float = 100.0) -> NewMessage:
    return NewMessage(
        aor=aor,
        sender="<sip:bob@example.com>;tag=1",
        recipient=f"<sip:{aor}>",
        call_id=f"call-{text}",
        content_type="text/plain",
        body=text.encode(),
        received_at=at,
        expires_at=at + ttl,
        headers=(("Subject", "hi"),),
    )


def test_messages_come_back_in_arrival_order_until_removed(store: Store) -> None:
    ids = [store.add_message(message(t)) for t in ("one", "two", "three")]
    store.add_message(message("other", aor="bob@example.com"))
    assert ids == sorted(ids)
    pending = store.pending_messages(ALICE, now=20.0)
    assert [m.body for m in pending] == [b"one", b"two", b"three"]
    first = pending[0]
    assert first.headers == (("Subject", "hi"),) and first.sender.endswith("tag=1")
    assert first.call_id == "call-one" and first.attempts == 0
    assert store.count_messages(ALICE, now=20.0) == 3
    assert store.aors_with_messages(now=20.0) == [ALICE, "bob@example.com"]
    assert store.remove_message(ids[0]) and not store.remove_message(ids[0])
    assert [m.body for m in store.pending_messages(ALICE, now=20.0, limit=1)] == [b"two"]


def test_deferring_counts_attempts(store: Store) -> None:
    mid = store.add_message(message("x"))
    store.defer_message(mid, 50.0)
    store.defer_message(mid, 70.0)
    (m,) = store.pending_messages(ALICE, now=20.0)
    assert m.attempts == 2 and m.next_attempt_at == 70.0


def test_expired_messages_are_hidden_then_purged(store: Store) -> None:
    store.add_message(message("old", ttl=5.0))
    store.add_message(message("new", ttl=500.0))
    assert [m.body for m in store.pending_messages(ALICE, now=20.0)] == [b"new"]
    assert store.count_messages(ALICE, now=20.0) == 1
    purged = store.purge_expired_messages(20.0)
    assert [m.body for m in purged] == [b"old"]
    assert store.purge_expired_messages(20.0) == []


def test_delivery_lease_is_exclusive_until_it_runs_out(store: Store) -> None:
    assert store.claim_delivery(ALICE, "w1", now=0.0, lease_s=10.0)
    assert store.claim_delivery(ALICE, "w1", now=1.0, lease_s=10.0)  # renewed by its holder
    assert not store.claim_delivery(ALICE, "w2", now=5.0, lease_s=10.0)
    assert store.claim_delivery(ALICE, "w2", now=11.5, lease_s=10.0)  # w1's lapsed
    store.release_delivery(ALICE, "w1")  # not the holder: no effect
    assert not store.claim_delivery(ALICE, "w1", now=12.0, lease_s=10.0)
    store.release_delivery(ALICE, "w2")
    assert store.claim_delivery(ALICE, "w1", now=12.0, lease_s=10.0)


def pub(etag: str, *, expires_at: float = 100.0, doc: bytes = b"<presence/>") -> Publication:
    return Publication(ALICE, etag, "presence", "application/pidf+xml", doc, expires_at, 1.0)


def test_publications_insert_replace_and_expire(store: Store) -> None:
    assert store.put_publication(pub("a"))
    assert store.put_publication(pub("b", expires_at=30.0))
    assert [p.etag for p in store.publications(ALICE, "presence", now=10.0)] == ["a", "b"]
    assert [p.etag for p in store.publications(ALICE, "presence", now=50.0)] == ["a"]
    assert store.publications(ALICE, "dialog", now=10.0) == []
    # RFC 3903 §4.1: a modification replaces the entity tag atomically.
    assert store.put_publication(pub("c", doc=b"<new/>"), replaces="a")
    assert store.get_publication(ALICE, "presence", "a") is None
    found = store.get_publication(ALICE, "presence", "c")
    assert found is not None and found.document == b"<new/>"
    assert not store.put_publication(pub("d"), replaces="gone")
    assert store.get_publication(ALICE, "presence", "d") is None
    assert store.remove_publication(ALICE, "presence", "c")
    assert not store.remove_publication(ALICE, "presence", "c")
    assert store.purge_expired_publications(50.0) == 1


def test_watcher_rules(store: Store) -> None:
    store.set_watcher_rule(ALICE, "bob@example.com", "allow", 1.0)
    store.set_watcher_rule(ALICE, "eve@evil.example", "block", 2.0)
    store.set_watcher_rule(ALICE, "bob@example.com", "block", 3.0)
    assert store.watcher_rules(ALICE) == [
        ("bob@example.com", "block"),
        ("eve@evil.example", "block"),
    ]
    with pytest.raises(ValueError, match="decision"):
        store.set_watcher_rule(ALICE, "x@y", "maybe", 1.0)
    assert store.remove_watcher_rule(ALICE, "bob@example.com")
    assert not store.remove_watcher_rule(ALICE, "bob@example.com")


def sub(sid: str, *, resource: str = ALICE, owner: str = "0") -> SubscriptionRecord:
    return SubscriptionRecord(
        sid, "presence", resource, "bob@example.com", "active", 99.0, "{}", owner, 1.0
    )


def test_subscriptions_save_list_remove(store: Store) -> None:
    store.save_subscription(sub("b"))
    store.save_subscription(sub("a", resource="carol@example.com", owner="1"))
    store.save_subscription(sub("b", owner="2"))  # replaced by id
    assert [s.id for s in store.list_subscriptions()] == ["a", "b"]
    assert [s.id for s in store.list_subscriptions(owner="2")] == ["b"]
    assert [s.id for s in store.list_subscriptions(resources=[ALICE])] == ["b"]
    assert store.list_subscriptions(resources=[]) == []
    found = store.get_subscription("a")
    assert found is not None and found.owner == "1" and found.resource == "carol@example.com"
    assert store.remove_subscription("a") and not store.remove_subscription("a")


def test_the_subscriptions_of_a_silent_process_are_adopted_once(store: Store) -> None:
    """Processes beat; one that fell silent (a node killed) loses its subscriptions to
    the first live process that looks, and only to that one."""
    a, b, c = "127.0.0.1:5060/0", "127.0.0.2:5060/0", "127.0.0.3:5060/0"
    for owner, sid in ((a, "s1"), (a, "s2"), (b, "s3"), ("0", "s4")):  # "0": from before
        store.save_subscription(sub(sid, owner=owner))
    for owner in (a, b, c):
        store.beat(owner, now=100.0)
    # a, b and c are alive; an owner that never beat (an id from before nodes) is not.
    taken = store.adopt_subscriptions(c, silent_since=90.0, now=105.0)
    assert [(t.id, t.owner, t.updated_at) for t in taken] == [("s4", c, 105.0)]
    store.beat(b, now=120.0)
    store.beat(c, now=120.0)  # a is silent from 100 on
    marks = store.im_marks()
    taken = store.adopt_subscriptions(b, silent_since=110.0, now=121.0)
    assert [(t.id, t.owner) for t in taken] == [("s1", b), ("s2", b)]
    assert store.im_marks() != marks  # the others notice, and drop what is not theirs
    assert store.adopt_subscriptions(c, silent_since=110.0, now=122.0) == []
    assert [s.id for s in store.list_subscriptions(owner=b)] == ["s1", "s2", "s3"]
    store.beat(a, now=130.0)  # a restarted: it beats again, and owns nothing now
    assert store.list_subscriptions(owner=a) == []


def test_marks_change_with_every_write(store: Store) -> None:
    seen = {store.im_marks()}
    mid = store.add_message(message("x"))
    seen.add(store.im_marks())
    store.defer_message(mid, 500.0)
    seen.add(store.im_marks())
    store.put_publication(pub("a"))
    seen.add(store.im_marks())
    store.set_watcher_rule(ALICE, "bob@example.com", "allow", 7.0)
    seen.add(store.im_marks())
    store.save_subscription(sub("s"))
    seen.add(store.im_marks())
    store.remove_message(mid)
    seen.add(store.im_marks())
    assert len(seen) == 7


def test_version_2_database_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for migration in MIGRATIONS[:2]:
        for statement in migration:
            db.execute(statement)
    db.execute("INSERT INTO domains(name) VALUES ('example.com')")
    db.execute(
        "INSERT INTO route_rules(aor, document, updated_at) VALUES ('a@example.com', '{}', 1)"
    )
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    store = SqliteStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 3
        assert store.list_domains() == ["example.com"]
        assert store.list_route_rules() == [("a@example.com", "{}")]
        store.add_message(message("kept"))
    finally:
        store.close()
    reopened = SqliteStore(path)
    try:
        assert [m.body for m in reopened.pending_messages(ALICE, now=20.0)] == [b"kept"]
    finally:
        reopened.close()


def test_a_failed_message_is_kept_but_no_longer_pending(store: Store) -> None:
    bad = store.add_message(message("bad"))
    store.add_message(message("good"))
    store.fail_message(bad, "415 Unsupported Media Type", now=15.0)
    assert [m.body for m in store.pending_messages(ALICE, now=20.0)] == [b"good"]
    assert store.count_messages(ALICE, now=20.0) == 1
    listed = store.list_messages(ALICE, now=20.0)
    assert [(m.body, m.state, m.failure) for m in listed] == [
        (b"bad", "failed", "415 Unsupported Media Type"),
        (b"good", "pending", ""),
    ]
    assert listed[0].attempts == 1
    assert [m.body for m in store.list_messages(now=20.0)] == [b"bad", b"good"]
    store.remove_message(listed[1].id)
    assert store.aors_with_messages(now=20.0) == []  # nothing left to deliver


def test_version_5_database_keeps_its_stored_messages(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    db = sqlite3.connect(path)
    for migration in MIGRATIONS[:5]:
        for statement in migration:
            db.execute(statement)
    db.execute(
        "INSERT INTO messages(aor, sender, recipient, call_id, content_type, body, headers,"
        " received_at, expires_at, changed_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            ALICE,
            "<sip:bob@example.com>;tag=1",
            f"<sip:{ALICE}>",
            "c1",
            "text/plain",
            b"old",
            '[["Subject", "hi"]]',
            10.0,
            110.0,
            10.0,
        ),
    )
    db.execute("PRAGMA user_version = 5")
    db.commit()
    db.close()
    store = SqliteStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 6
        (m,) = store.pending_messages(ALICE, now=20.0)
        assert (m.body, m.state, m.failure, m.headers) == (
            b"old",
            "pending",
            "",
            (("Subject", "hi"),),
        )
    finally:
        store.close()
