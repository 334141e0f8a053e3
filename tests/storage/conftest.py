"""The store backends the storage tests run against: a SQLite file, and a database of
the session's throwaway PostgreSQL cluster (skipped without PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sipline.storage import SqliteStore, Store
from sipline.storage.location import DatabaseLocation, open_store


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend (the contract every backend keeps)."""
    if request.param == "postgresql":
        s = open_store(request.getfixturevalue("postgres_url"))
    else:
        s = SqliteStore(tmp_path / "sipline.db" if request.param == "sqlite-file" else ":memory:")
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseLocation:
    """Where a fresh store is: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return tmp_path / "sipline.db"
