"""A MESSAGE forked to the two devices of one user, under a SIPp load: every sender
gets 200, both devices get every message, and no branch is cancelled (RFC 3261 §16.7
step 10 cancels INVITE branches only; the conftest fails the test if the server
logged a traceback)."""

from __future__ import annotations

import time
from pathlib import Path

from interop_helpers import HOST, SIPP_DATA, ServeProcess, free_port_pair, run_sipp, start_sipp_uas
from test_server_sipp import bindings, register_uas, server

MESSAGES = 100

__all__ = ["server"]  # the fixture, from test_server_sipp


def test_forked_message_load_gets_200_from_both_devices(
    server: ServeProcess, tmp_path: Path
) -> None:
    first, second = free_port_pair(), free_port_pair()
    register_uas(server, tmp_path, first)
    register_uas(server, tmp_path, second)
    assert len(bindings(server.workdir / "sipline.db")["bob@example.com"]) == 2
    uas = [
        start_sipp_uas(SIPP_DATA / "uas_message.xml", tmp_path, port=port, calls=MESSAGES)
        for port in (first, second)
    ]
    time.sleep(0.3)
    sent = run_sipp(
        f"{HOST}:{server.port}", SIPP_DATA / "message_uac.xml", tmp_path, calls=MESSAGES,
        rate=100, timeout_s=30, extra=["-s", "bob"],
    )  # fmt: skip
    assert (sent.successful, sent.failed) == (MESSAGES, 0), sent.output[-3000:]
    for device in uas:
        got = device.finish()
        assert (got.successful, got.failed) == (MESSAGES, 0), got.output[-3000:]
    assert not [line for line in server.lines if "ERROR" in line], server.lines[-20:]
