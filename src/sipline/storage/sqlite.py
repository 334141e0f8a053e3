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

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sipline.storage.base import (
    Binding,
    DeviceInfo,
    DuplicateError,
    NotFoundError,
    StoreError,
    User,
    compute_ha1s,
)
from sipline.storage.sqlite_im import ImTables
from sipline.storage.sqlite_ops import OpsTables
from sipline.storage.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from sipline.storage.sqlite_shared import SharedTables
from sipline.storage.sqlite_voicemail import VoicemailTables

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

# Full statements, no string building: every value goes through a placeholder.
_SELECT_BINDINGS = (
    "SELECT aor, contact, expires_at, call_id, cseq, q, path, instance, reg_id, received,"
    " user_agent, params, updated_at, flow FROM bindings"
)
_SELECT_AOR = _SELECT_BINDINGS + " WHERE aor = ? ORDER BY id"
_SELECT_ALL = _SELECT_BINDINGS + " ORDER BY aor, id"
_SELECT_PAGE = (
    _SELECT_BINDINGS.replace("SELECT ", "SELECT id, ", 1) + " WHERE id > ? ORDER BY id LIMIT ?"
)
# ON CONFLICT DO UPDATE keeps the row (and so its insertion order) on refresh.
_UPSERT = (
    "INSERT INTO bindings(aor, contact, expires_at, call_id, cseq, q, path, instance, reg_id,"
    " received, user_agent, params, updated_at, flow) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(aor, contact) DO UPDATE SET expires_at = excluded.expires_at,"
    " call_id = excluded.call_id, cseq = excluded.cseq, q = excluded.q,"
    " path = excluded.path, instance = excluded.instance,"
    " reg_id = excluded.reg_id, received = excluded.received,"
    " user_agent = excluded.user_agent, params = excluded.params,"
    " updated_at = excluded.updated_at, flow = excluded.flow"
)
_SELECT_DEVICES = "SELECT aor, device, label, region, pidf, source, updated_at FROM device_info"


def _row_to_binding(row: tuple[Any, ...]) -> Binding:
    (
        aor,
        contact,
        expires_at,
        call_id,
        cseq,
        q,
        path,
        instance,
        reg_id,
        received,
        ua,
        params,
        up,
        flow,
    ) = row
    return Binding(
        aor=aor,
        contact=contact,
        expires_at=float(expires_at),
        call_id=call_id,
        cseq=int(cseq),
        q=q,
        path=tuple(json.loads(path)),
        instance=instance,
        reg_id=reg_id,
        received=received,
        user_agent=ua,
        params=params,
        updated_at=float(up),
        flow=flow,
    )


class SqliteStore(ImTables, SharedTables, OpsTables, VoicemailTables):
    """Accounts and bindings in one SQLite database at `path` (":memory:" works too)."""

    def __init__(self, path: str | Path, *, timeout_s: float = 5.0) -> None:
        self.path = str(path)
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

    # --- domains --------------------------------------------------------------------------

    def add_domain(self, name: str) -> None:
        name = name.lower()
        try:
            with self._write() as db:
                db.execute("INSERT INTO domains(name) VALUES (?)", (name,))
        except sqlite3.IntegrityError:
            raise DuplicateError(f"domain {name} exists already") from None

    def list_domains(self) -> list[str]:
        return [str(r[0]) for r in self._query("SELECT name FROM domains ORDER BY name")]

    def has_domain(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM domains WHERE name = ?", (name.lower(),)))

    def remove_domain(self, name: str) -> None:
        name = name.lower()
        try:
            with self._write() as db:
                if db.execute("DELETE FROM domains WHERE name = ?", (name,)).rowcount == 0:
                    raise NotFoundError(f"no domain {name}")
        except sqlite3.IntegrityError:
            raise StoreError(f"domain {name} still has users; delete them first") from None

    # --- users ----------------------------------------------------------------------------

    def add_user(self, username: str, domain: str, password: str) -> User:
        domain = domain.lower()
        ha1s = compute_ha1s(username, domain, password)
        try:
            with self._write() as db:
                if not db.execute("SELECT 1 FROM domains WHERE name = ?", (domain,)).fetchone():
                    raise NotFoundError(f"no domain {domain}")
                db.execute("INSERT INTO users(username, domain) VALUES (?, ?)", (username, domain))
                db.executemany(
                    "INSERT INTO credentials(username, domain, algorithm, ha1) VALUES (?,?,?,?)",
                    [(username, domain, algo, value) for algo, value in ha1s.items()],
                )
        except sqlite3.IntegrityError:
            raise DuplicateError(f"user {username}@{domain} exists already") from None
        return User(username, domain, ha1s)

    def get_user(self, username: str, domain: str) -> User | None:
        domain = domain.lower()
        rows = self._query(
            "SELECT u.username, c.algorithm, c.ha1 FROM users u LEFT JOIN credentials c"
            " ON c.username = u.username AND c.domain = u.domain"
            " WHERE u.username = ? AND u.domain = ?",
            (username, domain),
        )
        if not rows:
            return None
        return User(username, domain, {str(r[1]): str(r[2]) for r in rows if r[1] is not None})

    def count_users(self) -> int:
        return int(self._query("SELECT count(*) FROM users")[0][0])

    def list_users(self, domain: str | None = None) -> list[User]:
        sql = (
            "SELECT u.username, u.domain, c.algorithm, c.ha1 FROM users u LEFT JOIN credentials c"
            " ON c.username = u.username AND c.domain = u.domain"
        )
        args: tuple[str, ...] = ()
        if domain is not None:
            sql += " WHERE u.domain = ?"
            args = (domain.lower(),)
        users: dict[tuple[str, str], dict[str, str]] = {}
        for username, dom, algo, value in self._query(sql, args):
            ha1s = users.setdefault((str(username), str(dom)), {})
            if algo is not None:
                ha1s[str(algo)] = str(value)
        return [
            User(u, d, h) for (u, d), h in sorted(users.items(), key=lambda i: (i[0][1], i[0][0]))
        ]

    def set_password(self, username: str, domain: str, password: str) -> None:
        domain = domain.lower()
        ha1s = compute_ha1s(username, domain, password)
        with self._write() as db:
            found = db.execute(
                "SELECT 1 FROM users WHERE username = ? AND domain = ?", (username, domain)
            ).fetchone()
            if not found:
                raise NotFoundError(f"no user {username}@{domain}")
            db.execute(
                "DELETE FROM credentials WHERE username = ? AND domain = ?", (username, domain)
            )
            db.executemany(
                "INSERT INTO credentials(username, domain, algorithm, ha1) VALUES (?,?,?,?)",
                [(username, domain, algo, value) for algo, value in ha1s.items()],
            )

    def remove_user(self, username: str, domain: str) -> None:
        domain = domain.lower()
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM users WHERE username = ? AND domain = ?", (username, domain)
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"no user {username}@{domain}")

    def credentials_version(self) -> int:
        return int(self._query("SELECT n FROM credentials_version")[0][0])

    def lookup_ha1(self, username: str, realm: str, algorithm: str) -> str | None:
        rows = self._query(
            "SELECT ha1 FROM credentials WHERE username = ? AND domain = ? AND algorithm = ?",
            (username, realm.lower(), algorithm.upper()),
        )
        return str(rows[0][0]) if rows else None

    # --- bindings -------------------------------------------------------------------------

    def update_bindings(
        self, aor: str, *, upsert: Sequence[Binding] = (), remove: Sequence[str] = ()
    ) -> None:
        for b in upsert:
            if b.aor != aor:
                raise ValueError(f"binding for {b.aor!r} given with aor {aor!r}")
        with self._write() as db:
            db.executemany(
                "DELETE FROM bindings WHERE aor = ? AND contact = ?", [(aor, c) for c in remove]
            )
            db.executemany(
                _UPSERT,
                [
                    (
                        b.aor,
                        b.contact,
                        b.expires_at,
                        b.call_id,
                        b.cseq,
                        b.q,
                        json.dumps(list(b.path)),
                        b.instance,
                        b.reg_id,
                        b.received,
                        b.user_agent,
                        b.params,
                        b.updated_at,
                        b.flow,
                    )
                    for b in upsert
                ],
            )

    def upsert_binding(self, binding: Binding) -> None:
        self.update_bindings(binding.aor, upsert=(binding,))

    def remove_binding(self, aor: str, contact: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM bindings WHERE aor = ? AND contact = ?", (aor, contact)
            )
            return cursor.rowcount > 0

    def remove_bindings(self, aor: str) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM bindings WHERE aor = ?", (aor,)).rowcount

    def list_bindings(self, aor: str) -> list[Binding]:
        rows = self._query(_SELECT_AOR, (aor,))
        return [_row_to_binding(r) for r in rows]

    def all_bindings(self) -> list[Binding]:
        rows = self._query(_SELECT_ALL)
        return [_row_to_binding(r) for r in rows]

    def iter_bindings(self, page: int = 1000) -> Iterator[Binding]:
        # By rowid, which grows with insertion: each AOR's bindings come in its order.
        after = -1
        while True:
            rows = self._query(_SELECT_PAGE, (after, page))
            for row in rows:
                yield _row_to_binding(row[1:])
            if len(rows) < page:
                return
            after = rows[-1][0]

    def purge_expired(self, now: float) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM bindings WHERE expires_at <= ?", (now,)).rowcount

    def expired_bindings(self, now: float) -> list[tuple[str, str]]:
        rows = self._query("SELECT aor, contact FROM bindings WHERE expires_at <= ?", (now,))
        return [(str(aor), str(contact)) for aor, contact in rows]

    # --- routing rules and device information -------------------------------------------------

    def set_route_rules(self, aor: str, document: str, updated_at: float) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO route_rules(aor, document, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(aor) DO UPDATE SET document = excluded.document,"
                " updated_at = excluded.updated_at",
                (aor, document, updated_at),
            )

    def get_route_rules(self, aor: str) -> str | None:
        rows = self._query("SELECT document FROM route_rules WHERE aor = ?", (aor,))
        return str(rows[0][0]) if rows else None

    def list_route_rules(self) -> list[tuple[str, str]]:
        rows = self._query("SELECT aor, document FROM route_rules ORDER BY aor")
        return [(str(a), str(d)) for a, d in rows]

    def remove_route_rules(self, aor: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM route_rules WHERE aor = ?", (aor,)).rowcount > 0

    def set_device_info(self, info: DeviceInfo) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO device_info(aor, device, label, region, pidf, source, updated_at)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT(aor, device) DO UPDATE SET"
                " label = excluded.label, region = excluded.region, pidf = excluded.pidf,"
                " source = excluded.source, updated_at = excluded.updated_at",
                (
                    info.aor,
                    info.device,
                    info.label,
                    info.region,
                    info.pidf,
                    info.source,
                    info.updated_at,
                ),
            )

    def get_device_info(self, aor: str, device: str) -> DeviceInfo | None:
        rows = self._query(_SELECT_DEVICES + " WHERE aor = ? AND device = ?", (aor, device))
        return _row_to_device(rows[0]) if rows else None

    def list_device_info(self, aor: str | None = None) -> list[DeviceInfo]:
        if aor is None:
            rows = self._query(_SELECT_DEVICES + " ORDER BY aor, device")
        else:
            rows = self._query(_SELECT_DEVICES + " WHERE aor = ? ORDER BY device", (aor,))
        return [_row_to_device(r) for r in rows]

    def remove_device_info(self, aor: str, device: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM device_info WHERE aor = ? AND device = ?", (aor, device)
            )
            return cursor.rowcount > 0

    def route_marks(self) -> tuple[tuple[int, float], tuple[int, float]]:
        marks = []
        for sql in (
            "SELECT count(*), coalesce(max(updated_at), 0) FROM route_rules",
            "SELECT count(*), coalesce(max(updated_at), 0) FROM device_info",
        ):
            count, latest = self._query(sql)[0]
            marks.append((int(count), float(latest)))
        return marks[0], marks[1]


def _row_to_device(row: tuple[Any, ...]) -> DeviceInfo:
    aor, device, label, region, pidf, source, updated_at = row
    return DeviceInfo(aor, device, label, region, pidf, source, float(updated_at))
