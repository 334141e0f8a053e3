"""The embedded backend: one SQLite file holds accounts and bindings.

Durability: WAL journal with `synchronous=NORMAL`. A committed transaction is in
the WAL file when `commit` returns, so it survives the process being killed (even
`kill -9`); only a power loss or OS crash can lose the last commits, which is the
trade SQLite documents for this mode and what a registrar can afford (clients
re-register). The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]`
(`sqlite_schema.py`) takes the schema from version i to i + 1, each in its own
transaction.

Not thread-safe by design beyond a lock that serialises calls: the server drives a
store from one worker thread (`sipline.storage.aio.AsyncStore`).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sipline.storage.base import StoreError
from sipline.storage.sql_accounts import AccountTables
from sipline.storage.sql_location import LocationTables
from sipline.storage.sql_tables import SqlConnection
from sipline.storage.sqlite_im import ImTables
from sipline.storage.sqlite_ops import OpsTables
from sipline.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from sipline.storage.sqlite_shared import SharedTables
from sipline.storage.sqlite_voicemail import VoicemailTables

__all__ = ["SCHEMA_VERSION", "SqliteStore"]


class SqliteStore(
    AccountTables, LocationTables, ImTables, SharedTables, OpsTables, VoicemailTables
):
    """Accounts and bindings in one SQLite database at `path` (":memory:" works too)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 5.0) -> None:
        self.path = str(path)
        self.origin = secrets.token_hex(8)
        self._lock = threading.RLock()
        self._depth = 0
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (savepoints nest).
            self._db = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise StoreError(f"cannot open database {self.path}: {e}") from None
        try:
            self._wal(timeout_s)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as e:
            self._db.close()
            raise StoreError(f"cannot open database {self.path}: {e}") from None
        except StoreError:
            self._db.close()
            raise

    def _wal(self, timeout_s: float) -> None:
        """Switch a new file to WAL. The switch needs the file to itself and SQLite does
        not wait for that (no busy handler), so nodes opening one fresh file at once
        retry here until `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    # --- schema ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"cannot open database {self.path}: schema version {version} is newer"
                f" than this sipline supports ({SCHEMA_VERSION})"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                # Another process (another node starting at once) may have taken this
                # step since we looked: the write lock is ours now, so look again.
                if self.schema_version >= target:
                    continue
                for statement in MIGRATIONS[target - 1]:
                    self._db.execute(statement)
                # PRAGMA takes no parameters; `target` is our own integer.
                self._db.execute(f"PRAGMA user_version = {target:d}")

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            depth = self._depth
            if depth == 0:
                # IMMEDIATE takes the write lock up front: no deadlock upgrading later.
                self._db.execute("BEGIN IMMEDIATE")
            else:
                self._db.execute(f"SAVEPOINT sp{depth:d}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if depth == 0:
                    self._db.execute("ROLLBACK")
                else:
                    self._db.execute(f"ROLLBACK TO sp{depth:d}")
                    self._db.execute(f"RELEASE sp{depth:d}")
                raise
            self._depth -= 1
            if depth == 0:
                self._db.execute("COMMIT")
            else:
                self._db.execute(f"RELEASE sp{depth:d}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(sql, args))
            except sqlite3.Error as e:
                raise StoreError(f"database {self.path}: {e}") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.transaction():
                yield self._db
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as e:
            raise StoreError(f"database {self.path}: {e}") from None

    def _bindings_changed(self, db: SqlConnection, aors: Iterable[str]) -> None:
        db.executemany(
            "INSERT INTO binding_changes(aor, origin) VALUES (?, ?)",
            [(aor, self.origin) for aor in aors],
        )
