"""`kill -9` of `sipline serve` in the middle of a SIPp registration load loses no
binding that was answered 200: each 200 is sent only after its commit (SQLite's WAL,
PostgreSQL's COMMIT)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from interop_helpers import (
    HOST,
    SIPP_DATA,
    free_port_pair,
    kill_mid_load,
    need,
    start_serve,
    traced_responses,
    write_sipp_users,
)

from sipline.storage.location import open_store

pytestmark = pytest.mark.interop

DOMAIN = "example.com"
USERS = 3000
_TO_USER = re.compile(r"^To: <sip:(u\d+)@", re.MULTILINE)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_during_registration_load_loses_no_acknowledged_binding(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    sipp = need("sipp")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    db = str(workdir / "sipline.db")
    if backend == "postgresql":
        db = request.getfixturevalue("postgres_url")
    location = Path(db) if backend == "sqlite" else db
    users = [(f"u{i:05d}", f"pw{i:05d}") for i in range(USERS)]
    store = open_store(location)
    with store.transaction():
        store.add_domain(DOMAIN)
        for user, password in users:
            store.add_user(user, DOMAIN, password)
    store.close()
    csv = write_sipp_users(tmp_path / "users.csv", users, DOMAIN)
    server = start_serve(workdir, '[auth]\nalgorithms = ["MD5"]\n', tls=False, db=db)
    messages = tmp_path / "messages.log"
    load = subprocess.Popen(
        [
            "timeout", "-k", "5", "60", sipp, f"{HOST}:{server.port}",
            "-sf", str(SIPP_DATA / "register_auth.xml"), "-inf", str(csv),
            "-key", "expires", "3600", "-i", HOST, "-p", str(free_port_pair()),
            "-m", str(USERS), "-r", "600", "-recv_timeout", "2000", "-timeout", "40s",
            "-buff_size", "4194304", "-nostdin", "-trace_msg", "-message_file", str(messages),
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    kill_mid_load(
        server, load, after_s=2.0
    )  # about 1,200 registrations in: the load is in full flow

    # Every 200 SIPp received: the To names the user.
    acknowledged = set()
    for response in traced_responses(messages, 200):
        match = _TO_USER.search(response)
        assert match is not None, response[:500]
        acknowledged.add(f"{match.group(1)}@{DOMAIN}")
    assert 100 < len(acknowledged) < USERS, len(acknowledged)  # killed mid-load

    store = open_store(location)  # opens after the crash (SQLite: WAL recovery)
    stored = {b.aor for b in store.all_bindings()}
    store.close()
    missing = acknowledged - stored
    assert not missing, f"{len(missing)} acknowledged bindings lost, e.g. {sorted(missing)[:5]}"

    # And the server itself starts again on the same database, bindings loaded.
    again = start_serve(workdir, '[auth]\nalgorithms = ["MD5"]\n', tls=False, db=db)
    try:
        assert again.alive()
    finally:
        assert again.stop() == 0
