"""The options of every command that opens the store: `--config` and `--db`.

`user`, `domain`, `registrations`, `route`, `watchers` and `serve` take both, with one
meaning: the database is `--db`, else the configuration's `[server] database`, else
$SIPLINE_DB, else ./sipline.db; the configuration also gives the served domains and
regions that some commands check names against. The database is a SQLite file or a
`postgresql://` URL (`storage/location.py`).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import click

from sipline.server.config import ConfigError, ServerConfig, check_domain, load_config, parse_listen
from sipline.storage import Store, StoreError
from sipline.storage.location import DatabaseLocation, database_location, open_store

__all__ = ["CONFIG_HELP", "DB_HELP", "StoreOptions", "build_config", "store_options"]

F = TypeVar("F", bound=Callable[..., Any])


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)

CONFIG_HELP = "The server's TOML configuration (see README): its database, domains and regions."
DB_HELP = (
    "SQLite database file or postgresql:// URL"
    " (default: the configuration's, else $SIPLINE_DB, else ./sipline.db)."
)


def build_config(
    config_path: Path | None,
    listen: tuple[str, ...],
    domains: tuple[str, ...],
    db: DatabaseLocation | None,
) -> ServerConfig:
    """The configuration file (or the defaults) with the command line's overrides."""
    cfg = ServerConfig()
    if config_path is not None:
        try:
            doc = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"--config: cannot read {config_path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config: {config_path} is not valid TOML: {exc}") from None
        cfg = load_config(doc)
    server = cfg.server
    if listen:
        server = replace(server, listen=tuple(parse_listen(s, "--listen") for s in listen))
    if domains:
        server = replace(server, domains=tuple(check_domain(d, "--domain") for d in domains))
    if db is not None:
        server = replace(server, database=db)
    return replace(cfg, server=server)


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """What `--config` and `--db` said."""

    config_path: Path | None = None
    db: DatabaseLocation | None = None

    def config(self) -> ServerConfig:
        """The configuration; an error in it is one line and exit status 1."""
        try:
            return build_config(self.config_path, (), (), self.db)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    def configured_domains(self) -> list[str]:
        """The domains `--config` names (none without it)."""
        return [d.lower() for d in self.config().server.domains] if self.config_path else []

    def require_user(self, store: Store, aor: str) -> None:
        """`aor` must be a user of a served domain: anything else is a typing mistake
        (one line, exit status 1)."""
        user, _, domain = aor.rpartition("@")
        domain = domain.lower()
        if not store.has_domain(domain) and domain not in self.configured_domains():
            raise click.ClickException(
                f"no domain {domain}: add it with `sipline domain add {domain}` (or --config)"
            )
        if store.get_user(user, domain) is None:
            raise click.ClickException(f"no user {aor}: add it with `sipline user add {aor}`")

    @property
    def database(self) -> DatabaseLocation:
        return self.db if self.db is not None else self.config().server.database

    def open(self) -> AbstractContextManager[Store]:
        """The store, created on first use; a store error becomes one line and exit 1."""
        return self.opened(open_store)

    @contextmanager
    def opened(self, make: Callable[[DatabaseLocation], S]) -> Iterator[S]:
        """`make(database)` (a store over the same file), closed at the end; a store
        error becomes one line and exit 1."""
        try:
            store = make(self.database)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            yield store
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            store.close()


def store_options(fn: F) -> F:
    """Add `--config` and `--db` to a command; it receives them as `where: StoreOptions`."""

    @functools.wraps(fn)
    def command(*args: Any, config_path: Path | None, db: str | None, **kwargs: Any) -> Any:
        location = database_location(db) if db is not None else None
        return fn(*args, where=StoreOptions(config_path, location), **kwargs)

    path = click.Path(path_type=Path, dir_okay=False)
    # A string: a postgresql:// URL is not a path (click.Path would fold its "//").
    with_db = click.option("--db", type=str, default=None, help=DB_HELP)(command)
    return cast(F, click.option("--config", "config_path", type=path, help=CONFIG_HELP)(with_db))
