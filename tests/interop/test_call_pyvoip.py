"""pyVoIP (PyPI `pyVoIP` 1.6, the bench extras) calls a SIPp callee through
`sipline serve`, with `localhost` as the served domain. pyVoIP sends its 2xx ACK to
`sip:bob@localhost` without a Route: the server routes it by the location service
(a served domain never goes to DNS), and the callee, which waits for that ACK before
the BYE, completes the call."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from interop_helpers import (
    HOST,
    SIPP_DATA,
    free_port_pair,
    run_sipp,
    start_serve,
    start_sipp_uas,
    write_sipp_users,
)

from sipline.storage import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.slow]

DOMAIN = "localhost"
AGENT = Path(__file__).parent / "pyvoip_agent.py"
# pyVoIP 1.6 answers only an MD5 challenge.
CONFIG = f'[server]\ndomains = ["{DOMAIN}"]\n[auth]\nalgorithms = ["MD5"]\n'


def test_pyvoip_call_through_the_server_to_a_sipp_callee(tmp_path: Path) -> None:
    pytest.importorskip("pyVoIP", reason="pyVoIP is not installed (bench extras)")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    store.add_user("alice", DOMAIN, "alice-pw")
    store.add_user("bob", DOMAIN, "bob-pw")
    store.close()
    server = start_serve(workdir, CONFIG, tls=False)
    try:
        bob_port = free_port_pair()
        users = write_sipp_users(tmp_path / "bob.csv", [("bob", "bob-pw")], DOMAIN)
        reg = run_sipp(
            f"{HOST}:{server.port}", SIPP_DATA / "register_auth.xml", tmp_path, calls=1, rate=1,
            timeout_s=15, local_port=bob_port, extra=["-inf", str(users), "-key", "expires", "600"],
        )  # fmt: skip
        assert (reg.successful, reg.failed) == (1, 0), reg.output[-3000:]
        callee = start_sipp_uas(
            SIPP_DATA / "uas_answer_reack.xml", tmp_path, port=bob_port, calls=1, timeout_s=30
        )
        time.sleep(0.3)
        done = subprocess.run(
            [sys.executable, str(AGENT), DOMAIN, str(server.port), "alice", "alice-pw",
             str(free_port_pair()), str(free_port_pair() & ~1), "bob", "15"],
            capture_output=True, timeout=40, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
        assert "STATE answered" in out, out
        # uas_answer succeeds only when the ACK, then the BYE, reached it.
        result = callee.finish(timeout_s=20)
        assert (result.successful, result.failed) == (1, 0), (
            result.output[-3000:] + out + "\n".join(server.lines)
        )
        assert server.alive()
        assert not [line for line in server.lines if "cannot resolve" in line], server.lines
    finally:
        code = server.stop()
    assert code == 0, "\n".join(server.lines[-20:])
