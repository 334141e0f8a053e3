"""Messaging and presence tables of the SQLite backend (schema versions 3, 6 and 11).

`ImTables` is mixed into `SqliteStore`; it uses the store's `_write` and `_query`,
so its writes join the store's transactions (and `AsyncStore`'s group commit).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from sipline.storage.im import (
    WATCHER_DECISIONS,
    NewMessage,
    Publication,
    StoredMessage,
    SubscriptionRecord,
)
from sipline.storage.sqlite_tables import SqliteTables

__all__ = ["BEAT_MIGRATION", "IM_MIGRATION", "MESSAGE_STATE_MIGRATION", "ImTables"]

# 3: stored messages, delivery leases, publications, watcher rules, subscriptions.
IM_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        aor TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        call_id TEXT NOT NULL,
        content_type TEXT NOT NULL,
        body BLOB NOT NULL,
        headers TEXT NOT NULL DEFAULT '[]',
        received_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        changed_at REAL NOT NULL
    )""",
    "CREATE INDEX messages_aor ON messages(aor, id)",
    "CREATE INDEX messages_expires_at ON messages(expires_at)",
    """CREATE TABLE delivery_leases (
        aor TEXT PRIMARY KEY NOT NULL,
        owner TEXT NOT NULL,
        until REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE publications (
        aor TEXT NOT NULL,
        event TEXT NOT NULL,
        etag TEXT NOT NULL,
        content_type TEXT NOT NULL,
        document BLOB NOT NULL,
        expires_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (aor, event, etag)
    ) WITHOUT ROWID""",
    """CREATE TABLE watcher_rules (
        aor TEXT NOT NULL,
        watcher TEXT NOT NULL,
        decision TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (aor, watcher)
    ) WITHOUT ROWID""",
    """CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY NOT NULL,
        event TEXT NOT NULL,
        resource TEXT NOT NULL,
        watcher TEXT NOT NULL,
        state TEXT NOT NULL,
        expires_at REAL NOT NULL,
        dialog TEXT NOT NULL,
        owner TEXT NOT NULL,
        updated_at REAL NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX subscriptions_resource ON subscriptions(resource)",
)

# 6: a stored message refused for good by the recipient's device is kept as failed
# (with the response), not retried. Rows already stored are pending.
MESSAGE_STATE_MIGRATION: tuple[str, ...] = (
    "ALTER TABLE messages ADD COLUMN state TEXT NOT NULL DEFAULT 'pending'",
    "ALTER TABLE messages ADD COLUMN failure TEXT NOT NULL DEFAULT ''",
)

# 11: when each server process (NODE/WORKER, sipline.server.node) last said it is alive,
# so the subscriptions of one that fell silent are taken over by one that is not.
BEAT_MIGRATION: tuple[str, ...] = (
    "CREATE TABLE process_beats (owner TEXT PRIMARY KEY, seen_at REAL NOT NULL) WITHOUT ROWID",
)

_SELECT_MESSAGES = (
    "SELECT id, aor, sender, recipient, call_id, content_type, body, received_at, expires_at,"
    " headers, attempts, next_attempt_at, state, failure FROM messages"
)
_SELECT_PUBLICATIONS = (
    "SELECT aor, etag, event, content_type, document, expires_at, updated_at FROM publications"
)
_SELECT_SUBSCRIPTIONS = (
    "SELECT id, event, resource, watcher, state, expires_at, dialog, owner, updated_at"
    " FROM subscriptions"
)

# Subscriptions whose owner has not beaten since a given time (and is not the adopter).
_SELECT_ORPHANS = (
    "SELECT id, event, resource, watcher, state, expires_at, dialog, owner, updated_at"
    " FROM subscriptions WHERE owner != ? AND owner NOT IN"
    " (SELECT owner FROM process_beats WHERE seen_at >= ?) ORDER BY id LIMIT ?"
)


def _message(row: tuple[Any, ...]) -> StoredMessage:
    mid, aor, sender, recipient, call_id, ctype, body, received, expires, headers = row[:10]
    n, nxt, state, failure = row[10:]
    return StoredMessage(
        id=int(mid),
        aor=aor,
        sender=sender,
        recipient=recipient,
        call_id=call_id,
        content_type=ctype,
        body=bytes(body),
        received_at=float(received),
        expires_at=float(expires),
        headers=tuple((str(k), str(v)) for k, v in json.loads(headers)),
        attempts=int(n),
        next_attempt_at=float(nxt),
        state=str(state),
        failure=str(failure),
    )


def _publication(row: tuple[Any, ...]) -> Publication:
    aor, etag, event, ctype, document, expires, updated = row
    return Publication(aor, etag, event, ctype, bytes(document), float(expires), float(updated))


def _subscription(row: tuple[Any, ...]) -> SubscriptionRecord:
    sid, event, resource, watcher, state, expires, dialog, owner, updated = row
    return SubscriptionRecord(
        sid, event, resource, watcher, state, float(expires), dialog, owner, float(updated)
    )


class ImTables(SqliteTables):
    """The `ImStore` half of `SqliteStore`."""

    # --- stored messages ------------------------------------------------------------------

    def add_message(self, message: NewMessage) -> int:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO messages(aor, sender, recipient, call_id, content_type, body,"
                " headers, received_at, expires_at, changed_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    message.aor,
                    message.sender,
                    message.recipient,
                    message.call_id,
                    message.content_type,
                    message.body,
                    json.dumps([list(h) for h in message.headers]),
                    message.received_at,
                    message.expires_at,
                    message.received_at,
                ),
            )
            row_id = cursor.lastrowid
        assert row_id is not None  # an INSERT into a rowid table always sets it
        return int(row_id)

    def pending_messages(self, aor: str, *, now: float, limit: int = 100) -> list[StoredMessage]:
        rows = self._query(
            _SELECT_MESSAGES
            + " WHERE aor = ? AND expires_at > ? AND state = 'pending' ORDER BY id LIMIT ?",
            (aor, now, limit),
        )
        return [_message(r) for r in rows]

    def count_messages(self, aor: str, *, now: float) -> int:
        rows = self._query(
            "SELECT count(*) FROM messages WHERE aor = ? AND expires_at > ? AND state = 'pending'",
            (aor, now),
        )
        return int(rows[0][0])

    def list_messages(self, aor: str | None = None, *, now: float) -> list[StoredMessage]:
        if aor is None:
            rows = self._query(_SELECT_MESSAGES + " WHERE expires_at > ? ORDER BY id", (now,))
        else:
            rows = self._query(
                _SELECT_MESSAGES + " WHERE aor = ? AND expires_at > ? ORDER BY id", (aor, now)
            )
        return [_message(r) for r in rows]

    def aors_with_messages(self, *, now: float) -> list[str]:
        rows = self._query(
            "SELECT DISTINCT aor FROM messages WHERE expires_at > ? AND state = 'pending'"
            " ORDER BY aor",
            (now,),
        )
        return [str(r[0]) for r in rows]

    def remove_message(self, message_id: int) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM messages WHERE id = ?", (message_id,)).rowcount > 0

    def defer_message(self, message_id: int, next_attempt_at: float) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE messages SET attempts = attempts + 1, next_attempt_at = ?,"
                " changed_at = max(changed_at, ?) WHERE id = ?",
                (next_attempt_at, next_attempt_at, message_id),
            )

    def fail_message(self, message_id: int, failure: str, *, now: float) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE messages SET state = 'failed', failure = ?, attempts = attempts + 1,"
                " changed_at = max(changed_at, ?) WHERE id = ?",
                (failure, now, message_id),
            )

    def purge_expired_messages(self, now: float) -> list[StoredMessage]:
        with self._write() as db:
            rows = list(db.execute(_SELECT_MESSAGES + " WHERE expires_at <= ? ORDER BY id", (now,)))
            db.execute("DELETE FROM messages WHERE expires_at <= ?", (now,))
        return [_message(r) for r in rows]

    def claim_delivery(self, aor: str, owner: str, *, now: float, lease_s: float) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO delivery_leases(aor, owner, until) VALUES (?, ?, ?)"
                " ON CONFLICT(aor) DO UPDATE SET owner = excluded.owner, until = excluded.until"
                " WHERE delivery_leases.until <= ? OR delivery_leases.owner = excluded.owner",
                (aor, owner, now + lease_s, now),
            )
            return cursor.rowcount > 0

    def release_delivery(self, aor: str, owner: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM delivery_leases WHERE aor = ? AND owner = ?", (aor, owner))

    # --- publications -----------------------------------------------------------------------

    def put_publication(self, publication: Publication, *, replaces: str | None = None) -> bool:
        p = publication
        with self._write() as db:
            if replaces is not None:
                cursor = db.execute(
                    "DELETE FROM publications WHERE aor = ? AND event = ? AND etag = ?",
                    (p.aor, p.event, replaces),
                )
                if cursor.rowcount == 0:
                    return False
            seq = db.execute("SELECT coalesce(max(seq), 0) + 1 FROM publications").fetchone()[0]
            db.execute(
                "INSERT OR REPLACE INTO publications(aor, event, etag, content_type, document,"
                " expires_at, updated_at, seq) VALUES (?,?,?,?,?,?,?,?)",
                (
                    p.aor,
                    p.event,
                    p.etag,
                    p.content_type,
                    p.document,
                    p.expires_at,
                    p.updated_at,
                    seq,
                ),
            )
        return True

    def get_publication(self, aor: str, event: str, etag: str) -> Publication | None:
        rows = self._query(
            _SELECT_PUBLICATIONS + " WHERE aor = ? AND event = ? AND etag = ?", (aor, event, etag)
        )
        return _publication(rows[0]) if rows else None

    def remove_publication(self, aor: str, event: str, etag: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM publications WHERE aor = ? AND event = ? AND etag = ?",
                (aor, event, etag),
            )
            return cursor.rowcount > 0

    def publications(self, aor: str, event: str, *, now: float) -> list[Publication]:
        rows = self._query(
            _SELECT_PUBLICATIONS + " WHERE aor = ? AND event = ? AND expires_at > ? ORDER BY seq",
            (aor, event, now),
        )
        return [_publication(r) for r in rows]

    def purge_expired_publications(self, now: float) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM publications WHERE expires_at <= ?", (now,)).rowcount

    # --- watcher rules ------------------------------------------------------------------------

    def set_watcher_rule(self, aor: str, watcher: str, decision: str, updated_at: float) -> None:
        if decision not in WATCHER_DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(WATCHER_DECISIONS)}")
        with self._write() as db:
            db.execute(
                "INSERT INTO watcher_rules(aor, watcher, decision, updated_at) VALUES (?,?,?,?)"
                " ON CONFLICT(aor, watcher) DO UPDATE SET decision = excluded.decision,"
                " updated_at = excluded.updated_at",
                (aor, watcher, decision, updated_at),
            )

    def remove_watcher_rule(self, aor: str, watcher: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM watcher_rules WHERE aor = ? AND watcher = ?", (aor, watcher)
            )
            return cursor.rowcount > 0

    def watcher_rules(self, aor: str) -> list[tuple[str, str]]:
        rows = self._query(
            "SELECT watcher, decision FROM watcher_rules WHERE aor = ? ORDER BY watcher", (aor,)
        )
        return [(str(w), str(d)) for w, d in rows]

    # --- subscriptions ------------------------------------------------------------------------

    def save_subscription(self, record: SubscriptionRecord) -> None:
        r = record
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO subscriptions(id, event, resource, watcher, state,"
                " expires_at, dialog, owner, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    r.id,
                    r.event,
                    r.resource,
                    r.watcher,
                    r.state,
                    r.expires_at,
                    r.dialog,
                    r.owner,
                    r.updated_at,
                ),
            )

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        rows = self._query(_SELECT_SUBSCRIPTIONS + " WHERE id = ?", (subscription_id,))
        return _subscription(rows[0]) if rows else None

    def remove_subscription(self, subscription_id: str) -> bool:
        with self._write() as db:
            return (
                db.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,)).rowcount
                > 0
            )

    def list_subscriptions(
        self, *, owner: str | None = None, resources: Sequence[str] | None = None
    ) -> list[SubscriptionRecord]:
        clauses: list[str] = []
        args: list[object] = []
        if owner is not None:
            clauses.append("owner = ?")
            args.append(owner)
        if resources is not None:
            if not resources:
                return []
            marks = ", ".join("?" for _ in resources)
            clauses.append(f"resource IN ({marks})")
            args.extend(resources)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = _SELECT_SUBSCRIPTIONS + where + " ORDER BY id"
        return [_subscription(r) for r in self._query(sql, args)]

    def beat(self, owner: str, now: float) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO process_beats(owner, seen_at) VALUES (?, ?)"
                " ON CONFLICT(owner) DO UPDATE SET seen_at = excluded.seen_at",
                (owner, now),
            )

    def adopt_subscriptions(
        self, owner: str, *, silent_since: float, now: float, limit: int = 100
    ) -> list[SubscriptionRecord]:
        with self._write() as db:
            # Read inside the write: no other process adopts them meanwhile.
            rows = self._query(_SELECT_ORPHANS, (owner, silent_since, limit))
            db.executemany(
                "UPDATE subscriptions SET owner = ?, updated_at = ? WHERE id = ?",
                [(owner, now, row[0]) for row in rows],
            )
            db.execute("DELETE FROM process_beats WHERE seen_at < ?", (silent_since,))
        return [
            dataclasses.replace(_subscription(row), owner=owner, updated_at=now) for row in rows
        ]

    def im_marks(self) -> tuple[tuple[int, float], ...]:
        marks = []
        for sql in (
            "SELECT count(*), coalesce(max(changed_at), 0) FROM messages",
            "SELECT count(*), coalesce(max(updated_at), 0) FROM publications",
            "SELECT count(*), coalesce(max(updated_at), 0) FROM watcher_rules",
            "SELECT count(*), coalesce(max(updated_at), 0) FROM subscriptions",
            # Voicemail (sqlite_voicemail.py) counts in message-summary: a message left,
            # heard or deleted by another process or the CLI moves this mark.
            "SELECT count(*), coalesce(sum(heard), 0) * 1e9 + coalesce(max(id), 0) FROM voicemail",
        ):
            count, latest = self._query(sql)[0]
            marks.append((int(count), float(latest)))
        return tuple(marks)
