"""What the user-agent commands say, run as a user runs them against a real
`sipline serve`: who answered a forwarded call, progress printed once, a silent server
reported, a missing password named, and how a subscription ended."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from cli_procs import HOST, Proc, serving


def _account(user: str, port: int) -> list[str]:
    return ["--user", f"{user}@example.com", "--password", f"{user}-pw",
            "--server", f"{HOST}:{port}", "--listen", f"{HOST}:0"]  # fmt: skip


def test_a_forwarded_call_names_who_answered_and_progress_is_said_once(tmp_path: Path) -> None:
    with serving(tmp_path / "serve") as port:
        db = str(tmp_path / "serve" / "sipline.db")
        forward = Proc("route", "set", "bob@example.com", "--forward-always", "carol@example.com",
                       "--db", db)  # fmt: skip
        assert forward.finish() == 0, forward.stderr
        carol = Proc("answer", *_account("carol", port), "--duration", "0.5")
        try:
            carol.wait_for("(registered)")
            time.sleep(1.2)  # the server reads rule changes within a second
            call = Proc("call", "bob@example.com", *_account("alice", port), "--duration", "0.5")
            assert call.finish() == 0, call.stdout + call.stderr
            assert carol.finish() == 0, carol.stderr
        finally:
            carol.stop()
    out = call.out
    answered = next(line for line in out if line.startswith("answered"))
    assert answered == (
        "answered sip:carol@example.com (PCMU), forwarded from sip:bob@example.com (unconditional)"
    ), out
    # The INVITE is challenged (407) and sent again: 100 Trying comes twice, said once.
    assert sum(line.startswith("trying 100") for line in out) == 1, out


def test_a_server_that_does_not_answer_is_reported(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        port = silent.getsockname()[1]
        args = ["bob@example.com", "--user", "alice@example.com", "--server", f"{HOST}:{port}",
                "--listen", f"{HOST}:0"]  # fmt: skip
        call = Proc("call", *args, seconds=15)
        as_json = Proc("call", *args, "--json", seconds=15)
        try:
            began = time.monotonic()
            line = call.wait_for("no answer from", timeout=8)
            waited = time.monotonic() - began
            event = json.loads(as_json.wait_for('"retrying"', timeout=8))
        finally:
            call.stop()
            as_json.stop()
    assert line == f"no answer from {HOST}:{port} to our INVITE yet, retrying"
    assert call.out[0] == "calling bob@example.com", call.out
    assert 3.0 < waited < 7.0, waited
    assert event == {
        "event": "retrying", "request": "INVITE", "server": f"{HOST}:{port}", "waited_s": 3.5
    }  # fmt: skip


def test_answer_without_a_password_is_told_one_is_needed(tmp_path: Path) -> None:
    with serving(tmp_path / "serve") as port:
        answer = Proc("answer", "--user", "bob@example.com", "--server", f"{HOST}:{port}",
                      "--listen", f"{HOST}:0")  # fmt: skip
        assert answer.finish() == 2
        wrong = Proc("answer", "--user", "bob@example.com", "--password", "nope",
                     "--server", f"{HOST}:{port}", "--listen", f"{HOST}:0")  # fmt: skip
        assert wrong.finish() == 2
        call = Proc("call", "bob@example.com", "--user", "alice@example.com",
                    "--server", f"{HOST}:{port}", "--listen", f"{HOST}:0")  # fmt: skip
        assert call.finish() == 1
    assert call.out[-1] == (
        "ended: 407 Proxy Authentication Required (407): the server wants a password"
        " (--password or $SIPLINE_PASSWORD)"
    ), call.out
    assert answer.err == [
        "sipline: registration failed: 401 Unauthorized: the server wants a password"
        " (--password or $SIPLINE_PASSWORD)"
    ]
    assert len(wrong.err) == 1 and "wrong password or user name" in wrong.err[0], wrong.err


def test_a_subscription_that_ends_says_to_whom(tmp_path: Path) -> None:
    with serving(tmp_path / "serve") as port:
        db = str(tmp_path / "serve" / "sipline.db")
        assert Proc("watchers", "allow", "bob@example.com", "alice@example.com",
                    "--db", db).finish() == 0  # fmt: skip
        watch = Proc("presence", *_account("alice", port), "--watch", "bob@example.com",
                     "--duration", "15")  # fmt: skip
        try:
            watch.wait_for("bob@example.com is")
            assert Proc("watchers", "block", "bob@example.com", "alice@example.com",
                        "--db", db).finish() == 0  # fmt: skip
            line = watch.wait_for("subscription to", timeout=10)
        finally:
            watch.stop()
    assert line == "subscription to bob@example.com ended (rejected)", watch.out
    assert not any(" is subscription" in out for out in watch.out)
