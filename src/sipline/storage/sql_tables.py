"""What the table groups shared by both backends need from a store: reads, and a write
transaction over a connection that speaks the SQLite dialect (the connection and its
lock stay in the store).

The groups (`sql_accounts.py`, `sql_location.py`, `sqlite_im.py`, `sqlite_ops.py`,
`sqlite_voicemail.py`, `sqlite_shared.py`) are written once, in the SQL both
databases accept (`?` placeholders, `INSERT … ON CONFLICT`, `RETURNING`); the
PostgreSQL store hands them a connection that rewrites the few spellings that differ
(`postgres_sql.py`) and raises the same `IntegrityError` for a broken constraint.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = ["IntegrityError", "SqlConnection", "SqlCursor", "SqlTables"]

# The constraint error of every backend: the PostgreSQL connection raises this one too.
IntegrityError = sqlite3.IntegrityError


class SqlCursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SqlConnection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> SqlCursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> SqlCursor: ...


class SqlTables(ABC):
    # A token made when the store opens: the change feed records it with each binding
    # change, so a process skips its own changes (it applied them to its cache already).
    origin: str

    @abstractmethod
    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[SqlConnection]:
        """A write transaction: committed when the block ends, rolled back on error."""

    @abstractmethod
    def _bindings_changed(self, db: SqlConnection, aors: Iterable[str]) -> None:
        """Tell the other processes, inside the write's transaction, that the bindings
        of `aors` changed (the SQLite feed table; a NOTIFY on PostgreSQL)."""
