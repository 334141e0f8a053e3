"""Where the store is: a SQLite file (a path) or a PostgreSQL database (a
`postgresql://` or `postgres://` URL), and opening the right backend for it.

Every place that opens the store (`sipline serve`, the supervisor of its workers,
each CLI command's `--db`, `[server] database`, `$SIPLINE_DB`) goes through
`database_location` and `open_store`, so a URL works wherever a file does. A URL is
shown only through `describe` (its password masked).
"""

from __future__ import annotations

from pathlib import Path

from sipline.storage.base import Store

__all__ = [
    "DatabaseLocation",
    "database_location",
    "describe",
    "is_url",
    "local_folder",
    "open_store",
]

# A file path, or a PostgreSQL URL kept as the string it was written as (a Path would
# fold its "//").
DatabaseLocation = Path | str

_SCHEMES = ("postgresql://", "postgres://")


def is_url(location: DatabaseLocation | str) -> bool:
    """Whether `location` names a PostgreSQL database."""
    return isinstance(location, str) and location.startswith(_SCHEMES)


def database_location(text: str | Path) -> DatabaseLocation:
    """The location a setting or option names: a URL stays a string, anything else is a path."""
    if isinstance(text, str) and text.startswith(_SCHEMES):
        return text
    return Path(text)


def describe(location: DatabaseLocation) -> str:
    """How to name the database to a person: the path, or the URL without its password."""
    if is_url(location):
        from sipline.storage.postgres_sql import redact_url  # noqa: PLC0415 (needs psycopg)

        return redact_url(str(location))
    return str(location)


def local_folder(location: DatabaseLocation) -> Path:
    """Where the server keeps its own files (secret, generated certificate): beside a
    database file, else in the current directory."""
    if is_url(location):
        return Path.cwd()
    return Path(location).resolve().parent


def open_store(location: DatabaseLocation, *, timeout_s: float = 5.0) -> Store:
    """The store at `location`, created and migrated on first use (`StoreError` if not)."""
    if is_url(location):
        from sipline.storage.postgres import PostgresStore  # noqa: PLC0415 (optional backend)

        return PostgresStore(str(location), timeout_s=timeout_s)
    from sipline.storage.sqlite import SqliteStore  # noqa: PLC0415

    return SqliteStore(location, timeout_s=timeout_s)
