"""The voicemail part of the store contract: messages, mailboxes, the email outbox,
and the migration to version 9 keeping what a version 8 database holds."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipline.storage import SCHEMA_VERSION, SqliteStore, Store
from sipline.storage.sqlite_schema import MIGRATIONS

ALICE = "alice@example.com"


@pytest.fixture(params=["sqlite-file", "sqlite-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = SqliteStore(tmp_path / "sipline.db" if request.param == "sqlite-file" else ":memory:")
    yield s
    s.close()


def test_messages_new_then_heard_then_deleted(store: Store) -> None:
    a = store.add_voicemail(ALICE, "bob@example.com", 100.0, 3.5, b"RIFF1")
    b = store.add_voicemail(ALICE, "carol@example.com", 200.0, 1.0, b"RIFF2")
    store.add_voicemail("bob@example.com", "alice@example.com", 150.0, 2.0, b"RIFF3")
    assert store.count_voicemail(ALICE) == (2, 0)
    listed = store.list_voicemail(ALICE)
    assert [(m.id, m.caller, m.heard, m.audio) for m in listed] == [
        (a, "bob@example.com", False, b""),
        (b, "carol@example.com", False, b""),
    ]
    assert [m.audio for m in store.list_voicemail(ALICE, audio=True)] == [b"RIFF1", b"RIFF2"]
    assert store.mark_voicemail_heard(ALICE, a)
    assert not store.mark_voicemail_heard(ALICE, a)  # already heard
    assert store.count_voicemail(ALICE) == (1, 1)
    got = store.get_voicemail(ALICE, a)
    assert got is not None and got.heard and got.audio == b"RIFF1" and got.duration_s == 3.5
    assert store.get_voicemail("bob@example.com", a) is None  # another user's message
    assert not store.remove_voicemail("bob@example.com", a)
    assert store.remove_voicemail(ALICE, a)
    assert store.count_voicemail(ALICE) == (1, 0)
    assert store.count_voicemail("nobody@example.com") == (0, 0)


def test_mailbox_settings(store: Store) -> None:
    assert store.get_mailbox(ALICE).pin_hash is None
    store.set_mailbox_pin(ALICE, "scrypt$00$11")
    store.set_mailbox_email(ALICE, "alice@mail.example.com")
    store.set_mailbox_greeting(ALICE, b"RIFFgreeting")
    box = store.get_mailbox(ALICE)
    assert (box.pin_hash, box.email, box.greeting) == (
        "scrypt$00$11",
        "alice@mail.example.com",
        b"RIFFgreeting",
    )
    store.set_mailbox_greeting(ALICE, None)
    assert store.get_mailbox(ALICE).greeting is None
    assert store.get_mailbox(ALICE).email == "alice@mail.example.com"


def test_email_outbox_retries_and_gives_up(store: Store) -> None:
    e = store.queue_email("alice@mail.example.com", b"Subject: x\r\n\r\nhi", now=10.0)
    assert store.due_emails(now=9.0) == []
    (due,) = store.due_emails(now=10.0)
    assert (due.id, due.attempts, due.message) == (e, 0, b"Subject: x\r\n\r\nhi")
    store.email_failed(e, "connection refused", next_attempt_at=70.0)
    assert store.due_emails(now=69.0) == []
    (due,) = store.due_emails(now=70.0)
    assert (due.attempts, due.last_error) == (1, "connection refused")
    store.email_failed(e, "still refused", next_attempt_at=None)  # given up
    assert store.due_emails(now=1e9) == []
    f = store.queue_email("bob@mail.example.com", b"x", now=10.0)
    store.email_sent(f)
    assert store.due_emails(now=1e9) == []


def test_migration_from_version_8_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for statements in MIGRATIONS[:8]:
        for statement in statements:
            db.execute(statement)
    db.execute("PRAGMA user_version = 8")
    db.execute("INSERT INTO domains VALUES ('example.com')")
    db.close()
    store = SqliteStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 9
        assert store.list_domains() == ["example.com"]
        assert store.count_voicemail(ALICE) == (0, 0)
    finally:
        store.close()


def test_an_email_claimed_by_one_mailer_is_not_given_to_another(store: Store) -> None:
    """Every node's mailer polls the one outbox: a claim puts the email off for the
    lease, so another claim gets nothing until it is over (the sender died)."""
    e = store.queue_email("alice@mail.example.com", b"x", now=10.0)
    (claimed,) = store.claim_emails(now=10.0, lease_s=300.0)
    assert claimed.id == e
    assert store.claim_emails(now=11.0, lease_s=300.0) == []
    assert store.due_emails(now=309.0) == []
    (again,) = store.claim_emails(now=310.0, lease_s=300.0)  # the lease is over
    assert again.id == e
    store.email_sent(e)
    assert store.claim_emails(now=1e9, lease_s=300.0) == []
