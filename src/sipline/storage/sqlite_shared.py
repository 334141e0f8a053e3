"""Tables that let several server processes share one SQLite file (schema versions 4, 7
and 13).

- `binding_changes`: a change feed of the location service. Every write to
  `bindings` appends the AORs it changed with the writer's origin (a token each store
  makes when it opens; schema 13, before which triggers appended every changed row),
  whoever wrote it (a worker process, the CLI), so a process that caches bindings in
  memory asks "what did others change after sequence number n?" with one indexed read
  and reloads only those AORs (`AsyncStore.poll_binding_changes`); its own changes
  are in its cache already, so it skips them.
- `digest_nonces` (versions 4 to 9): the highest digest nonce count seen per nonce,
  claimed by every authenticated request at any worker. Dropped by version 10: a
  nonce names the worker that issued it, which keeps its counts in memory
  (core/auth_server.py), so no request writes here.
- `source_bans` (schema version 7): source addresses banned after failed
  authentication, appended with a sequence number; every worker reads the rows after
  the last one it saw (README "Running on the Internet").

`SharedTables` is mixed into `SqliteStore` and uses its `_write` and `_query`.
"""

from __future__ import annotations

from sipline.storage.sql_tables import SqlTables

__all__ = [
    "BAN_MIGRATION",
    "FEED_ORIGIN_MIGRATION",
    "NONCE_DROP_MIGRATION",
    "SHARED_MIGRATION",
    "SharedTables",
]

SHARED_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE binding_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        aor TEXT NOT NULL
    )""",
    """CREATE TRIGGER bindings_inserted AFTER INSERT ON bindings
        BEGIN INSERT INTO binding_changes(aor) VALUES (new.aor); END""",
    """CREATE TRIGGER bindings_updated AFTER UPDATE ON bindings
        BEGIN INSERT INTO binding_changes(aor) VALUES (new.aor); END""",
    """CREATE TRIGGER bindings_deleted AFTER DELETE ON bindings
        BEGIN INSERT INTO binding_changes(aor) VALUES (old.aor); END""",
    """CREATE TABLE digest_nonces (
        nonce TEXT PRIMARY KEY NOT NULL,
        nc INTEGER NOT NULL,
        issued_ms INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX digest_nonces_issued ON digest_nonces(issued_ms)",
)

BAN_MIGRATION: tuple[str, ...] = (
    """CREATE TABLE source_bans (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        until REAL NOT NULL,
        offences INTEGER NOT NULL
    )""",
    "CREATE INDEX source_bans_until ON source_bans(until)",
)

# Nonce counts live in the memory of the worker that issued the nonce.
NONCE_DROP_MIGRATION: tuple[str, ...] = ("DROP TABLE digest_nonces",)

# 13: the writer appends the feed rows itself, with its origin, once per AOR and write
# (a REGISTER refreshing three contacts was three rows).
FEED_ORIGIN_MIGRATION: tuple[str, ...] = (
    "DROP TRIGGER bindings_inserted",
    "DROP TRIGGER bindings_updated",
    "DROP TRIGGER bindings_deleted",
    "ALTER TABLE binding_changes ADD COLUMN origin TEXT NOT NULL DEFAULT ''",
)


class SharedTables(SqlTables):
    """The `SharedStateStore` half of `SqliteStore`."""

    # --- the binding change feed --------------------------------------------------------------

    def binding_feed_head(self) -> int:
        """The sequence number of the latest change (0 when none)."""
        return int(self._query("SELECT coalesce(max(seq), 0) FROM binding_changes")[0][0])

    def binding_changes(self, after: int) -> tuple[int, list[str] | None]:
        """(head, the AORs other stores changed after `after`), or (head, None) when
        the feed no longer reaches back to `after` (pruned): the caller reloads
        everything. Changes of this store's origin are left out: its writer applied
        them to its cache after the commit."""
        rows = self._query(
            "SELECT seq, aor, origin FROM binding_changes WHERE seq > ? ORDER BY seq", (after,)
        )
        if not rows:
            return after, []
        # Sequence numbers have no holes (AUTOINCREMENT, and a rolled back insert
        # rolls its number back), so a first row past after + 1 means rows were pruned.
        if int(rows[0][0]) > after + 1:
            return int(rows[-1][0]), None
        mine = self.origin
        return int(rows[-1][0]), list(dict.fromkeys(str(r[1]) for r in rows if r[2] != mine))

    def prune_binding_changes(self, keep: int) -> int:
        """Forget all but the latest `keep` changes."""
        with self._write() as db:
            return db.execute(
                "DELETE FROM binding_changes WHERE seq <= (SELECT max(seq) FROM binding_changes) - ?",
                (keep,),
            ).rowcount

    # --- source bans --------------------------------------------------------------------------

    def add_ban(self, host: str, until: float, offences: int) -> None:
        """Ban `host` until `until` (epoch seconds), its `offences`-th ban."""
        with self._write() as db:
            db.execute(
                "INSERT INTO source_bans(host, until, offences) VALUES (?, ?, ?)",
                (host, until, offences),
            )

    def bans_after(self, seq: int) -> list[tuple[int, str, float, int]]:
        """(seq, host, until, offences) of every ban added after `seq`."""
        rows = self._query(
            "SELECT seq, host, until, offences FROM source_bans WHERE seq > ? ORDER BY seq",
            (seq,),
        )
        return [(int(r[0]), str(r[1]), float(r[2]), int(r[3])) for r in rows]

    def purge_bans(self, ended_before: float) -> int:
        """Forget bans that ended before `ended_before`."""
        with self._write() as db:
            return db.execute("DELETE FROM source_bans WHERE until < ?", (ended_before,)).rowcount
