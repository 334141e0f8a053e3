"""What is particular to the PostgreSQL store: its schema and version, the URL's
password kept out of every message, the column `flow` ready for RFC 5626 flows, and
times kept to the microsecond (DOUBLE PRECISION, not PostgreSQL's 4-byte REAL)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from sipline.storage import SCHEMA_VERSION, Binding, StoreError
from sipline.storage.location import database_location, describe, is_url, open_store
from sipline.storage.postgres import PostgresStore
from sipline.storage.postgres_sql import redact_url, translate
from sipline.testing.postgres import PostgresCluster

SECRET = "hunter2-not-shown"


def test_locations_and_their_description() -> None:
    assert database_location("postgresql://u@h/db") == "postgresql://u@h/db"
    assert database_location("postgres://u@h/db") == "postgres://u@h/db"
    assert database_location("sip.db") == Path("sip.db")
    assert is_url("postgresql://h/db") and not is_url(Path("postgresql:/h/db"))
    assert describe(f"postgresql://u:{SECRET}@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url(f"postgresql://u:{SECRET}@[::1]/db?sslmode=require") == (
        "postgresql://u:***@[::1]/db?sslmode=require"
    )
    assert describe(Path("a/b.db")) == "a/b.db"


def test_the_shared_sql_is_rewritten_once_for_postgresql() -> None:
    assert translate("UPDATE t SET a = max(a, ?) WHERE b LIKE '%x' AND c = ?") == (
        "UPDATE t SET a = GREATEST(a, %s) WHERE b LIKE '%%x' AND c = %s"
    )
    assert translate("SELECT coalesce(max(seq), 0) FROM t") == "SELECT coalesce(max(seq), 0) FROM t"


def test_an_empty_database_is_built_to_the_current_version(
    postgres_cluster: PostgresCluster,
) -> None:
    url = postgres_cluster.create_database()
    store = PostgresStore(url)
    assert store.schema_version == SCHEMA_VERSION
    store.close()
    again = PostgresStore(url)  # nothing left to do
    assert again.schema_version == SCHEMA_VERSION
    again.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this sipline supports"):
        PostgresStore(url)


def test_the_password_is_in_no_error(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.url("no_such_database", password=SECRET)
    with pytest.raises(StoreError) as raised:
        open_store(url)
    assert "no_such_database" in str(raised.value)
    assert SECRET not in str(raised.value) and "***" in str(raised.value)


def test_flow_is_a_nullable_column_and_times_keep_their_precision(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    at = 1796653328.4760203
    b = Binding("alice@example.com", "sip:a@h", at, "c", 1, q=0.7, updated_at=at)
    store.upsert_binding(b)
    assert store.list_bindings("alice@example.com") == [b]
    assert store._query("SELECT flow FROM bindings") == [(None,)]
    store.close()
