"""The networked backend: PostgreSQL (`database = "postgresql://…"`), through psycopg 3
and a psycopg_pool `ConnectionPool`.

The same table groups as the SQLite store (`sql_accounts`, `sql_location`,
`sqlite_im`, `sqlite_ops`, `sqlite_voicemail`, `sqlite_shared`), over a connection
that rewrites SQLite's spellings (`postgres_sql.py`); the schema is SQLite's,
translated, with the same version numbers (`postgres_schema.py`).

Why the synchronous API: the server reaches any store through `AsyncStore`, which runs
every call on one thread and commits queued writes together (group commit: one
transaction, one round trip to COMMIT, per batch of REGISTERs). That model is what
makes a write cheap and durable on both backends, and psycopg's sync API on that
thread keeps it unchanged: the event loop never waits on the database, the table
groups stay written once, and the CLI uses the very same class. An asyncio driver
would only move the waiting onto the loop and split the code in two.

Durability: a write is acknowledged after its transaction's COMMIT returned, with
PostgreSQL's default `synchronous_commit = on` (flushed to the server's WAL), so a
`kill -9` of sipline, or of PostgreSQL, loses nothing acknowledged.

Change notification: binding writes NOTIFY in their transaction (`postgres_feed.py`,
a dedicated LISTEN connection); the credentials version, bans and the route and IM
marks are read as on SQLite (one small indexed query per poll).

The URL's password never leaves this module: `path` and every error name the
database by `redact_url`.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from sipline.storage.base import StoreError
from sipline.storage.postgres_feed import CHANNEL, BindingListener
from sipline.storage.postgres_schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE
from sipline.storage.postgres_sql import PgConnection, pg_error, redact_url, sync
from sipline.storage.sql_accounts import AccountTables
from sipline.storage.sql_location import BINDING_COLUMNS, LocationTables
from sipline.storage.sql_tables import IntegrityError, SqlConnection
from sipline.storage.sqlite_im import ImTables
from sipline.storage.sqlite_ops import OpsTables
from sipline.storage.sqlite_shared import SharedTables
from sipline.storage.sqlite_voicemail import VoicemailTables

__all__ = ["PostgresStore", "is_postgres_url"]

# Taken while migrating, so two processes opening a new database do not both build it.
_MIGRATION_LOCK = 0x5191_1E5C


def is_postgres_url(database: object) -> bool:
    """Whether a `database` setting names a PostgreSQL database rather than a file."""
    return isinstance(database, str) and database.startswith(("postgresql://", "postgres://"))


class PostgresStore(
    AccountTables, LocationTables, ImTables, SharedTables, OpsTables, VoicemailTables
):
    """Everything the server keeps, in the PostgreSQL database at `url`."""

    # `flow` (RFC 5626) is in the schema already; read into `Binding` once it has the field.
    binding_columns = BINDING_COLUMNS if "flow" in BINDING_COLUMNS else (*BINDING_COLUMNS, "flow")

    def __init__(self, url: str, *, timeout_s: float = 5.0, pool_size: int = 4) -> None:
        self._url = url
        self.path = redact_url(url)
        self.origin = secrets.token_hex(8)
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None  # of the open transaction
        self._depth = 0  # transactions open: 1 the outer one, more its savepoints
        self._held: psycopg.Connection[Any] | None = None  # see _connection
        self._pipe: psycopg.Pipeline | None = None  # of the open transaction
        try:
            # A direct connection first: a wrong URL is one clear error, not a pool timeout.
            with psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout_s))) as c:
                self._migrate(c)
        except psycopg.Error as exc:
            raise pg_error("cannot open: ", exc, url) from None
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            timeout=timeout_s,
            open=False,
            name="sipline-store",
        )
        self._pool.open()
        self._listener = BindingListener(url, self.origin)

    # --- schema ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self._query("SELECT version FROM schema_version")[0][0])

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(VERSION_TABLE)
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version VALUES (0)")
            version = int(row[0]) if row is not None else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"cannot open database {self.path}: schema version {version} is newer"
                    f" than this sipline supports ({SCHEMA_VERSION})"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement.encode())  # ours: no placeholders to parse
                conn.execute("UPDATE schema_version SET version = %s", (target,))

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection of the thread driving the store (AsyncStore's: one at a time,
        under `_lock`), taken from the pool once and kept: a checkout per call cost more
        than the query. Given back when it broke, so the pool connects a new one."""
        conn = self._held
        if conn is None:
            try:
                conn = self._held = self._pool.getconn()
            except PoolTimeout as exc:
                raise StoreError(f"database {self.path}: {exc}") from None
        try:
            yield conn
        finally:
            if conn.broken or conn.closed:
                self._held = None
                self._pool.putconn(conn)

    def _send(self, conn: psycopg.Connection[Any], command: bytes) -> psycopg.Cursor[Any]:
        try:
            return conn.execute(command)
        except psycopg.errors.IntegrityError as exc:  # an earlier statement's, in a pipeline
            raise IntegrityError(str(exc)) from None
        except psycopg.Error as exc:
            raise pg_error("", exc, self._url) from None

    def _sync(self) -> None:
        assert self._pipe is not None  # in a transaction
        sync(self._pipe, self._url)

    def _abandon(self, conn: psycopg.Connection[Any], *commands: bytes) -> None:
        """After an error: wait for what was sent (its own error is already being
        raised), then undo; the first error is the one reported."""
        with suppress(StoreError, IntegrityError):
            self._sync()
        with suppress(StoreError, IntegrityError):
            for command in commands:
                self._send(conn, command)
            self._sync()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # A transaction runs in pipeline mode: statements go out without waiting for
        # their answers, and each savepoint (one call in a group commit) waits once,
        # at its end, so its error is its own. A REGISTER costs one round trip, not
        # four (SAVEPOINT, the upsert, the NOTIFY, RELEASE). A read waits for its rows.
        # BEGIN/SAVEPOINT by hand: psycopg's nested transactions compose their SQL on
        # every call, which showed as a good part of a REGISTER's cost.
        with self._lock:
            conn = self._conn
            if conn is not None:
                name = f" s{self._depth:d}".encode()
                self._send(conn, b"SAVEPOINT" + name)
                self._depth += 1
                try:
                    yield
                    self._send(conn, b"RELEASE SAVEPOINT" + name)
                    self._sync()
                except BaseException:
                    self._abandon(
                        conn, b"ROLLBACK TO SAVEPOINT" + name, b"RELEASE SAVEPOINT" + name
                    )
                    raise
                finally:
                    self._depth -= 1
                return
            with self._connection() as conn:
                try:
                    with conn.pipeline() as pipe:
                        self._pipe = pipe
                        self._send(conn, b"BEGIN")
                        self._conn, self._depth = conn, 1
                        try:
                            yield
                            done = self._send(conn, b"COMMIT")
                            self._sync()
                        except BaseException:
                            self._abandon(conn, b"ROLLBACK")
                            raise
                        finally:
                            self._conn, self._depth, self._pipe = None, 0, None
                except psycopg.Error as exc:  # leaving the pipeline: the connection broke
                    raise pg_error("", exc, self._url) from None
                # A transaction that failed answers COMMIT with ROLLBACK, and no error.
                if done.statusmessage != "COMMIT":
                    raise StoreError(f"database {self.path}: the transaction was rolled back")

    def close(self) -> None:
        with self._lock:
            self._listener.close()
            if self._held is not None:
                self._pool.putconn(self._held)
                self._held = None
            self._pool.close()

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._conn is not None:
                db = PgConnection(self._conn, self._url, self._pipe)
                return list(db.execute(sql, args).fetchall())
            with self._connection() as conn:
                return list(PgConnection(conn, self._url).execute(sql, args).fetchall())

    @contextmanager
    def _write(self) -> Iterator[SqlConnection]:
        with self.transaction():
            assert self._conn is not None  # set by transaction()
            yield PgConnection(self._conn, self._url, self._pipe)

    # --- the binding change feed (NOTIFY, see postgres_feed.py) ---------------------------

    def _bindings_changed(self, db: SqlConnection, aors: Iterable[str]) -> None:
        # Delivered at COMMIT, and only then; one per AOR (PostgreSQL folds duplicates).
        db.executemany(
            "SELECT pg_notify(?, ?)", [(CHANNEL, f"{self.origin} {aor}") for aor in aors]
        )

    def binding_feed_head(self) -> int:
        with self._lock:
            try:
                return self._listener.feed_head()
            except psycopg.Error as exc:
                raise pg_error("", exc, self._url) from None

    def binding_changes(self, after: int) -> tuple[int, list[str] | None]:
        with self._lock:
            try:
                return self._listener.changes(after)
            except psycopg.Error as exc:
                raise pg_error("", exc, self._url) from None

    def prune_binding_changes(self, keep: int) -> int:
        return 0  # notifications are not kept
