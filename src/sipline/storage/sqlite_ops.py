"""Call detail records, events and call messages in SQLite (schema version 8).

`OpsTables` is mixed into `SqliteStore`; its writes join the store's transactions
(and `AsyncStore`'s group commit). Every update is keyed by Call-ID and written as a
conditional UPDATE, so the worker that sees a BYE completes the record another
worker started.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sipline.storage.base import StoreError
from sipline.storage.ops import CallRecord, CallUpdate, OpsEvent, TracedMessage
from sipline.storage.sql_tables import SqlTables

__all__ = ["OPS_MIGRATION", "OpsTables"]

# 8: call detail records, operator events, the messages of each call.
OPS_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE calls (
        call_id TEXT PRIMARY KEY NOT NULL,
        caller TEXT NOT NULL,
        caller_tag TEXT NOT NULL,
        callee TEXT NOT NULL,
        source TEXT NOT NULL,
        started_at REAL NOT NULL,
        ringing_at REAL,
        answered_at REAL,
        ended_at REAL,
        duration_s REAL,
        answered_by TEXT,
        forwarded_by TEXT,
        hangup_by TEXT,
        status INTEGER,
        reason TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX calls_started_at ON calls(started_at)",
    "CREATE INDEX calls_open ON calls(ended_at) WHERE ended_at IS NULL",
    """CREATE TABLE ops_events (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        user TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT NOT NULL
    )""",
    "CREATE INDEX ops_events_at ON ops_events(at)",
    """CREATE TABLE call_messages (
        id INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        at REAL NOT NULL,
        sent INTEGER NOT NULL,
        transport TEXT NOT NULL,
        local TEXT NOT NULL,
        remote TEXT NOT NULL,
        data BLOB NOT NULL
    )""",
    "CREATE INDEX call_messages_call ON call_messages(call_id, id)",
    "CREATE INDEX call_messages_at ON call_messages(at)",
)


# Full statements: every value goes through a placeholder.
_SELECT_CALLS = (
    "SELECT call_id, caller, callee, source, started_at, ringing_at, answered_at, ended_at,"
    " duration_s, answered_by, forwarded_by, hangup_by, status, reason FROM calls"
)
_LIST_CALLS = (
    _SELECT_CALLS + " WHERE started_at >= ?"
    " AND (CAST(? AS TEXT) IS NULL OR caller = ? OR callee LIKE ? OR answered_by LIKE ?)"
    " AND (? = 0 OR ended_at IS NULL) ORDER BY started_at DESC LIMIT ?"
)
_GET_CALL = _SELECT_CALLS + " WHERE call_id = ?"
_LIST_EVENTS = (
    'SELECT at, kind, "user", source, detail FROM ops_events WHERE at >= ?'
    " AND (CAST(? AS TEXT) IS NULL OR kind = ?) ORDER BY id DESC LIMIT ?"
)


def _call(row: tuple[Any, ...]) -> CallRecord:
    return CallRecord(*row)


_START = (
    "INSERT INTO calls(call_id, caller, caller_tag, callee, source, started_at)"
    " VALUES (?,?,?,?,?,?) ON CONFLICT(call_id) DO UPDATE SET ended_at = NULL,"
    " status = NULL, reason = NULL, caller_tag = excluded.caller_tag"
    " WHERE calls.status IN (401, 407) AND calls.answered_at IS NULL"
)
_RINGING = "UPDATE calls SET ringing_at = ? WHERE call_id = ? AND ringing_at IS NULL"
_ANSWERED = (
    "UPDATE calls SET answered_at = ?, answered_by = ?, forwarded_by = ?,"
    " status = 200, reason = 'OK' WHERE call_id = ? AND answered_at IS NULL"
    " AND ended_at IS NULL"
)
_FAILED = (
    "UPDATE calls SET ended_at = ?, status = ?, reason = ?, hangup_by = ?"
    " WHERE call_id = ? AND answered_at IS NULL AND ended_at IS NULL"
)
_ENDED = (
    "UPDATE calls SET ended_at = ?, duration_s = max(0, ? - answered_at),"
    " hangup_by = CASE WHEN ? = '' THEN 'server' WHEN caller_tag = ? THEN 'caller'"
    " ELSE 'callee' END"
    " WHERE call_id = ? AND answered_at IS NOT NULL AND ended_at IS NULL"
)
_EVENT = 'INSERT INTO ops_events(at, kind, "user", source, detail) VALUES (?,?,?,?,?)'
_MESSAGE = (
    "INSERT INTO call_messages(call_id, at, sent, transport, local, remote, data)"
    " VALUES (?,?,?,?,?,?,?)"
)


def _statement(update: CallUpdate) -> tuple[str, tuple[Any, ...]]:
    """The SQL of one update, its arguments in the order of the OpsStore method."""
    name, a = update
    if name == "cdr_start":  # call_id, caller, caller_tag, callee, source, started_at
        return _START, a
    if name == "cdr_ringing":  # call_id, at
        return _RINGING, (a[1], a[0])
    if name == "cdr_answered":  # call_id, at, answered_by, forwarded_by
        return _ANSWERED, (a[1], a[2], a[3], a[0])
    if name == "cdr_failed":  # call_id, at, status, reason, hangup_by
        return _FAILED, (a[1], a[2], a[3], a[4], a[0])
    if name == "cdr_ended":  # call_id, at, from_tag
        return _ENDED, (a[1], a[1], a[2], a[2], a[0])
    if name == "add_event":  # event
        e = a[0]
        return _EVENT, (e.at, e.kind, e.user, e.source, e.detail)
    raise StoreError(f"unknown call record update {name!r}")


class OpsTables(SqlTables):
    def record(self, updates: Sequence[CallUpdate], messages: Sequence[TracedMessage] = ()) -> None:
        """Updates and messages in one transaction, without a savepoint each: the server
        writes its queue of them every 0.2 s (server/records/tap.py)."""
        with self._write() as db:
            for update in updates:
                db.execute(*_statement(update))
            if messages:
                db.executemany(
                    _MESSAGE,
                    [
                        (m.call_id, m.at, int(m.sent), m.transport, m.local, m.remote, m.data)
                        for m in messages
                    ],
                )

    # 401/407 to an INVITE: the caller is expected to try again with credentials, on the
    # same Call-ID (§22.2), which re-opens the record; a call left there stays ended.
    def cdr_start(
        self,
        call_id: str,
        caller: str,
        caller_tag: str,
        callee: str,
        source: str,
        started_at: float,
    ) -> None:
        self.record([("cdr_start", (call_id, caller, caller_tag, callee, source, started_at))])

    def cdr_ringing(self, call_id: str, at: float) -> None:
        self.record([("cdr_ringing", (call_id, at))])

    def cdr_answered(
        self, call_id: str, at: float, answered_by: str | None, forwarded_by: str | None
    ) -> None:
        self.record([("cdr_answered", (call_id, at, answered_by, forwarded_by))])

    def cdr_failed(
        self, call_id: str, at: float, status: int, reason: str, hangup_by: str | None
    ) -> None:
        self.record([("cdr_failed", (call_id, at, status, reason, hangup_by))])

    def cdr_ended(self, call_id: str, at: float, from_tag: str) -> None:
        self.record([("cdr_ended", (call_id, at, from_tag))])

    def list_calls(
        self,
        *,
        since: float | None = None,
        user: str | None = None,
        active: bool = False,
        limit: int = 100,
    ) -> list[CallRecord]:
        like = f"%{user}%" if user is not None else None
        rows = self._query(_LIST_CALLS, (since or 0.0, user, user, like, like, int(active), limit))
        return [_call(r) for r in rows]

    def get_call(self, call_id: str) -> CallRecord | None:
        rows = self._query(_GET_CALL, (call_id,))
        return _call(rows[0]) if rows else None

    def count_active_calls(self) -> int:
        return int(self._query("SELECT count(*) FROM calls WHERE ended_at IS NULL")[0][0])

    def add_event(self, event: OpsEvent) -> None:
        self.record([("add_event", (event,))])

    def list_events(
        self, *, since: float | None = None, kind: str | None = None, limit: int = 100
    ) -> list[OpsEvent]:
        rows = self._query(_LIST_EVENTS, (since or 0.0, kind, kind, limit))
        return [OpsEvent(*r) for r in rows]

    def add_messages(self, messages: list[TracedMessage]) -> None:
        self.record([], messages)

    def call_messages(self, call_id: str) -> list[TracedMessage]:
        rows = self._query(
            "SELECT call_id, at, sent, transport, local, remote, data FROM call_messages"
            " WHERE call_id = ? ORDER BY at, id",
            (call_id,),
        )
        return [TracedMessage(r[0], r[1], bool(r[2]), r[3], r[4], r[5], bytes(r[6])) for r in rows]

    def close_stale_calls(self, started_before: float, at: float) -> int:
        with self._write() as db:
            return int(
                db.execute(
                    "UPDATE calls SET ended_at = ?, status = 408, hangup_by = 'server',"
                    " reason = 'No final response seen' WHERE ended_at IS NULL"
                    " AND answered_at IS NULL AND started_at < ?",
                    (at, started_before),
                ).rowcount
            )

    def purge_records(self, before: float) -> int:
        with self._write() as db:
            n = db.execute("DELETE FROM calls WHERE ended_at < ?", (before,)).rowcount
            n += db.execute("DELETE FROM ops_events WHERE at < ?", (before,)).rowcount
            n += db.execute("DELETE FROM call_messages WHERE at < ?", (before,)).rowcount
            return int(n)
