"""The CLI against a running server's API (`--api URL`), so administration needs no
database file, and its errors: one line on stderr, exit status 1 or 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop_helpers import HOST, ServeProcess, free_tcp_port, start_serve

pytestmark = [pytest.mark.interop, pytest.mark.slow]

PASSWORD = "cli-admin-pw"


def sipline(*args: str, password: str | None = PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if password is not None:
        env["SIPLINE_ADMIN_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-c", "from sipline.cli.main import main; main()", *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[ServeProcess, str]]:
    http = free_tcp_port()
    config = f'[http]\nlisten = "{HOST}:{http}"\nadmin_password = "{PASSWORD}"\n'
    proc = start_serve(tmp_path / "serve", config, tls=False)
    try:
        yield proc, f"http://{HOST}:{http}/"
    finally:
        assert proc.stop() == 0


def test_administration_through_the_api(server: tuple[ServeProcess, str], tmp_path: Path) -> None:
    _, url = server
    steps = [
        (("domain", "add", "ops.example"), "added domain ops.example"),
        (("user", "add", "erin@ops.example", "--password", "erin-pw"), "added erin@ops.example"),
        (("user", "passwd", "erin@ops.example", "--password", "erin-pw2"), "changed the password of erin@ops.example"),
        (("user", "list"), "erin@ops.example"),
    ]  # fmt: skip
    for args, expected in steps:
        out = sipline(*args, "--api", url)
        assert out.returncode == 0 and out.stdout.strip() == expected, (args, out.stderr)
    listed = json.loads(sipline("domain", "list", "--json", "--api", url).stdout)
    assert {"domain": "ops.example", "users": 1} in listed
    assert json.loads(sipline("registrations", "--json", "--api", url).stdout) == []
    status = json.loads(sipline("status", "--json", "--api", url).stdout)
    assert status["workers"] == 1 and status["active_calls"] == 0 and "requests_in" in status
    assert sipline("calls", "--api", url).stdout.strip() == "no calls"
    out = sipline("domain", "del", "ops.example", "--api", url)
    assert (
        out.returncode == 1
        and out.stderr.startswith("Error: ")
        and len(out.stderr.splitlines()) == 1
    )
    # routing rules, checked at the server as `route set` checks them
    assert (
        sipline("user", "add", "finn@ops.example", "--password", "finn-pw", "--api", url).returncode
        == 0
    )
    rules = tmp_path / "erin.json"
    rules.write_text(json.dumps({"dnd": True}))
    out = sipline("route", "set", "erin@ops.example", str(rules), "--api", url)
    assert out.returncode == 0 and out.stdout.startswith("rules of erin@ops.example saved"), (
        out.stderr
    )
    shown = json.loads(sipline("route", "show", "--json", "--api", url).stdout)
    assert shown["erin@ops.example"]["rules"]["dnd"] is True
    rules.write_text(json.dumps({"forward": {"always": "finn@ops.example"}}))
    assert sipline("route", "set", "erin@ops.example", str(rules), "--api", url).returncode == 0
    rules.write_text(json.dumps({"forward": {"always": "erin@ops.example"}}))
    loop = sipline("route", "set", "finn@ops.example", str(rules), "--api", url)
    assert loop.returncode == 1 and "rules of finn@ops.example not saved" in loop.stderr
    nobody = sipline("route", "set", "nobody@ops.example", str(rules), "--api", url)
    assert nobody.returncode == 1 and "404 no user nobody@ops.example" in nobody.stderr
    options = sipline("route", "set", "erin@ops.example", "--dnd", "--api", url)
    assert options.returncode == 2 and "give the whole rules as FILE" in options.stderr
    assert sipline("route", "del", "erin@ops.example", "--api", url).returncode == 0
    gone = sipline("route", "del", "erin@ops.example", "--api", url)
    assert gone.returncode == 1 and "404 no rules for erin@ops.example" in gone.stderr
    assert sipline("user", "del", "finn@ops.example", "--api", url).returncode == 0

    assert sipline("user", "del", "erin@ops.example", "--api", url).returncode == 0
    assert sipline("domain", "del", "ops.example", "--api", url).returncode == 0

    # errors people can act on
    wrong = sipline("user", "list", "--api", url, password="not-it")
    assert wrong.returncode == 1 and "401 the admin credential is needed" in wrong.stderr
    gone = sipline("status", "--api", f"http://{HOST}:{free_tcp_port()}/")
    assert gone.returncode == 1 and "cannot reach" in gone.stderr
    both = sipline("calls", "--api", url, "--db", "x.db")
    assert both.returncode == 2 and "give --db/--config or --api, not both" in both.stderr
    nope = sipline("trace", "no-such-call", "--api", url)
    assert nope.returncode == 1 and "404" in nope.stderr
    for out in (wrong, gone, both, nope):
        assert "Traceback" not in out.stderr


def test_serve_refuses_a_public_http_listener(tmp_path: Path) -> None:
    out = sipline("serve", "--http", "0.0.0.0:8080", "--db", str(tmp_path / "x.db"))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "Error: --http: 0.0.0.0:8080 is not a loopback address: it needs"
        " http.tls_cert/http.tls_key and http.admin_password or http.token"
    )
    bad = sipline("serve", "--http", "localhost", "--db", str(tmp_path / "x.db"))
    assert bad.returncode == 1 and bad.stderr.startswith(
        "Error: --http: 'localhost' must be IP:PORT"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_http_port_is_one_line(tmp_path: Path, workers: str) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        out = sipline(
            "serve", "--http", f"{HOST}:{port}", "--listen", f"udp:{HOST}:0",
            "--listen", f"tcp:{HOST}:0", "--db", str(tmp_path / "x.db"), "--workers", workers,
        )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert f"sipline: cannot listen on http {HOST}:{port}: address already in use" in out.stderr
    assert "Traceback" not in out.stderr
