"""`sipline serve` as registrar and record-routing proxy for real SIPp user agents:
1,000 users registering with digest authentication, refreshing and unregistering;
calls UAC -> sipline -> UAS with ACK and BYE through the proxy; forking to two UAS.

SIPp 3.6.1 answers only the first challenge of a 401/407 and only MD5 (it gives up on
SHA-256 instead of taking the next challenge, as RFC 8760 §2.4 asks), so these servers
offer MD5 alone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import (
    HOST,
    SIPP_DATA,
    ServeProcess,
    checked,
    free_port_pair,
    run_sipp,
    start_serve,
    start_sipp_uas,
    write_sipp_users,
)

from sipline.storage import SqliteStore

pytestmark = pytest.mark.interop

DOMAIN = "example.com"
CONFIG = f'[server]\ndomains = ["{DOMAIN}"]\n[auth]\nalgorithms = ["MD5"]\n'
REGISTER = SIPP_DATA / "register_auth.xml"
UAC = SIPP_DATA / "uac_call_rr.xml"
UAS_RR = SIPP_DATA / "uas_rr.xml"
UAS_BUSY = SIPP_DATA / "uas_busy.xml"
UAS_CANCEL = SIPP_DATA / "uas_ring_cancel.xml"
N_USERS = 1000


def provision(db: Path, users: list[tuple[str, str]]) -> None:
    store = SqliteStore(db)
    with store.transaction():
        store.add_domain(DOMAIN)
        for user, password in users:
            store.add_user(user, DOMAIN, password)
    store.close()


def bindings(db: Path) -> dict[str, list[str]]:
    store = SqliteStore(db)
    now = time.time()
    found: dict[str, list[str]] = {}
    for b in store.all_bindings():
        if b.expires_at > now:
            found.setdefault(b.aor, []).append(b.contact)
    store.close()
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    users = [(f"u{i:04d}", f"pw{i:04d}") for i in range(N_USERS)]
    provision(workdir / "sipline.db", [*users, ("alice", "alice-pw"), ("bob", "bob-pw")])
    proc = start_serve(workdir, CONFIG, tls=False)
    with checked(proc):
        yield proc


def test_thousand_users_register_refresh_unregister(server: ServeProcess, tmp_path: Path) -> None:
    users = [(f"u{i:04d}", f"pw{i:04d}") for i in range(N_USERS)]
    csv = write_sipp_users(tmp_path / "users.csv", users, DOMAIN)
    db = server.workdir / "sipline.db"
    target = f"{HOST}:{server.port}"
    common = ["-inf", str(csv), "-cid_str", "reg-%u@%s"]
    port = free_port_pair()  # one port for every phase: the same Contact each time

    def phase(expires: int, base_cseq: int) -> None:
        result = run_sipp(
            target, REGISTER, tmp_path, calls=N_USERS, rate=400, timeout_s=60, local_port=port,
            extra=[*common, "-key", "expires", str(expires), "-base_cseq", str(base_cseq)],
        )  # fmt: skip
        assert result.returncode == 0, result.output[-3000:]
        assert (result.successful, result.failed) == (N_USERS, 0)

    phase(3600, 1)
    registered = bindings(db)
    assert len(registered) == N_USERS
    assert registered[f"u0007@{DOMAIN}"][0].startswith("sip:u0007@127.0.0.1:")
    store = SqliteStore(db)
    before = {b.aor: b for b in store.all_bindings()}
    store.close()

    phase(1800, 3)  # same Call-IDs, higher CSeq: a refresh of the same contacts
    store = SqliteStore(db)
    after = {b.aor: b for b in store.all_bindings()}
    store.close()
    assert after.keys() == before.keys()
    assert all(after[a].contact == before[a].contact for a in after)
    assert all(after[a].cseq == 4 and before[a].cseq == 2 for a in after)
    assert all(after[a].expires_at < before[a].expires_at for a in after)  # 1800 < 3600

    phase(0, 5)
    assert bindings(db) == {}
    status = server.status()
    assert status["malformed_requests"] == 0


def register_uas(server: ServeProcess, tmp_path: Path, port: int) -> None:
    """Register bob from the port the SIPp UAS will listen on (so its source and its
    Contact agree), then return; the UAS starts on that port afterwards."""
    csv = write_sipp_users(tmp_path / f"bob-{port}.csv", [("bob", "bob-pw")], DOMAIN)
    result = run_sipp(
        f"{HOST}:{server.port}", REGISTER, tmp_path, calls=1, rate=1, timeout_s=15,
        local_port=port, extra=["-inf", str(csv), "-key", "expires", "600"],
    )  # fmt: skip
    assert (result.successful, result.failed) == (1, 0), result.output[-3000:]


def call(server: ServeProcess, tmp_path: Path, calls: int) -> tuple[int, int, str]:
    csv = write_sipp_users(tmp_path / "alice.csv", [("alice", "alice-pw")], DOMAIN)
    result = run_sipp(
        f"{HOST}:{server.port}", UAC, tmp_path, calls=calls, rate=20, timeout_s=30,
        extra=["-inf", str(csv), "-s", "bob"],
    )  # fmt: skip
    return result.successful, result.failed, result.output[-3000:]


def test_calls_through_the_proxy_with_record_route(server: ServeProcess, tmp_path: Path) -> None:
    calls = 20
    port = free_port_pair()
    register_uas(server, tmp_path, port)
    before = server.status()["requests_in"]
    uas = start_sipp_uas(UAS_RR, tmp_path, port=port, calls=calls, extra=["-d", "0"])
    time.sleep(0.3)
    ok, failed, output = call(server, tmp_path, calls)
    assert (ok, failed) == (calls, 0), output
    callee = uas.finish()
    assert (callee.successful, callee.failed) == (calls, 0), callee.output[-3000:]
    # INVITE, ACK for the 407, INVITE with credentials, ACK for the 200, BYE: all five
    # reached sipline (the ACK and BYE because the callee's Record-Route named it).
    assert server.status()["requests_in"] - before == 5 * calls


def test_fork_first_200_wins_and_the_other_branch_is_cancelled(
    server: ServeProcess, tmp_path: Path
) -> None:
    calls = 5
    answering, ringing = free_port_pair(), free_port_pair()
    register_uas(server, tmp_path, answering)
    register_uas(server, tmp_path, ringing)
    assert len(bindings(server.workdir / "sipline.db")[f"bob@{DOMAIN}"]) == 2
    winner = start_sipp_uas(UAS_RR, tmp_path, port=answering, calls=calls, extra=["-d", "300"])
    loser = start_sipp_uas(UAS_CANCEL, tmp_path, port=ringing, calls=calls)
    time.sleep(0.3)
    ok, failed, output = call(server, tmp_path, calls)
    assert (ok, failed) == (calls, 0), output
    won, cancelled = winner.finish(), loser.finish()
    assert (won.successful, won.failed) == (calls, 0), won.output[-3000:]
    # uas_ring_cancel succeeds only when a CANCEL arrived for each call.
    assert (cancelled.successful, cancelled.failed) == (calls, 0), cancelled.output[-3000:]


def test_fork_486_and_200_gives_200(server: ServeProcess, tmp_path: Path) -> None:
    calls = 5
    answering, busy = free_port_pair(), free_port_pair()
    register_uas(server, tmp_path, answering)
    register_uas(server, tmp_path, busy)
    winner = start_sipp_uas(UAS_RR, tmp_path, port=answering, calls=calls, extra=["-d", "200"])
    refuser = start_sipp_uas(UAS_BUSY, tmp_path, port=busy, calls=calls)
    time.sleep(0.3)
    ok, failed, output = call(server, tmp_path, calls)
    assert (ok, failed) == (calls, 0), output
    won, refused = winner.finish(), refuser.finish()
    assert (won.successful, won.failed) == (calls, 0), won.output[-3000:]
    assert (refused.successful, refused.failed) == (calls, 0), refused.output[-3000:]
