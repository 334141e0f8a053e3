"""`sipline serve` and the CLI on a PostgreSQL database (`--db postgresql://…`), and
what two workers cost each other: a worker reloads only the AORs the other one wrote,
never its own (the feed names each change's origin), on either backend."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from interop_helpers import (
    HOST,
    SIPP_DATA,
    ServeProcess,
    run_sipp,
    sipline_cli,
    start_serve,
    write_sipp_users,
)

from sipline.storage.location import open_store

pytestmark = pytest.mark.interop

DOMAIN = "example.com"
SECRET = "s3cret-db-pw"  # the test cluster trusts every connection: any password will do


sipline = sipline_cli


def with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@", 1)


def test_serve_and_the_cli_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """The CLI adds a user, two workers serve it, SIPp registers, the CLI lists the
    binding; the URL's password shows nowhere (log, output, worker command lines)."""
    url = with_password(postgres_url)
    for args in (
        ("domain", "add", DOMAIN),
        ("user", "add", f"alice@{DOMAIN}", "--password", "pw-alice"),
    ):
        done = sipline(*args, "--db", url, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
    server = start_serve(tmp_path / "serve", tls=False, workers=2, db=url)
    try:
        assert any("postgresql://postgres:***@127.0.0.1" in line for line in server.lines)
        for pid in _children(server.pid):
            assert SECRET not in Path(f"/proc/{pid}/cmdline").read_text()
        users = write_sipp_users(tmp_path / "users.csv", [("alice", "pw-alice")], DOMAIN)
        result = run_sipp(
            f"{HOST}:{server.port}", SIPP_DATA / "register_auth.xml", tmp_path, calls=1,
            timeout_s=20, extra=["-inf", str(users), "-key", "expires", "600"],
        )  # fmt: skip
        assert (result.successful, result.failed) == (1, 0), result.output[-3000:]
        listed = sipline("registrations", "--json", "--db", url, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert f"alice@{DOMAIN}" in listed.stdout
        elsewhere = url.rpartition("/")[0] + "/nope"
        wrong = sipline("user", "list", "--db", elsewhere, cwd=tmp_path)
        assert wrong.returncode == 1 and "nope" in wrong.stderr, wrong.stderr
        assert SECRET not in wrong.stderr
    finally:
        assert server.stop() == 0
    assert not any(SECRET in line for line in server.lines)


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(p) for p in found]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_reload_only_what_the_other_one_wrote(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """SIPp registers USERS users from one address, so one worker writes every binding;
    the other reloads each AOR once from the feed, and the writer reloads none."""
    users = [(f"u{i:04d}", f"pw{i:04d}") for i in range(USERS)]
    workdir = tmp_path / "serve"
    workdir.mkdir()
    db = str(workdir / "sipline.db")
    if backend == "postgresql":
        db = request.getfixturevalue("postgres_url")
    store = open_store(Path(db) if backend == "sqlite" else db)
    with store.transaction():
        store.add_domain(DOMAIN)
        for user, password in users:
            store.add_user(user, DOMAIN, password)
    store.close()
    server = start_serve(workdir, '[auth]\nalgorithms = ["MD5"]\n', tls=False, workers=2, db=db)
    try:
        csv = write_sipp_users(tmp_path / "users.csv", users, DOMAIN)
        result = run_sipp(
            f"{HOST}:{server.port}", SIPP_DATA / "register_auth.xml", tmp_path, calls=USERS,
            rate=100, timeout_s=40, extra=["-inf", str(csv), "-key", "expires", "600"],
        )  # fmt: skip
        assert result.successful > USERS // 2, result.output[-3000:]  # a loaded machine
        store = open_store(Path(db) if backend == "sqlite" else db)
        registered = len({b.aor for b in store.all_bindings()})
        store.close()
        per_worker = _reloads(server, registered)
        # A REGISTER retransmitted after its 200 was lost refreshes the binding: the
        # other worker may reload that AOR twice; the writer reloads none, ever.
        assert min(per_worker) == 0 and max(per_worker) >= registered, (per_worker, registered)
    finally:
        assert server.stop() == 0


USERS = 300
_WORKER = re.compile(r"worker (\d+) \(pid \d+\): .*binding_reloads=(\d+)")


def _reloads(server: ServeProcess, expected: int) -> list[int]:
    """binding_reloads of each worker, once they add up to `expected` (or after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        start = len(server.lines)
        server.status()
        time.sleep(0.2)
        found = {m[1]: int(m[2]) for line in server.lines[start:] if (m := _WORKER.search(line))}
        if (sum(found.values()) >= expected and len(found) == 2) or time.monotonic() > deadline:
            return list(found.values())
