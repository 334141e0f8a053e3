"""Seven independent SIP clients register at `sipline serve` started with default
settings: only `--domain`, one user added, listening on a free loopback port.

linphone-cli 5.1, baresip 1.0, pjsua2 2.15 (PyPI `pjsua2-python`), twinkle-console 1.10,
SIPp 3.6, sipsak 0.9.8 and pyVoIP 1.6.8. Success is read from the server's side: the
location service holds a binding for the user, with the client's User-Agent where it
sends one. baresip, SIPp and sipsak read only the first digest challenge, twinkle only
the last, and all four know only MD5: the default challenge (MD5 alone) is what lets
them all in. A client that keeps failing is named in the log with the likely cause.
"""

from __future__ import annotations

import importlib.util
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
    free_port_pair,
    need,
    run_sipp,
    start_serve,
    write_sipp_users,
)
from sip_clients import Console, linphonec, python_agent, twinkle
from ua_baresip import Baresip

from sipline.media.audio import tone
from sipline.media_io.audio_files import write_wav
from sipline.storage import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(90)]

DOMAIN = "example.com"
PASSWORD = "alice-secret"
REGISTER_S = 20.0


def serve_default(tmp_path: Path, domain: str, config: str | None = None) -> ServeProcess:
    """`sipline serve --domain DOMAIN` with nothing else but free loopback ports, and
    alice added as `sipline user add` does."""
    # Added before the server starts, as a user would before configuring the phone: a
    # server reads new accounts within a poll (0.1 s), and a phone registering before
    # then retries at once and gets its address banned for failed authentication.
    (tmp_path / "serve").mkdir(parents=True, exist_ok=True)
    store = SqliteStore(tmp_path / "serve" / "sipline.db")
    try:
        store.add_domain(domain)
        store.add_user("alice", domain, PASSWORD)
    finally:
        store.close()
    return start_serve(tmp_path / "serve", config, tls=False, domains=(domain,))


@pytest.fixture
def servers() -> Iterator[list[ServeProcess]]:
    """The servers a test started; each is checked alive, without a traceback in its
    log, and stopped cleanly."""
    started: list[ServeProcess] = []
    yield started
    for server in started:
        alive = server.alive()
        code = server.stop()
        log = "\n".join(server.lines)
        assert alive and code == 0, log[-3000:]
        assert "Traceback" not in log, log


def bindings(server: ServeProcess) -> dict[str, list[tuple[str, str | None]]]:
    """AOR -> (contact, User-Agent) of every live binding, as the server stored them."""
    store = SqliteStore(server.workdir / "sipline.db")
    try:
        found: dict[str, list[tuple[str, str | None]]] = {}
        for b in store.all_bindings():
            found.setdefault(b.aor, []).append((b.contact, b.user_agent))
        return found
    finally:
        store.close()


def wait_registered(server: ServeProcess, aor: str, client: Console | Baresip | None = None) -> str:
    """The User-Agent of `aor`'s binding once the server holds one."""
    deadline = time.monotonic() + REGISTER_S
    while aor not in (current := bindings(server)):
        if time.monotonic() > deadline:
            detail = client.output() if isinstance(client, Console) else ""
            if isinstance(client, Baresip):
                detail = client.log()
            log = "\n".join(server.lines[-20:])
            raise AssertionError(f"{aor} not registered: {current}\n{detail}\n{log}")
        time.sleep(0.2)
    [(contact, agent)] = current[aor]
    assert f"@{HOST}:" in contact, contact
    return agent or ""


def registrations_json(server: ServeProcess) -> str:
    """What `sipline registrations --json` prints for this server's database."""
    done = subprocess.run(
        [sys.executable, "-c", "from sipline.cli.main import main; main()", "registrations",
         "--json", "--db", str(server.workdir / "sipline.db")],
        capture_output=True, check=True, timeout=30, text=True,
    )  # fmt: skip
    return done.stdout


def test_linphone(tmp_path: Path, servers: list[ServeProcess]) -> None:
    servers.append(server := serve_default(tmp_path, DOMAIN))
    phone = linphonec("alice", tmp_path, domain=DOMAIN, password=PASSWORD, server_port=server.port)
    try:
        assert wait_registered(server, f"alice@{DOMAIN}", phone).startswith("Linphonec/5.")
    finally:
        phone.stop()


def test_baresip(tmp_path: Path, servers: list[ServeProcess]) -> None:
    need("baresip")
    servers.append(server := serve_default(tmp_path, DOMAIN))
    microphone = tmp_path / "tone.wav"
    write_wav(microphone, tone(440.0, duration_s=1.0, amplitude=0.25))
    # The account line the README gives.
    phone = Baresip(
        "alice",
        tmp_path,
        account=f'<sip:alice@{DOMAIN}>;auth_pass={PASSWORD};outbound="sip:{HOST}:{server.port}"',
        microphone=microphone,
        rtp_base=free_port_pair() & ~1,
    )
    try:
        assert wait_registered(server, f"alice@{DOMAIN}", phone).startswith("baresip")
    finally:
        phone.stop()


def test_pjsua2(tmp_path: Path, servers: list[ServeProcess]) -> None:
    if importlib.util.find_spec("pjsua2") is None:
        pytest.skip("pjsua2 is not installed (pip install pjsua2-python)")
    servers.append(server := serve_default(tmp_path, DOMAIN))
    agent = python_agent(
        "agent_pjsua2.py", tmp_path, str(server.port), str(free_port_pair()),
        "alice", DOMAIN, PASSWORD, name="pjsua2",
    )  # fmt: skip
    try:
        agent.wait_output("registered 200", timeout=REGISTER_S)
        assert wait_registered(server, f"alice@{DOMAIN}", agent) == "pjsua2 agent"
    finally:
        agent.stop("")


def test_twinkle(tmp_path: Path, servers: list[ServeProcess]) -> None:
    servers.append(server := serve_default(tmp_path, DOMAIN))
    phone = twinkle("alice", tmp_path, domain=DOMAIN, password=PASSWORD, server_port=server.port)
    try:
        phone.wait_output("registration succeeded", timeout=REGISTER_S)
        assert wait_registered(server, f"alice@{DOMAIN}", phone).startswith("Twinkle/1.")
    finally:
        phone.stop()


def test_sipp(tmp_path: Path, servers: list[ServeProcess]) -> None:
    servers.append(server := serve_default(tmp_path, DOMAIN))
    users = write_sipp_users(tmp_path / "users.csv", [("alice", PASSWORD)], DOMAIN)
    result = run_sipp(
        f"{HOST}:{server.port}", SIPP_DATA / "register_auth.xml", tmp_path, calls=1,
        timeout_s=20, extra=["-inf", str(users), "-key", "expires", "600"],
    )  # fmt: skip
    assert (result.successful, result.failed) == (1, 0), result.output[-3000:]
    assert wait_registered(server, f"alice@{DOMAIN}") == "SIPp register_auth"


def test_sipsak(tmp_path: Path, servers: list[ServeProcess]) -> None:
    """sipsak resolves the domain of its SIP URI itself, even with an outbound proxy,
    and example.com has no address here: its user is in the domain localhost."""
    sipsak = need("sipsak")
    servers.append(server := serve_default(tmp_path, "localhost"))
    done = subprocess.run(
        ["timeout", "-k", "5", "20", sipsak, "-U", "-u", "alice", "-a", PASSWORD,
         "-s", "sip:alice@localhost", "-p", f"{HOST}:{server.port}", "-H", HOST, "-i",
         "-x", "600", "-vv"],
        capture_output=True, timeout=30, check=False, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert wait_registered(server, "alice@localhost").startswith("sipsak 0.9")
    assert '"aor": "alice@localhost"' in registrations_json(server)


@pytest.mark.parametrize("config", [None, '[auth]\nalgorithms = ["SHA-256", "MD5"]\n'])
def test_pyvoip(tmp_path: Path, servers: list[ServeProcess], config: str | None) -> None:
    """pyVoIP takes the server's address as its domain: the server serves 127.0.0.1. It
    reads the first challenge and answers it with MD5 whatever it names: accepted as
    long as MD5 is one of the algorithms offered."""
    if importlib.util.find_spec("pyVoIP") is None:
        pytest.skip("pyVoIP is not installed (the bench extras install it)")
    servers.append(server := serve_default(tmp_path, HOST, config))
    agent = python_agent(
        "agent_pyvoip.py", tmp_path, str(server.port), str(free_port_pair()), "alice",
        PASSWORD, name="pyvoip",
    )  # fmt: skip
    try:
        agent.wait_output("registered", timeout=REGISTER_S)
        assert wait_registered(server, f"alice@{HOST}", agent).startswith("pyVoIP 1.6")
    finally:
        agent.stop("")


def test_a_client_answering_sha256_with_md5_is_named_in_the_log(
    tmp_path: Path, servers: list[ServeProcess]
) -> None:
    """With SHA-256 required, pyVoIP (MD5 only) answers the challenge with MD5, three
    times before it gives up: the log says who, from where, and the likely cause."""
    if importlib.util.find_spec("pyVoIP") is None:
        pytest.skip("pyVoIP is not installed (the bench extras install it)")
    server = serve_default(tmp_path, HOST, '[auth]\nalgorithms = ["SHA-256"]\n')
    servers.append(server)
    port = free_port_pair()
    agent = python_agent(
        "agent_pyvoip.py", tmp_path, str(server.port), str(port), "alice", PASSWORD,
        name="pyvoip",
    )  # fmt: skip
    try:
        agent.wait_output("failed PhoneStatus.FAILED", timeout=REGISTER_S)
    finally:
        agent.stop("")
    line = server.wait_line("failed 3 times", timeout=5)
    assert line.endswith(
        f"alice@{HOST} from {HOST}:{port} (User-Agent pyVoIP 1.6.8) answered the SHA-256"
        " challenge with MD5; failed 3 times: the client may support only MD5,"
        " see [auth] algorithms"
    ), line
    assert bindings(server) == {}


def test_a_client_that_never_answers_is_named_in_the_log(
    tmp_path: Path, servers: list[ServeProcess]
) -> None:
    """sipsak (MD5 only) gives up on a SHA-256 challenge without answering; each run
    comes from a new port. The fourth challenge in a row left unanswered from that
    host names it."""
    sipsak = need("sipsak")
    server = serve_default(tmp_path, "localhost", '[auth]\nalgorithms = ["SHA-256"]\n')
    servers.append(server)
    for _ in range(4):
        done = subprocess.run(
            ["timeout", "-k", "5", "20", sipsak, "-U", "-u", "alice", "-a", PASSWORD,
             "-s", "sip:alice@localhost", "-p", f"{HOST}:{server.port}", "-H", HOST, "-i",
             "-x", "600", "-vv"],
            capture_output=True, timeout=30, check=False, text=True,
        )  # fmt: skip
        assert "unsupported authentication algorithm" in done.stdout + done.stderr
    line = server.wait_line("failed 3 times", timeout=5)
    assert f"alice@localhost from {HOST}:" in line
    assert line.endswith(
        "(User-Agent sipsak 0.9.8.1) did not answer the challenge (SHA-256); failed 3 times:"
        " the client may not support SHA-256, see [auth] algorithms"
    ), line
