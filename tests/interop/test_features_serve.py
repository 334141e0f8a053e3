"""Routing rules changed with `sipline route` while `sipline serve` runs: the next
call follows them (the server reloads changed rules within a second)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from features_sip import DOMAIN, PASSWORD, Phone, SippUas
from interop_helpers import HOST, start_serve

from sipline.storage.sqlite import SqliteStore
from sipline.transport import Target

pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

SIPLINE = shutil.which("sipline") or str(Path(sys.executable).parent / "sipline")
CONFIG = f"""
[server]
domains = ["{DOMAIN}"]
[auth]
authenticate_calls = false
[registrar]
fix_nated_register = false
"""


async def test_route_set_applies_to_the_running_server(tmp_path: Path) -> None:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    store.add_user("alice", DOMAIN, PASSWORD)
    store.close()
    server = start_serve(workdir, CONFIG, tls=False)
    phone = await Phone().start()
    busy = await SippUas("uas_busy", tmp_path, calls=2).start()
    voicemail = await SippUas("uas_answer", tmp_path).start()
    try:
        target = Target("UDP", HOST, server.port)
        assert (await phone.register(target, "alice", busy.contact("alice"))).status == 200
        first = await phone.invite(target, f"sip:alice@{DOMAIN}").final()
        assert first.status == 486
        done = await asyncio.to_thread(
            subprocess.run,
            [SIPLINE, "route", "set", f"alice@{DOMAIN}", "--forward-busy", voicemail.contact("vm"),
             "--db", str(workdir / "sipline.db")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        await asyncio.sleep(1.5)  # the server checks for changed rules every second
        call = phone.invite(target, f"sip:alice@{DOMAIN}")
        ok = await call.final()
        assert ok.status == 200, ok
        await phone.hang_up(call, ok)
        assert await voicemail.finish() == 0
        assert await busy.finish() == 0
        assert server.alive()
    finally:
        await busy.stop()
        await voicemail.stop()
        await phone.close()
        assert server.stop() == 0
    (invite,) = voicemail.received("INVITE")
    assert "reason=user-busy" in (invite.headers.get("diversion") or "")
