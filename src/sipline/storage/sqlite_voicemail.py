"""Voicemail and email outbox tables of the SQLite backend (schema version 9).

`VoicemailTables` is mixed into `SqliteStore`; its writes join the store's transactions.
Recordings are WAV files kept as BLOBs beside the other state, so a backup of the
database file is a backup of the mailboxes.
"""

from __future__ import annotations

from typing import Any

from sipline.storage.sqlite_tables import SqliteTables
from sipline.storage.voicemail import Mailbox, OutgoingEmail, VoicemailMessage

__all__ = ["VOICEMAIL_MIGRATION", "VoicemailTables"]

# 9: voicemail messages, per-user mailbox settings, the email outbox.
VOICEMAIL_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE voicemail (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        aor TEXT NOT NULL,
        caller TEXT NOT NULL,
        received_at REAL NOT NULL,
        duration_s REAL NOT NULL,
        heard INTEGER NOT NULL DEFAULT 0,
        audio BLOB NOT NULL
    )""",
    "CREATE INDEX voicemail_aor ON voicemail(aor, id)",
    """CREATE TABLE mailboxes (
        aor TEXT PRIMARY KEY NOT NULL,
        pin_hash TEXT,
        greeting BLOB,
        email TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE email_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient TEXT NOT NULL,
        message BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        state TEXT NOT NULL DEFAULT 'queued'
    )""",
    "CREATE INDEX email_outbox_due ON email_outbox(state, next_attempt_at)",
)

# Full statements, no string building: every value goes through a placeholder.
_LIST = "SELECT id, aor, caller, received_at, duration_s, heard FROM voicemail WHERE aor = ?"
_LIST_AUDIO = (
    "SELECT id, aor, caller, received_at, duration_s, heard, audio FROM voicemail WHERE aor = ?"
)
_SET = {
    "pin_hash": "UPDATE mailboxes SET pin_hash = ? WHERE aor = ?",
    "greeting": "UPDATE mailboxes SET greeting = ? WHERE aor = ?",
    "email": "UPDATE mailboxes SET email = ? WHERE aor = ?",
}


def _message(row: tuple[Any, ...], audio: bytes = b"") -> VoicemailMessage:
    return VoicemailMessage(
        int(row[0]), row[1], row[2], float(row[3]), float(row[4]), bool(row[5]), audio
    )


class VoicemailTables(SqliteTables):
    def add_voicemail(
        self, aor: str, caller: str, received_at: float, duration_s: float, audio: bytes
    ) -> int:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO voicemail(aor, caller, received_at, duration_s, audio)"
                " VALUES (?,?,?,?,?)",
                (aor, caller, received_at, duration_s, audio),
            )
            return int(cur.lastrowid or 0)

    def list_voicemail(self, aor: str, *, audio: bool = False) -> list[VoicemailMessage]:
        rows = self._query((_LIST_AUDIO if audio else _LIST) + " ORDER BY id", (aor,))
        return [_message(r, bytes(r[6]) if audio else b"") for r in rows]

    def get_voicemail(self, aor: str, message_id: int) -> VoicemailMessage | None:
        rows = self._query(_LIST_AUDIO + " AND id = ?", (aor, message_id))
        return _message(rows[0], bytes(rows[0][6])) if rows else None

    def mark_voicemail_heard(self, aor: str, message_id: int) -> bool:
        with self._write() as db:
            cur = db.execute(
                "UPDATE voicemail SET heard = 1 WHERE aor = ? AND id = ? AND heard = 0",
                (aor, message_id),
            )
            return cur.rowcount > 0

    def remove_voicemail(self, aor: str, message_id: int) -> bool:
        with self._write() as db:
            cur = db.execute("DELETE FROM voicemail WHERE aor = ? AND id = ?", (aor, message_id))
            return cur.rowcount > 0

    def count_voicemail(self, aor: str) -> tuple[int, int]:
        rows = self._query(
            "SELECT COALESCE(SUM(heard = 0), 0), COALESCE(SUM(heard = 1), 0)"
            " FROM voicemail WHERE aor = ?",
            (aor,),
        )
        return int(rows[0][0]), int(rows[0][1])

    def get_mailbox(self, aor: str) -> Mailbox:
        rows = self._query("SELECT pin_hash, greeting, email FROM mailboxes WHERE aor = ?", (aor,))
        if not rows:
            return Mailbox(aor)
        pin, greeting, email = rows[0]
        return Mailbox(aor, pin, bytes(greeting) if greeting is not None else None, email)

    def _set_mailbox(self, aor: str, column: str, value: object) -> None:
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO mailboxes(aor) VALUES (?)", (aor,))
            db.execute(_SET[column], (value, aor))

    def set_mailbox_pin(self, aor: str, pin_hash: str | None) -> None:
        self._set_mailbox(aor, "pin_hash", pin_hash)

    def set_mailbox_greeting(self, aor: str, greeting: bytes | None) -> None:
        self._set_mailbox(aor, "greeting", greeting)

    def set_mailbox_email(self, aor: str, email: str | None) -> None:
        self._set_mailbox(aor, "email", email)

    def queue_email(self, recipient: str, message: bytes, now: float) -> int:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO email_outbox(recipient, message, next_attempt_at) VALUES (?,?,?)",
                (recipient, message, now),
            )
            return int(cur.lastrowid or 0)

    def due_emails(self, now: float, limit: int = 10) -> list[OutgoingEmail]:
        rows = self._query(
            "SELECT id, recipient, message, attempts, next_attempt_at, last_error"
            " FROM email_outbox WHERE state = 'queued' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (now, limit),
        )
        return [
            OutgoingEmail(int(r[0]), r[1], bytes(r[2]), int(r[3]), float(r[4]), r[5]) for r in rows
        ]

    def claim_emails(self, now: float, lease_s: float, limit: int = 10) -> list[OutgoingEmail]:
        with self._write() as db:
            due = self.due_emails(now, limit)
            db.executemany(
                "UPDATE email_outbox SET next_attempt_at = ? WHERE id = ?",
                [(now + lease_s, item.id) for item in due],
            )
        return due

    def email_sent(self, email_id: int) -> None:
        with self._write() as db:
            db.execute("DELETE FROM email_outbox WHERE id = ?", (email_id,))

    def email_failed(self, email_id: int, error: str, next_attempt_at: float | None) -> None:
        with self._write() as db:
            if next_attempt_at is None:
                db.execute(
                    "UPDATE email_outbox SET attempts = attempts + 1, last_error = ?,"
                    " state = 'failed' WHERE id = ?",
                    (error, email_id),
                )
            else:
                db.execute(
                    "UPDATE email_outbox SET attempts = attempts + 1, last_error = ?,"
                    " next_attempt_at = ? WHERE id = ?",
                    (error, next_attempt_at, email_id),
                )
