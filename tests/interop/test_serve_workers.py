"""`sipline serve --workers 2`: two processes behind the same ports (SO_REUSEPORT).

Transactions stay whole under load (SIPp calls with Record-Route, each call from its
own port so the kernel spreads them over both workers), CANCEL reaches the worker
holding the INVITE, a REGISTER challenged by one worker is answered at the other
(and a replay of its credentials is refused there too), a killed worker is
restarted, and a port held by another SO_REUSEPORT socket is a clear error."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
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
from test_server_sipp import CONFIG, DOMAIN, UAC, UAS_CANCEL, UAS_RR, provision, register_uas

from sipline.core.auth import answer_challenge, parse_challenge
from sipline.core.auth_header import Challenge
from sipline.core.message import Response, parse_message
from sipline.testing import SeededEntropy

pytestmark = pytest.mark.interop

UAC_CANCEL = SIPP_DATA / "uac_cancel.xml"
_WORKER = re.compile(r"worker (\d+) \(pid (\d+)\): (.*)$")
_STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    provision(workdir / "sipline.db", [("alice", "alice-pw"), ("bob", "bob-pw")])
    proc = start_serve(workdir, CONFIG, tls=False, workers=2)
    with checked(proc):
        yield proc


def per_worker(server: ServeProcess) -> dict[int, dict[str, int]]:
    """SIGUSR1: each worker's counters (logged before the summed `status:` line)."""
    start = len(server.lines)
    total = server.status()
    found: dict[int, dict[str, int]] = {}
    for line in server.lines[start:]:
        match = _WORKER.search(line)
        if match is not None:
            items = (item.split("=", 1) for item in match.group(3).split())
            found[int(match.group(1))] = {k: int(v) for k, v in items}
    assert total["workers"] == len(found) == 2, server.lines[start:]
    return found


def worker_pids(server: ServeProcess) -> dict[int, int]:
    pids: dict[int, int] = {}
    for line in server.lines:
        match = _STARTED.search(line)
        if match is not None:
            pids[int(match.group(1))] = int(match.group(2))  # the latest start wins
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_listeners_named_once_and_every_worker_stops(tmp_path: Path) -> None:
    server = start_serve(tmp_path, workers=2)
    listening = [line for line in server.lines if "listening on" in line]
    assert len(listening) == 3, server.lines  # by the supervisor, once per listener
    pids = worker_pids(server)
    assert sorted(pids) == [0, 1] and server.pid not in pids.values()
    assert server.status()["workers"] == 2
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0
    server.stop()
    for pid in pids.values():
        assert not alive(pid), pid


def test_a_status_signal_during_start_up_does_not_kill_it(tmp_path: Path) -> None:
    """SIGUSR1's default action ends a process: a monitor asking for the status line
    before the server is up must not stop it."""
    port = free_port_pair()
    proc = subprocess.Popen(
        [
            sys.executable, "-c", "from sipline.cli.main import main; main()", "serve",
            "--listen", f"udp:{HOST}:{port}", "--db", str(tmp_path / "sipline.db"),
            "--workers", "2",
        ],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        signalled = 0
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if signalled < 3 and ("database" in line or "started" in line):
                proc.send_signal(signal.SIGUSR1)  # supervisor up, workers starting
                signalled += 1
            if "sipline: serving" in line or not line:
                break
        assert any("sipline: serving" in line for line in lines), lines
        assert signalled >= 1 and proc.poll() is None
    finally:
        proc.terminate()
        code = proc.wait(timeout=15)
        if proc.stderr is not None:
            proc.stderr.close()
    assert code == 0, lines


def test_port_held_by_another_reuseport_socket_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port_pair()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        # The same user could share the port with SO_REUSEPORT: we must not.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        squatter.bind((HOST, port))
        done = subprocess.run(
            [
                sys.executable, "-c", "from sipline.cli.main import main; main()", "serve",
                "--listen", f"udp:{HOST}:{port}", "--db", str(tmp_path / "sipline.db"),
                "--workers", "2",
            ],
            capture_output=True, timeout=30, check=False, cwd=tmp_path,
        )  # fmt: skip
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert f"cannot listen on udp:{HOST}:{port}: address already in use" in err
    assert "Traceback" not in err and "started" not in err


def test_calls_under_load_stay_whole_across_two_workers(
    server: ServeProcess, tmp_path: Path
) -> None:
    calls = 300
    port = free_port_pair()
    register_uas(server, tmp_path, port)
    before = server.status()["requests_in"]
    uas = start_sipp_uas(UAS_RR, tmp_path, port=port, calls=calls, extra=["-d", "0"], timeout_s=60)
    time.sleep(0.3)
    csv = write_sipp_users(tmp_path / "alice.csv", [("alice", "alice-pw")], DOMAIN)
    # -t un: a socket per call, so calls come from many ports and the kernel hashes
    # them over both workers; each call's messages still come from one port.
    result = run_sipp(
        f"{HOST}:{server.port}", UAC, tmp_path, calls=calls, rate=100, timeout_s=60,
        extra=["-inf", str(csv), "-s", "bob", "-t", "un", "-max_socket", "400"],
    )  # fmt: skip
    assert (result.successful, result.failed) == (calls, 0), result.output[-3000:]
    callee = uas.finish(timeout_s=60)
    assert (callee.successful, callee.failed) == (calls, 0), callee.output[-3000:]
    counters = per_worker(server)
    # INVITE, ACK for the 407, INVITE with credentials, ACK for the 200, BYE per call.
    assert sum(c["requests_in"] for c in counters.values()) - before == 5 * calls
    assert all(c["requests_in"] > calls // 10 for c in counters.values()), counters
    assert sum(c["malformed_responses"] + c["malformed_requests"] for c in counters.values()) == 0


def test_cancel_reaches_the_worker_holding_the_invite(server: ServeProcess, tmp_path: Path) -> None:
    calls = 20
    port = free_port_pair()
    register_uas(server, tmp_path, port)
    uas = start_sipp_uas(UAS_CANCEL, tmp_path, port=port, calls=calls)
    time.sleep(0.3)
    result = run_sipp(
        f"{HOST}:{server.port}", UAC_CANCEL, tmp_path, calls=calls, rate=20, timeout_s=30,
        extra=["-s", "bob", "-key", "domain", DOMAIN, "-t", "un", "-max_socket", "100"],
    )  # fmt: skip
    assert (result.successful, result.failed) == (calls, 0), result.output[-3000:]
    callee = uas.finish()
    assert (callee.successful, callee.failed) == (calls, 0), callee.output[-3000:]
    assert all(c["requests_in"] > 0 for c in per_worker(server).values())


# -- REGISTER across workers ------------------------------------------------------------------
def _register(sock: socket.socket, server: ServeProcess, cseq: int, auth: str = "") -> Response:
    local = sock.getsockname()[1]
    lines = [
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK-w{cseq}-{local};rport",
        f"From: <sip:alice@{DOMAIN}>;tag=reg{local}",
        f"To: <sip:alice@{DOMAIN}>",
        "Call-ID: workers-register@test",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:alice@{HOST}:{local}>",
        "Max-Forwards: 70",
        "Expires: 600",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    sock.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), (HOST, server.port))
    while True:
        data = sock.recv(65535)
        msg = parse_message(data)
        if isinstance(msg, Response) and msg.status >= 200:
            return msg


def _options(sock: socket.socket, server: ServeProcess, n: int) -> None:
    local = sock.getsockname()[1]
    text = (
        f"OPTIONS sip:{HOST}:{server.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK-o{n}-{local};rport\r\n"
        f"From: <sip:probe@elsewhere.test>;tag=o{n}\r\nTo: <sip:{HOST}:{server.port}>\r\n"
        f"Call-ID: probe-{n}-{local}@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n"
    )
    sock.sendto(text.encode(), (HOST, server.port))
    msg = parse_message(sock.recv(65535))
    assert isinstance(msg, Response) and msg.status == 200


def sockets_by_worker(server: ServeProcess, count: int = 12) -> dict[int, socket.socket]:
    """One UDP socket whose datagrams the kernel gives to each worker: found by
    sending an OPTIONS from each and seeing which worker's counter moved."""
    found: dict[int, socket.socket] = {}
    spare: list[socket.socket] = []
    last = {i: c["stateless_answers"] for i, c in per_worker(server).items()}
    for n in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        sock.settimeout(5.0)
        _options(sock, server, n)
        now = {i: c["stateless_answers"] for i, c in per_worker(server).items()}
        (moved,) = [i for i in now if now[i] != last[i]]
        last = now
        if moved in found:
            spare.append(sock)
        else:
            found[moved] = sock
        if len(found) == 2:
            break
    for sock in spare:
        sock.close()
    assert len(found) == 2, "every socket hashed to one worker"
    return found


def test_a_nonce_is_stale_at_the_other_worker_and_counted_where_issued(
    server: ServeProcess,
) -> None:
    """A nonce names the worker that issued it, which alone keeps its nonce counts
    (RFC 7616 §3.3): a right answer at another worker is re-challenged with stale=true
    and that worker's own nonce, and a replay at the issuer is refused."""
    by_worker = sockets_by_worker(server)
    first, other = by_worker[0], by_worker[1]

    def answer(response: Response) -> tuple[Challenge, str]:
        parsed = parse_challenge(response.headers.get("www-authenticate") or "")
        assert isinstance(parsed, Challenge)
        return parsed, answer_challenge(
            parsed,
            method="REGISTER",
            uri=f"sip:{DOMAIN}",
            username="alice",
            password="alice-pw",
            entropy=SeededEntropy(7),
        ).serialize()

    try:
        challenge = _register(first, server, 1)
        assert challenge.status == 401
        _, credentials = answer(challenge)
        elsewhere = _register(other, server, 2, credentials)  # worker 0's nonce
        assert elsewhere.status == 401
        fresh, again = answer(elsewhere)
        assert fresh.stale
        assert _register(other, server, 3, again).status == 200
        assert _register(first, server, 4, credentials).status == 200
        # The same credentials again (same nonce count) at their issuer: a replay.
        assert _register(first, server, 5, credentials).status == 401
    finally:
        first.close()
        other.close()


def test_a_killed_worker_is_restarted(server: ServeProcess) -> None:
    pids = worker_pids(server)
    start = len(server.lines)
    os.kill(pids[1], signal.SIGKILL)
    server.wait_line("worker 1 ready again", start=start, timeout=20)
    again = worker_pids(server)
    assert again[0] == pids[0] and again[1] != pids[1]
    assert not alive(pids[1])
    # Both workers answer again, on the same sockets.
    by_worker = sockets_by_worker(server)
    for sock in by_worker.values():
        sock.close()
