"""SIPp against the presence agent of `sipline serve`: SUBSCRIBE/NOTIFY (RFC 6665,
RFC 3856) with a PUBLISH seen by the watcher, and many publications driven through
their entity-tag life cycle (RFC 3903)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import HOST, SIPP_DATA, ServeProcess, run_sipp, start_serve, write_sipp_users

from sipline.storage import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.serial]

DOMAIN = "example.com"
# SIPp 3.6 answers only MD5 and only the first challenge.
CONFIG = '[auth]\nalgorithms = ["MD5"]\n[presence]\nmin_notify_interval_s = 0.1\n'
USERS = [(f"u{i:03d}", f"pw{i:03d}") for i in range(20)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    for user, password in [*USERS, ("alice", "alice-pw"), ("bob", "bob-pw")]:
        store.add_user(user, DOMAIN, password)
    store.close()
    srv = start_serve(workdir, CONFIG, tls=False)
    try:
        yield srv
        assert srv.alive(), "\n".join(srv.lines[-20:])
    finally:
        srv.stop()


def test_watcher_sees_a_publication_then_unsubscribes(server: ServeProcess, tmp_path: Path) -> None:
    csv = tmp_path / "pair.csv"
    csv.write_text(
        "SEQUENTIAL\n"
        f"alice;[authentication username=alice password=alice-pw];{DOMAIN};"
        "bob;[authentication username=bob password=bob-pw]\n",
        encoding="ascii",
    )
    result = run_sipp(
        f"{HOST}:{server.port}", SIPP_DATA / "watch_publish.xml", tmp_path,
        calls=1, rate=1, timeout_s=30, extra=["-inf", str(csv)],
    )  # fmt: skip
    assert (result.successful, result.failed) == (1, 0), result.output[-3000:]
    store = SqliteStore(server.workdir / "sipline.db")
    try:
        assert store.list_subscriptions() == []  # unsubscribed: nothing kept
        (pub,) = store.publications(f"bob@{DOMAIN}", "presence", now=0.0)
        assert b"out for lunch" in pub.document
    finally:
        store.close()


def test_publications_through_their_entity_tag_life_cycle(
    server: ServeProcess, tmp_path: Path
) -> None:
    csv = write_sipp_users(tmp_path / "users.csv", USERS, DOMAIN)
    result = run_sipp(
        f"{HOST}:{server.port}", SIPP_DATA / "publish_cycle.xml", tmp_path,
        calls=len(USERS), rate=20, timeout_s=30, extra=["-inf", str(csv)],
    )  # fmt: skip
    assert (result.successful, result.failed) == (len(USERS), 0), result.output[-3000:]
    store = SqliteStore(server.workdir / "sipline.db")
    try:
        for user, _ in USERS:
            assert store.publications(f"{user}@{DOMAIN}", "presence", now=0.0) == []
    finally:
        store.close()
