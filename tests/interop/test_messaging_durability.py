"""`kill -9` of `sipline serve` in the middle of a SIPp load of messages for an offline
user loses no message that was answered 202: each 202 is sent only after its commit."""

from __future__ import annotations

import re
import subprocess
import time
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
)

from sipline.storage import SqliteStore

pytestmark = pytest.mark.interop

DOMAIN = "example.com"
MESSAGES = 3000
_BODY = re.compile(rb"message (\d+)")


def test_sigkill_during_a_message_load_loses_no_accepted_message(tmp_path: Path) -> None:
    sipp = need("sipp")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    db = workdir / "sipline.db"
    store = SqliteStore(db)
    store.add_domain(DOMAIN)
    store.add_user("bob", DOMAIN, "bob-pw")
    store.close()
    # SIPp stands for a trusted peer (a federated server): a stranger's messages are
    # not stored (README "Running on the Internet").
    config = '[messaging]\nmax_stored_per_user = 100000\n[[trusted]]\naddress = "127.0.0.1"\n'
    server = start_serve(workdir, config, tls=False)
    messages = tmp_path / "messages.log"
    load = subprocess.Popen(
        [
            "timeout", "-k", "5", "60", sipp, f"{HOST}:{server.port}",
            "-sf", str(SIPP_DATA / "message_offline.xml"), "-s", "bob",
            "-i", HOST, "-p", str(free_port_pair()),
            "-m", str(MESSAGES), "-r", "500", "-recv_timeout", "2000", "-timeout", "40s",
            "-buff_size", "4194304", "-nostdin", "-trace_msg", "-message_file", str(messages),
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    kill_mid_load(server, load, after_s=2.5)  # about 1,000 messages in

    # Every 202 SIPp received; the call it answers is in the From tag.
    accepted = set()
    for response in traced_responses(messages, 202):
        match = re.search(r"^From: <sip:sipp@peer\.example>;tag=\d+SIPpTag(\d+)", response, re.M)
        assert match is not None, response[:500]
        accepted.add(int(match.group(1)))
    assert 100 < len(accepted) < MESSAGES, len(accepted)  # killed mid-load

    store = SqliteStore(db)  # opens after the crash: WAL recovery
    try:
        kept = store.pending_messages(f"bob@{DOMAIN}", now=time.time(), limit=MESSAGES * 2)
    finally:
        store.close()
    stored = set()
    for m in kept:
        found = _BODY.search(m.body)
        assert found is not None
        stored.add(int(found.group(1)))
    missing = accepted - stored
    assert not missing, f"{len(missing)} accepted messages lost, e.g. {sorted(missing)[:5]}"
