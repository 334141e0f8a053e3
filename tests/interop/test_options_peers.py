"""`sipline serve` answering OPTIONS from real peers: SIPp over UDP, TCP and TLS (with and
without packet loss), sipsak, and OpenSSL's TLS client. Loopback only, bounded in time."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from interop_helpers import HOST, SIPP_DATA, ServeProcess, free_tcp_port, need, run_sipp, wait_tcp

pytestmark = pytest.mark.interop

OPTIONS = SIPP_DATA / "options_uac.xml"
LOSSY = SIPP_DATA / "options_uac_lossy.xml"
OPTIONS_TLS = SIPP_DATA / "options_uac_tls.xml"
OPTIONS_USER = SIPP_DATA / "options_user_uac.xml"
CALLS = 200


@pytest.mark.parametrize(
    ("transport", "flags"),
    [pytest.param("UDP", [], id="udp"), pytest.param("TCP", ["-t", "t1"], id="tcp")],
)
def test_sipp_options(
    serve: ServeProcess, tmp_path: Path, transport: str, flags: list[str]
) -> None:
    result = run_sipp(
        f"{HOST}:{serve.port}", OPTIONS, tmp_path, calls=CALLS, rate=400, extra=flags, timeout_s=20
    )
    assert result.returncode == 0, result.output[-3000:]
    assert (result.successful, result.failed) == (CALLS, 0)
    status = serve.status()
    assert status["requests_in"] >= CALLS
    assert status["malformed_requests"] == 0
    # §8.2.7: OPTIONS to the server is answered statelessly; no transaction is kept.
    assert status["stateless_answers"] >= CALLS
    assert status["transactions"] == 0
    if transport == "TCP":
        # SIPp's single connection (-t t1) is the only one; it may be closing by now.
        assert status["connections"] <= 1


def test_sipp_options_tls(serve: ServeProcess, tmp_path: Path) -> None:
    """SIPp over TLS. Debian builds SIPp without OpenSSL (`-t l1` is refused), so SIPp
    speaks TCP into stunnel, which opens a verified TLS connection to the server: the
    server's TLS listener carries every request and response."""
    stunnel = need("stunnel4")
    cert = serve.workdir / "sipline-tls" / "cert.pem"
    local = free_tcp_port()
    conf = tmp_path / "stunnel.conf"
    conf.write_text(
        "foreground = yes\n"
        "pid =\n"
        "debug = 3\n"
        "[sip-tls]\n"
        "client = yes\n"
        f"accept = {HOST}:{local}\n"
        f"connect = {HOST}:{serve.tls_port}\n"
        f"CAfile = {cert}\n"
        "verifyChain = yes\n"
        f"checkIP = {HOST}\n",
        encoding="utf-8",
    )
    tunnel = subprocess.Popen(
        ["timeout", "-k", "2", "60", stunnel, str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_tcp(HOST, local, timeout=10)
        result = run_sipp(
            f"{HOST}:{local}", OPTIONS_TLS, tmp_path, calls=CALLS, rate=200, extra=["-t", "t1"]
        )
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)
    assert result.returncode == 0, result.output[-3000:]
    assert (result.successful, result.failed) == (CALLS, 0)
    status = serve.status()
    assert status["requests_in"] >= CALLS
    assert status["malformed_requests"] == 0


def test_openssl_client_options_over_tls(serve: ServeProcess) -> None:
    """A third-party TLS stack verifies our generated certificate and gets its 200."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert = serve.workdir / "sipline-tls" / "cert.pem"
    request = (
        f"OPTIONS sip:{HOST}:{serve.tls_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TLS {HOST}:5999;branch=z9hG4bK-openssl-1;rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{HOST}>;tag=ossl1\r\n"
        f"To: <sip:{HOST}:{serve.tls_port}>\r\n"
        "Call-ID: openssl-probe-1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    proc = subprocess.Popen(
        [
            "timeout",
            "-k",
            "2",
            "10",
            openssl,
            "s_client",
            "-connect",
            f"{HOST}:{serve.tls_port}",
            "-CAfile",
            str(cert),
            "-verify_return_error",
            "-verify_ip",
            HOST,
            "-quiet",
            "-ign_eof",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(request)
    proc.stdin.flush()
    try:
        status_line = proc.stdout.readline()
        head = [status_line]
        while (line := proc.stdout.readline()) not in (b"\r\n", b""):
            head.append(line)
    finally:
        proc.stdin.close()
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
    text = b"".join(head).decode()
    assert status_line == b"SIP/2.0 200 OK\r\n", text
    assert "branch=z9hG4bK-openssl-1;rport=" in text  # RFC 3581 over TLS too
    assert "\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS" in text


def test_sipp_packet_loss_recovers_then_transactions_drain(
    serve: ServeProcess, tmp_path: Path
) -> None:
    """10 % loss each way (per-message `lost` in the scenario, and SIPp's `-lost 10` for the
    rest): every call still succeeds through retransmissions, and once Timer J (64*T1 =
    32 s over UDP) has expired the server holds no transaction at all."""
    lossy = run_sipp(f"{HOST}:{serve.port}", LOSSY, tmp_path, calls=CALLS, rate=400)
    assert lossy.returncode == 0, lossy.output[-3000:]
    assert (lossy.successful, lossy.failed) == (CALLS, 0)
    assert lossy.retransmissions > 0, "expected SIPp to retransmit lost requests"
    flagged = run_sipp(
        f"{HOST}:{serve.port}", OPTIONS_USER, tmp_path, calls=CALLS, rate=400, extra=["-lost", "10"]
    )
    assert flagged.returncode == 0, flagged.output[-3000:]
    assert (flagged.successful, flagged.failed) == (CALLS, 0)
    busy = serve.status()
    assert busy["transactions"] > 0  # Completed transactions absorb retransmissions
    assert busy["requests_in"] > 2 * CALLS  # retransmitted requests arrived too
    drained = serve.wait_status("transactions", 0, timeout=40)
    assert drained["transactions"] == 0, drained


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipsak_options(serve: ServeProcess, transport: str) -> None:
    sipsak = need("sipsak")
    done = subprocess.run(
        [
            "timeout",
            "-k",
            "2",
            "10",
            sipsak,
            "-vv",
            "--transport",
            transport,
            "-s",
            f"sip:{HOST}:{serve.port}",
            "-H",
            HOST,
        ],
        check=False,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=20,
    )
    output = done.stdout.decode("utf-8", "replace")
    assert done.returncode == 0, output + done.stderr.decode("utf-8", "replace")
    assert "SIP/2.0 200 OK" in output
    assert "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS" in output
