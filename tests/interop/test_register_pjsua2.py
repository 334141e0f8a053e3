"""pjsua2 (PJSIP 2.15, PyPI `pjsua2-python`) registers through `sipline serve` the way
softphones and desk phones are usually set up: registrar = the server's address
(`sip:127.0.0.1:PORT`), account = `sip:alice@example.com`. The REGISTER's Request-URI
names the server, so the domain is the To's (RFC 3261 §10.3 step 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from interop_helpers import HOST, start_serve

from sipline.storage import SqliteStore

pytestmark = pytest.mark.interop

DOMAIN = "example.com"
AGENT = Path(__file__).parent / "pjsua2_agent.py"


def test_pjsua2_registers_with_the_server_address_as_registrar(tmp_path: Path) -> None:
    pytest.importorskip("pjsua2", reason="pjsua2-python is not installed (test extras)")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    store.add_user("alice", DOMAIN, "alice-pw")
    store.close()
    server = start_serve(workdir, f'[server]\ndomains = ["{DOMAIN}"]\n', tls=False)
    try:
        done = subprocess.run(
            [sys.executable, str(AGENT), f"sip:{HOST}:{server.port}", f"sip:alice@{DOMAIN}",
             "alice", "alice-pw", "10"],
            capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        out = done.stdout.decode("utf-8", "replace")
        assert "REGSTATE 200" in out, out + done.stderr.decode("utf-8", "replace")
        assert done.returncode == 0
        assert server.alive()
    finally:
        code = server.stop()
    assert code == 0, "\n".join(server.lines[-20:])
