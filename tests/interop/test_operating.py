"""What an operator sees, against a real `sipline serve` with two workers: SIPp calls
through it (caller alice, callee bob registered from a SIPp UAS), a call to nobody, a
registration with a wrong password (a sipline UA); then the call detail records
from the CLI (database and API), the log lines, the Prometheus metrics parsed with
prometheus-client's parser, the pcap export read by tshark and the HEP copies decoded
by tshark."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
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
    sipline_cli,
    start_serve,
    start_sipp_uas,
    write_sipp_users,
)
from prometheus_client.parser import text_string_to_metric_families

from sipline.server.records.pcap import Packet, pcap_bytes
from sipline.storage import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.slow]

DOMAIN = "example.com"
PASSWORD = "operator-pw-1"
UAC = SIPP_DATA / "uac_call_rr.xml"
UAS_RR = SIPP_DATA / "uas_rr.xml"
REGISTER = SIPP_DATA / "register_auth.xml"
CALLS = 3


sipline = sipline_cli


def get(url: str, password: str = PASSWORD) -> bytes:
    basic = base64.b64encode(f"admin:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = get(url + "metrics").decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


HEP_LUA = Path(__file__).parents[2] / "contrib" / "wireshark" / "hep.lua"


def hep_dissector(tshark: str) -> list[str]:
    """Wireshark's own HEP dissector when it has one, else ours (contrib/wireshark)."""
    protocols = subprocess.run(
        [tshark, "-G", "protocols"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    if any(line.split("\t")[-1] == "hep" for line in protocols.splitlines()):
        return []
    return ["-X", f"lua_script:{HEP_LUA}"]


def in_order(seen: list[str], wanted: list[str]) -> bool:
    """`wanted` is a subsequence of `seen`."""
    it = iter(seen)
    return all(any(x == w for x in it) for w in wanted)


@pytest.fixture
def hep_collector() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.settimeout(0.5)
    yield sock
    sock.close()


@pytest.fixture
def server(tmp_path: Path, hep_collector: socket.socket) -> Iterator[tuple[ServeProcess, str]]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    store.add_domain(DOMAIN)
    store.add_user("alice", DOMAIN, "alice-pw")
    store.add_user("bob", DOMAIN, "bob-pw")
    store.close()
    http = free_tcp_port()
    config = (
        f'[server]\ndomains = ["{DOMAIN}"]\n[auth]\nalgorithms = ["MD5"]\n'
        f'[http]\nlisten = "{HOST}:{http}"\nadmin_password = "{PASSWORD}"\n'
        f'[hep]\naddress = "{HOST}:{hep_collector.getsockname()[1]}"\ncapture_id = 77\n'
    )
    proc = start_serve(workdir, config, tls=False, workers=2)
    url = f"http://{HOST}:{http}/"
    try:
        proc.wait_line(f"dashboard, API and metrics at {url}")
        yield proc, url
    finally:
        code = proc.stop()
    assert code == 0, "\n".join(proc.lines[-20:])


def test_calls_records_logs_metrics_pcap_and_hep(
    server: tuple[ServeProcess, str], tmp_path: Path, hep_collector: socket.socket
) -> None:
    proc, url = server
    db = proc.workdir / "sipline.db"
    target = f"{HOST}:{proc.port}"
    # bob registers from the port its SIPp UAS then answers on
    uas_port = free_port_pair()
    bob = write_sipp_users(tmp_path / "bob.csv", [("bob", "bob-pw")], DOMAIN)
    reg = run_sipp(target, REGISTER, tmp_path, calls=1, rate=1, timeout_s=15, local_port=uas_port,
                   extra=["-inf", str(bob), "-key", "expires", "600"])  # fmt: skip
    assert (reg.successful, reg.failed) == (1, 0), reg.output[-2000:]
    uas = start_sipp_uas(UAS_RR, tmp_path, port=uas_port, calls=CALLS, extra=["-d", "300"])
    time.sleep(0.3)
    alice = write_sipp_users(tmp_path / "alice.csv", [("alice", "alice-pw")], DOMAIN)
    began = time.time()
    result = run_sipp(target, UAC, tmp_path, calls=CALLS, rate=10, timeout_s=30,
                      extra=["-inf", str(alice), "-s", "bob"])  # fmt: skip
    assert (result.successful, result.failed) == (CALLS, 0), result.output[-3000:]
    callee = uas.finish()
    assert (callee.successful, callee.failed) == (CALLS, 0), callee.output[-3000:]
    # a call to nobody: refused by the server (SIPp counts it failed)
    missed = run_sipp(target, UAC, tmp_path, calls=1, rate=1, timeout_s=15,
                      extra=["-inf", str(alice), "-s", "nobody"])  # fmt: skip
    assert missed.failed == 1
    # a sipline UA with a wrong password
    wrong = sipline(
        "answer", "--user", f"bob@{DOMAIN}", "--password", "not-bobs", "--server", target,
        "--listen", f"{HOST}:0", "--calls", "1", "--duration", "1",
    )  # fmt: skip
    assert wrong.returncode != 0
    time.sleep(1.0)  # records are written in batches every 0.2 s

    # -- call detail records: CLI on the database, CLI through the API, the API itself
    out = sipline("calls", "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    answered = [r for r in records if r["status"] == 200]
    assert len(answered) == CALLS, records
    for r in answered:
        assert r["caller"] == f"alice@{DOMAIN}"
        assert r["callee"] == f"sip:bob@{DOMAIN}"
        assert r["answered_by"].startswith("sip:") and str(uas_port) in r["answered_by"]
        assert r["source"].startswith(f"udp:{HOST}:")
        assert began <= r["started_at"] <= r["ringing_at"] <= r["answered_at"] <= r["ended_at"]
        assert r["duration_s"] == pytest.approx(r["ended_at"] - r["answered_at"], abs=1e-6)
        assert 0 < r["duration_s"] < 5
        assert r["hangup_by"] == "caller"  # the SIPp UAC sends the BYE
    refused = [r for r in records if r["callee"] == f"sip:nobody@{DOMAIN}"]
    assert len(refused) == 1 and refused[0]["status"] >= 400, refused
    assert refused[0]["hangup_by"] == "server" and refused[0]["duration_s"] is None
    env = {"SIPLINE_ADMIN_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"}
    via_api = sipline("calls", "--api", url, "--json", env=env)
    assert via_api.returncode == 0, via_api.stderr
    assert json.loads(via_api.stdout) == records
    as_csv = sipline("calls", "--db", str(db), "--csv", "--user", f"alice@{DOMAIN}")
    assert as_csv.stdout.splitlines()[0].startswith("call_id,caller,callee,source")
    assert len(as_csv.stdout.splitlines()) == 1 + CALLS + 1
    no_cred = sipline("calls", "--api", url, env={"PATH": "/usr/bin:/bin"})
    assert no_cred.returncode == 1 and "401" in no_cred.stderr and "Traceback" not in no_cred.stderr
    events = json.loads(get(url + "api/events"))
    kinds = [e["kind"] for e in events]
    assert "registered" in kinds and "auth_failed" in kinds
    failed = next(e for e in events if e["kind"] == "auth_failed")
    assert failed["user"] == f"bob@{DOMAIN}" and failed["source"].startswith(f"udp:{HOST}:")

    # -- log lines an operator reads
    log = "\n".join(proc.lines)
    assert f"registered user=bob@{DOMAIN}" in log
    for r in answered:
        assert f"call started call_id={r['call_id']} from=alice@{DOMAIN} to=sip:bob@{DOMAIN}" in log
        assert f"call answered call_id={r['call_id']}" in log
        assert f"call ended call_id={r['call_id']}" in log
    assert f"auth-failed src={HOST}:" in log and f'user="bob@{DOMAIN}"' in log  # security log
    assert "Traceback" not in log

    # -- metrics, summed over both workers
    found = metrics(url)
    assert value(found, "sipline_calls_started_total") == CALLS + 1
    assert value(found, "sipline_calls_total", outcome="answered") == CALLS
    assert value(found, "sipline_calls_total", outcome="challenged") == CALLS + 1
    assert value(found, "sipline_calls_total", outcome="failed") == 1
    assert value(found, "sipline_registrations_total", outcome="ok") == 1
    assert value(found, "sipline_auth_failures_total", method="REGISTER") >= 1
    # every datagram counts, retransmissions too
    assert value(found, "sipline_requests_total", direction="in", method="BYE") >= CALLS
    assert value(found, "sipline_responses_total", direction="out", code="180") >= CALLS
    assert value(found, "sipline_active_calls") == 0
    assert value(found, "sipline_registered_contacts") == 1
    rss = [v for (name, _), v in found.items() if name == "sipline_process_resident_memory_bytes"]
    assert len(rss) == 2 and all(v > 10_000_000 for v in rss)  # one per worker
    assert value(found, "sipline_store_latency_seconds_count") > 0
    assert ("sipline_event_loop_lag_seconds", ()) in found
    # `sipline status` sums the workers' counters as /metrics does
    status = json.loads(sipline("status", "--api", url, "--json", env=env).stdout)
    assert status["workers"] == 2 and status["counted_by"].startswith("all workers")
    requests_in = sum(
        v for (name, labels), v in found.items()
        if name == "sipline_requests_total" and ("direction", "in") in labels
    )  # fmt: skip
    assert status["requests_in"] == requests_in >= 5 * CALLS  # INVITE, ACK, INVITE, ACK, BYE
    assert status["active_calls"] == 0 and status["registered"] == 1

    # -- pcap export of one call, read by tshark
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (scripts/install-peers.sh)")
    call_id = answered[0]["call_id"]
    pcap = tmp_path / "call.pcap"
    out = sipline("trace", call_id, "--pcap", str(pcap), "--db", str(db))
    assert out.returncode == 0, out.stderr
    fields = subprocess.run(
        [tshark, "-r", str(pcap), "-Y", "sip", "-T", "fields", "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.Call-ID"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split("\n")  # fmt: skip
    seen = [line.split("\t")[:2] for line in fields if line.strip()]
    flat = [m or s for m, s in seen]
    assert all(call_id in line for line in fields if line.strip())
    assert in_order(flat, ["INVITE", "180", "200", "ACK", "BYE"]), flat
    api_pcap = tmp_path / "api.pcap"
    out = sipline("trace", call_id, "--pcap", str(api_pcap), "--api", url, env=env)
    assert out.returncode == 0 and api_pcap.read_bytes() == pcap.read_bytes()

    # -- HEP v3 copies of every message, decoded by tshark
    packets = []
    while True:
        try:
            data, peer = hep_collector.recvfrom(70000)
        except TimeoutError:
            break
        packets.append(Packet(time.time(), peer, hep_collector.getsockname(), data))
    assert len(packets) > 10 * CALLS
    port = hep_collector.getsockname()[1]
    hep_pcap = tmp_path / "hep.pcap"
    hep_pcap.write_bytes(pcap_bytes(packets))
    decoded = subprocess.run(
        [tshark, *hep_dissector(tshark), "-r", str(hep_pcap), "-d", f"udp.port=={port},hep", "-Y", f"hep && sip.Call-ID == \"{call_id}\"",
         "-T", "fields", "-e", "hep.capture_id", "-e", "sip.Method", "-e", "sip.Status-Code"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert decoded, "tshark decoded no HEP packet of the call"
    assert all(line.split("\t")[0] == "77" for line in decoded)
    methods = {part for line in decoded for part in line.split("\t")[1:] if part}
    assert {"INVITE", "ACK", "BYE", "180", "200"} <= methods
