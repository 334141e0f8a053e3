"""What the table groups mixed into `SqliteStore` need from it: reads, and a write
transaction (the store's connection and lock stay in one place)."""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

__all__ = ["SqliteTables"]


class SqliteTables(ABC):
    @abstractmethod
    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back on error."""
