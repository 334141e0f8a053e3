"""Reloading a running `sipline serve` (two workers): SIGHUP, and POST /api/reload
through worker 0, re-read the configuration file; what can change live is applied
(log format and SIP trace, registrar expiry limits), what cannot is named."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import (
    HOST,
    SIPP_DATA,
    ServeProcess,
    free_port_pair,
    free_tcp_port,
    run_sipp,
    start_serve,
    write_sipp_users,
)

from sipline.storage import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.slow]

DOMAIN = "example.com"
PASSWORD = "reload-pw-12"


def options(port: int, n: int) -> None:
    """A few OPTIONS to the server itself (answered statelessly), from fresh ports so
    both workers are likely to see some."""
    for i in range(n):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.bind((HOST, 0))
            me = sock.getsockname()[1]
            sock.sendto(
                (f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bKrl{i}\r\n"
                 f"From: <sip:t@{DOMAIN}>;tag=t{i}\r\nTo: <sip:{HOST}:{port}>\r\nCall-ID: reload-{i}\r\n"
                 "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(),
                (HOST, port),
            )  # fmt: skip
            assert sock.recv(65535).startswith(b"SIP/2.0 200 ")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServeProcess, str, str]]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    store.add_user("carol", DOMAIN, "carol-pw")
    store.close()
    http = free_tcp_port()
    base = (
        f'[server]\ndomains = ["{DOMAIN}"]\n[auth]\nalgorithms = ["MD5"]\n'
        f'[http]\nlisten = "{HOST}:{http}"\nadmin_password = "{PASSWORD}"\n'
    )
    proc = start_serve(workdir, base, tls=False, workers=2)
    try:
        yield proc, f"http://{HOST}:{http}/", base
    finally:
        code = proc.stop()
    assert code == 0, "\n".join(proc.lines[-20:])


def count(proc: ServeProcess, pattern: str, start: int) -> int:
    return sum(pattern in line for line in proc.lines[start:])


def wait_count(proc: ServeProcess, pattern: str, start: int, n: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while count(proc, pattern, start) < n:
        assert time.monotonic() < deadline, f"{pattern!r} not seen {n} times:\n" + "\n".join(
            proc.lines[start:][-20:]
        )
        time.sleep(0.05)


def test_sighup_and_the_api_reload_the_configuration(
    server: tuple[ServeProcess, str, str], tmp_path: Path
) -> None:
    proc, url, base = server
    options(proc.port, 6)
    assert not any("received UDP <-" in line for line in proc.lines)  # no SIP trace yet

    config = proc.workdir / "sipline.toml"
    config.write_text(
        base.replace("[server]\n", "[server]\nrecord_route = false\n")
        + '[log]\nformat = "json"\nsip_trace = true\n'
        + "[registrar]\nmax_expires = 1200\ndefault_expires = 600\n",
        encoding="utf-8",
    )
    start = len(proc.lines)
    proc.proc.send_signal(1)  # SIGHUP
    wait_count(proc, "reload: applied", start, 2)  # one line per worker
    [line, *_] = [x for x in proc.lines[start:] if "reload: applied" in x]
    doc = json.loads(line)  # the new format already
    assert doc["level"] == "warning" and doc["worker"] in (0, 1)
    assert "log.format" in doc["msg"] and "log.sip_trace" in doc["msg"]
    assert "registrar.max_expires" in doc["msg"] and "registrar.default_expires" in doc["msg"]
    assert doc["msg"].endswith("needs a restart: server.record_route")

    start = len(proc.lines)
    options(proc.port, 6)
    wait_count(proc, '"event": "sip"', start, 12)  # each OPTIONS in and its 200 out
    traced = [json.loads(x) for x in proc.lines[start:] if '"event": "sip"' in x]
    assert any(
        t["msg"].startswith("received UDP <-") and "OPTIONS sip:" in t["msg"] for t in traced
    )

    # the registrar's new limit: 3600 asked, 1200 granted
    carol = write_sipp_users(tmp_path / "carol.csv", [("carol", "carol-pw")], DOMAIN)
    reg = run_sipp(f"{HOST}:{proc.port}", SIPP_DATA / "register_auth.xml", tmp_path, calls=1,
                   rate=1, timeout_s=15, local_port=free_port_pair(),
                   extra=["-inf", str(carol), "-key", "expires", "3600"])  # fmt: skip
    assert (reg.successful, reg.failed) == (1, 0), reg.output[-2000:]
    store = SqliteStore(proc.workdir / "sipline.db")
    [binding] = store.all_bindings()
    store.close()
    assert 1100 < binding.expires_at - time.time() <= 1200

    # POST /api/reload reaches every worker through the supervisor
    start = len(proc.lines)
    basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(url + "api/reload", method="POST",
                                     headers={"Authorization": f"Basic {basic}"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {"reloading": True, "workers": 2}
    wait_count(proc, "reload: applied nothing (no change)", start, 2)
    # a broken file changes nothing and says why
    config.write_text(base + '[log]\nformat = "xml"\n', encoding="utf-8")
    start = len(proc.lines)
    proc.proc.send_signal(1)
    wait_count(proc, "reload: configuration not changed: log.format: must be", start, 2)
    assert proc.alive() and "Traceback" not in "\n".join(proc.lines)
