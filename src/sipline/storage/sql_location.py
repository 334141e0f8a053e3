"""The location service, routing rules and device records: the `LocationStore` and
`RouteStore` halves of both backends.

Written once in the SQL SQLite and PostgreSQL both accept (see `sql_tables.py`).
Every write to `bindings` names the AORs it changed to `_bindings_changed` in its own
transaction, with the store's origin, so other processes follow it and this one does
not re-read what it wrote.

The binding columns are the store's `binding_columns`: a column that `Binding` lacks
(PostgreSQL's `flow`, made before the field) is written NULL and not read back.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

from sipline.storage.base import Binding, DeviceInfo
from sipline.storage.sql_tables import SqlTables

__all__ = ["BINDING_COLUMNS", "LocationTables"]

BINDING_COLUMNS: tuple[str, ...] = (
    "aor",
    "contact",
    "expires_at",
    "call_id",
    "cseq",
    "q",
    "path",
    "instance",
    "reg_id",
    "received",
    "user_agent",
    "params",
    "updated_at",
    "flow",
)
_FIELDS = frozenset(f.name for f in dataclasses.fields(Binding))
_SELECT_DEVICES = "SELECT aor, device, label, region, pidf, source, updated_at FROM device_info"


@dataclasses.dataclass(frozen=True, slots=True)
class _BindingSql:
    """The statements over one set of binding columns (full statements, no string
    building per call: every value goes through a placeholder)."""

    columns: tuple[str, ...]

    @property
    def select(self) -> str:
        # The columns are our own constants, never input.
        return f"SELECT {', '.join(self.columns)} FROM bindings"  # noqa: S608

    @property
    def upsert(self) -> str:
        # ON CONFLICT DO UPDATE keeps the row (and so its insertion order) on refresh.
        names = ", ".join(self.columns)
        marks = ",".join("?" * len(self.columns))
        sets = ", ".join(f"{c} = excluded.{c}" for c in self.columns[2:])
        head = f"INSERT INTO bindings({names}) VALUES ({marks})"  # noqa: S608
        return head + f" ON CONFLICT(aor, contact) DO UPDATE SET {sets}"

    def values(self, b: Binding) -> tuple[object, ...]:
        return tuple(
            json.dumps(list(b.path)) if c == "path" else getattr(b, c, None) for c in self.columns
        )

    def binding(self, row: Sequence[Any]) -> Binding:
        found = {c: v for c, v in zip(self.columns, row, strict=True) if c in _FIELDS}
        found["expires_at"] = float(found["expires_at"])
        found["cseq"] = int(found["cseq"])
        found["path"] = tuple(json.loads(found["path"]))
        found["updated_at"] = float(found["updated_at"])
        return Binding(**found)


class LocationTables(SqlTables):
    """Bindings keyed by (aor, contact), routing rules, device records."""

    binding_columns: tuple[str, ...] = BINDING_COLUMNS

    @cached_property
    def _bsql(self) -> _BindingSql:
        return _BindingSql(self.binding_columns)

    # --- bindings -------------------------------------------------------------------------

    def update_bindings(
        self, aor: str, *, upsert: Sequence[Binding] = (), remove: Sequence[str] = ()
    ) -> None:
        for b in upsert:
            if b.aor != aor:
                raise ValueError(f"binding for {b.aor!r} given with aor {aor!r}")
        if not upsert and not remove:
            return
        with self._write() as db:
            db.executemany(
                "DELETE FROM bindings WHERE aor = ? AND contact = ?", [(aor, c) for c in remove]
            )
            db.executemany(self._bsql.upsert, [self._bsql.values(b) for b in upsert])
            self._bindings_changed(db, (aor,))

    def upsert_binding(self, binding: Binding) -> None:
        self.update_bindings(binding.aor, upsert=(binding,))

    def remove_binding(self, aor: str, contact: str) -> bool:
        with self._write() as db:
            cursor = db.execute(
                "DELETE FROM bindings WHERE aor = ? AND contact = ?", (aor, contact)
            )
            if cursor.rowcount > 0:
                self._bindings_changed(db, (aor,))
            return cursor.rowcount > 0

    def remove_bindings(self, aor: str) -> int:
        with self._write() as db:
            count = db.execute("DELETE FROM bindings WHERE aor = ?", (aor,)).rowcount
            if count > 0:
                self._bindings_changed(db, (aor,))
            return count

    def list_bindings(self, aor: str) -> list[Binding]:
        rows = self._query(self._bsql.select + " WHERE aor = ? ORDER BY id", (aor,))
        return [self._bsql.binding(r) for r in rows]

    def all_bindings(self) -> list[Binding]:
        rows = self._query(self._bsql.select + " ORDER BY aor, id")
        return [self._bsql.binding(r) for r in rows]

    def iter_bindings(self, page: int = 1000) -> Iterator[Binding]:
        # By id, which grows with insertion: each AOR's bindings come in its order.
        sql = self._bsql.select.replace("SELECT ", "SELECT id, ", 1)
        sql += " WHERE id > ? ORDER BY id LIMIT ?"
        after = -1
        while True:
            rows = self._query(sql, (after, page))
            for row in rows:
                yield self._bsql.binding(row[1:])
            if len(rows) < page:
                return
            after = rows[-1][0]

    def purge_expired(self, now: float) -> int:
        with self._write() as db:
            gone = db.execute(
                "DELETE FROM bindings WHERE expires_at <= ? RETURNING aor", (now,)
            ).fetchall()
            if gone:
                self._bindings_changed(db, dict.fromkeys(str(r[0]) for r in gone))
            return len(gone)

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
