"""The `--db PATH` option shared by every command that reads or writes the store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from sipline.apps.config import default_db_path
from sipline.storage import SqliteStore, StoreError

__all__ = ["DB_HELP", "db_option", "open_store"]

F = TypeVar("F", bound=Callable[..., Any])

DB_HELP = "SQLite database (default: $SIPLINE_DB, else ./sipline.db)."


def db_option(fn: F) -> F:
    decorator = click.option(
        "--db", type=click.Path(path_type=Path, dir_okay=False), default=None, help=DB_HELP
    )
    return decorator(fn)


@contextmanager
def open_store(db: Path | None) -> Iterator[SqliteStore]:
    """The store at `db` (or the default), created on first use; a store error
    becomes a one-line message and exit status 1."""
    path = db if db is not None else default_db_path()
    try:
        store = SqliteStore(path)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield store
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
