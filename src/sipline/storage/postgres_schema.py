"""The PostgreSQL schema: SQLite's migrations translated (`postgres_sql.ddl`), with the
same version numbers, plus what only PostgreSQL has.

`MIGRATIONS[i]` takes the schema from version i to i + 1, as in `sqlite_schema.py`;
the version lives in the one-row table `schema_version`. What differs:
- SQLite's triggers are left out. The credentials version (5) is bumped by a
  PL/pgSQL trigger once per statement; the binding change feed (4, 13) is not a
  table here but a NOTIFY sent in the writer's transaction (`postgres.py`), so the
  `binding_changes` statements are left out too.
- `ADD COLUMN` is `ADD COLUMN IF NOT EXISTS` (`postgres_sql.ddl`), so a column
  PostgreSQL got first is not added twice.
"""

from __future__ import annotations

from sipline.storage.postgres_sql import ddl
from sipline.storage.sqlite_schema import MIGRATIONS as SQLITE_MIGRATIONS
from sipline.storage.sqlite_schema import SCHEMA_VERSION

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "VERSION_TABLE"]

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)"

_ONLY_HERE: dict[int, tuple[str, ...]] = {
    5: (
        """CREATE FUNCTION sipline_credentials_changed() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN UPDATE credentials_version SET n = n + 1; RETURN NULL; END $$""",
        """CREATE TRIGGER credentials_changed AFTER INSERT OR UPDATE OR DELETE ON credentials
            FOR EACH STATEMENT EXECUTE FUNCTION sipline_credentials_changed()""",
    ),
}


def _portable(statement: str) -> bool:
    return "TRIGGER" not in statement.upper() and "binding_changes" not in statement


MIGRATIONS: tuple[tuple[str, ...], ...] = tuple(
    tuple(ddl(s) for s in statements if _portable(s)) + _ONLY_HERE.get(version, ())
    for version, statements in enumerate(SQLITE_MIGRATIONS, start=1)
)
assert len(MIGRATIONS) == SCHEMA_VERSION
