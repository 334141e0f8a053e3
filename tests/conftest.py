"""Shared test configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from sipline.storage.postgres import PostgresStore
from sipline.testing.postgres import PostgresCluster, PostgresUnavailableError

DATA = Path(__file__).parent / "data"

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("default")


@pytest.fixture
def data_dir() -> Path:
    return DATA


# --- PostgreSQL: one throwaway cluster per session, a fresh database per test -----------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this session (sipline.testing.postgres); skips the test
    when the server binaries are not installed (`scripts/install-peers.sh` installs them)."""
    try:
        cluster = PostgresCluster().start()
    except PostgresUnavailableError as exc:
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        # A database at the current schema, copied for each test (faster than migrating).
        template = cluster.create_database("sipline_template")
        PostgresStore(template).close()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The postgresql:// URL of a fresh database at the current schema, dropped after the test."""
    url = postgres_cluster.create_database(template="sipline_template")
    yield url
    postgres_cluster.drop_database(url.rpartition("/")[2])
