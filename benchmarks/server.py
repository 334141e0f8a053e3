"""Server benchmark: `sipline serve` against Kamailio, SIPp as the load, on loopback.

Run with ``python -m benchmarks.server`` (``--quick`` for a short run, ``--help``).

Two workloads, each measured on both servers in the same run:

* registrations/s with digest authentication: 10,000 provisioned users; each SIPp
  call is REGISTER / 401 / REGISTER with MD5 credentials / 200
  (tests/data/sipp/register_auth.xml), users taken in turn from an injection file;
* calls/s through the transaction-stateful proxy: INVITE / 100 / 180 / 200 / ACK /
  BYE / 200 with Record-Route (benchmarks/sipp/uac_rr.xml and uas_rr.xml), the callee
  found by a location lookup after it registered with digest authentication.

The figure is the highest rate at which a run of `--duration` seconds (20 by default)
ends with every call successful and none failed. Rates are stepped up geometrically
from `--start` until a run fails, then refined between the last good and the first bad
rate. SIPp offers MD5 only (it answers the first challenge alone), so both servers
challenge with MD5 alone. Kamailio runs as /work/shared/peers/README.md describes:
`-x tlsf`, 2 workers, auth_db over db_text, usrloc in memory, record_route
(benchmarks/kamailio-server.cfg). Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["main"]

HOST = "127.0.0.1"
DOMAIN = "example.com"
USERS = 10_000
ROOT = Path(__file__).resolve().parent
REGISTER = ROOT.parent / "tests" / "data" / "sipp" / "register_auth.xml"
UAC = ROOT / "sipp" / "uac_rr.xml"
UAS = ROOT / "sipp" / "uas_rr.xml"
KAMAILIO_CFG = ROOT / "kamailio-server.cfg"
_COUNTER = re.compile(r"^\s+(Successful call|Failed call)\s+\|\s+\d+\s+\|\s+(\d+)", re.MULTILINE)


def free_port() -> int:
    """A port free for UDP and TCP on loopback right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((HOST, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((HOST, port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port on loopback")


def users() -> list[tuple[str, str]]:
    return [(f"u{i:05d}", f"pw{i:05d}") for i in range(USERS)] + [("bob", "bob-pw")]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["SEQUENTIAL"] + [
        f"{u};[authentication username={u} password={p}];{DOMAIN}" for u, p in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def wait_udp_ready(port: int, timeout_s: float = 15.0) -> None:
    """Until the server answers an OPTIONS (any response will do)."""
    probe = (
        f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:9;branch=z9hG4bKready;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:probe@{HOST}>;tag=r\r\nTo: <sip:{HOST}>\r\n"
        "Call-ID: ready\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(0.3)
        while time.monotonic() < deadline:
            sock.sendto(probe, (HOST, port))
            try:
                sock.recvfrom(65535)
                return
            except TimeoutError:
                continue
    raise RuntimeError(f"no answer on udp:{HOST}:{port}")


# -- the servers ----------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    stop: Callable[[], None]


@contextmanager
def sipline_server(workdir: Path) -> Iterator[Server]:
    from sipline.storage import SqliteStore

    db = workdir / "sipline.db"
    store = SqliteStore(db)
    with store.transaction():
        store.add_domain(DOMAIN)
        for user, password in users():
            store.add_user(user, DOMAIN, password)
    store.close()
    config = workdir / "sipline.toml"
    config.write_text(
        f'[server]\ndomains = ["{DOMAIN}"]\nrecord_route = true\nlog_level = "warning"\n'
        '[auth]\nalgorithms = ["MD5"]\n',
        encoding="utf-8",
    )
    port = free_port()
    log = (workdir / "sipline.log").open("wb")
    proc = subprocess.Popen(
        ["timeout", "-k", "5", "7200", sys.executable, "-c",
         "from sipline.cli.main import main; main()", "serve", "--config", str(config),
         "--listen", f"udp:{HOST}:{port}", "--db", str(db)],
        cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # `timeout` passes it on to sipline
            proc.wait(timeout=15)
        log.close()

    try:
        wait_udp_ready(port)
        yield Server("sipline", port, proc, stop)
    finally:
        stop()


@contextmanager
def kamailio_server(workdir: Path) -> Iterator[Server]:
    kamailio = shutil.which("kamailio")
    if kamailio is None:
        raise RuntimeError("kamailio is not installed (scripts/install-peers.sh)")
    dbdir = workdir / "kamailio-db"
    dbdir.mkdir()
    (dbdir / "version").write_text(
        "id(int,auto) table_name(string) table_version(int)\n0:subscriber:7\n", encoding="ascii"
    )
    rows = [
        "id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null)"
    ]
    rows += [f"{i}:{u}:{DOMAIN}:{p}::" for i, (u, p) in enumerate(users(), 1)]
    (dbdir / "subscriber").write_text("\n".join(rows) + "\n", encoding="ascii")
    port = free_port()
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(
        KAMAILIO_CFG.read_text(encoding="utf-8")
        .replace("@PORT@", str(port))
        .replace("@DOMAIN@", DOMAIN)
        .replace("@DBDIR@", str(dbdir)),
        encoding="utf-8",
    )
    pidfile = workdir / "kamailio.pid"
    log = (workdir / "kamailio.log").open("wb")
    proc = subprocess.Popen(
        ["timeout", "--foreground", "-k", "5", "7200", kamailio, "-f", str(cfg), "-DD", "-E",
         "-Y", str(workdir), "-P", str(pidfile), "-m", "2048", "-M", "16", "-x", "tlsf"],
        cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def stop() -> None:
        # Through the pidfile: signalling the process group can hang its workers.
        if pidfile.exists() and proc.poll() is None:
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()

    try:
        wait_udp_ready(port)
        yield Server("kamailio", port, proc, stop)
    finally:
        stop()


# -- SIPp -----------------------------------------------------------------------------------
def sipp_args(scenario: Path, *extra: str) -> list[str]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is not installed (scripts/install-peers.sh)")
    return [sipp, "-sf", str(scenario), "-i", HOST, "-buff_size", "4194304", "-nostdin",
            *extra]  # fmt: skip


def run_uac(target: int, scenario: Path, *, calls: int, rate: float, extra: list[str],
            duration_s: float, workdir: Path) -> tuple[int, int]:  # fmt: skip
    """(successful, failed) of one bounded SIPp UAC run."""
    limit = int(duration_s) + 30
    args = ["timeout", "-k", "5", str(limit + 10),
            *sipp_args(scenario, f"{HOST}:{target}", "-m", str(calls), "-r", f"{rate:g}",
                       "-timeout", f"{limit}s", "-recv_timeout", "5000", *extra)]  # fmt: skip
    done = subprocess.run(
        args, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, check=False,
        timeout=limit + 30,
    )  # fmt: skip
    counters = dict(_COUNTER.findall(done.stdout.decode("utf-8", "replace")))
    return int(counters.get("Successful call", 0)), int(counters.get("Failed call", -1))


def find_max_rate(step: Callable[[float], bool], start: float, factor: float, refine: int) -> float:
    """The highest rate at which `step` succeeded: geometric steps, then bisection."""
    good, bad = 0.0, None
    rate = start
    while bad is None:
        if step(rate):
            good, rate = rate, rate * factor
        else:
            bad = rate
    for _ in range(refine):
        middle = round((good + bad) / 2)
        if middle <= good or middle >= bad:
            break
        if step(middle):
            good = middle
        else:
            bad = middle
    return good


def measure(server: Server, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    csv = write_csv(workdir / f"{server.name}-users.csv", users()[:USERS])
    reg_port = free_port()
    duration = args.duration

    def reg_step(rate: float) -> bool:
        calls = int(rate * duration)
        ok, failed = run_uac(
            server.port, REGISTER, calls=calls, rate=rate, duration_s=duration, workdir=workdir,
            extra=["-inf", str(csv), "-key", "expires", "3600", "-p", str(reg_port)],
        )  # fmt: skip
        passed = ok == calls and failed == 0
        print(f"  {server.name:9s} register {rate:7.0f}/s: {ok}/{calls} ok, {failed} failed"
              f" -> {'pass' if passed else 'FAIL'}", flush=True)  # fmt: skip
        time.sleep(2)
        return passed

    results = {
        "registrations_per_s": find_max_rate(reg_step, args.start_reg, args.factor, args.refine)
    }

    # The callee registers from the port its UAS listens on, then answers every call.
    uas_port = free_port()
    bob = write_csv(workdir / f"{server.name}-bob.csv", [("bob", "bob-pw")])
    ok, failed = run_uac(
        server.port, REGISTER, calls=1, rate=1, duration_s=5, workdir=workdir,
        extra=["-inf", str(bob), "-key", "expires", "7200", "-p", str(uas_port)],
    )  # fmt: skip
    if (ok, failed) != (1, 0):
        raise RuntimeError(f"{server.name}: the callee could not register")
    uas_log = (workdir / f"{server.name}-uas.log").open("wb")
    uas = subprocess.Popen(
        ["timeout", "-k", "5", "7200",
         *sipp_args(UAS, "-p", str(uas_port), "-m", "100000000", "-d", "0")],
        cwd=workdir, stdin=subprocess.DEVNULL, stdout=uas_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    uac_port = free_port()

    def call_step(rate: float) -> bool:
        calls = int(rate * duration)
        ok, failed = run_uac(
            server.port, UAC, calls=calls, rate=rate, duration_s=duration, workdir=workdir,
            extra=["-s", "bob", "-key", "domain", DOMAIN, "-p", str(uac_port)],
        )  # fmt: skip
        passed = ok == calls and failed == 0
        print(f"  {server.name:9s} call     {rate:7.0f}/s: {ok}/{calls} ok, {failed} failed"
              f" -> {'pass' if passed else 'FAIL'}", flush=True)  # fmt: skip
        time.sleep(5)  # calls in the UAS's timewait, transactions draining
        return passed

    try:
        time.sleep(0.5)
        results["calls_per_s"] = find_max_rate(call_step, args.start_call, args.factor, args.refine)
    finally:
        uas.send_signal(signal.SIGTERM)
        try:
            uas.wait(timeout=15)
        except subprocess.TimeoutExpired:
            uas.kill()
            uas.wait(timeout=10)
        uas_log.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true", help="5 s runs, rates doubled, one refinement"
    )
    parser.add_argument("--duration", type=float, help="seconds per run (default 20, quick 5)")
    parser.add_argument("--start-reg", type=float, default=250, help="first registration rate")
    parser.add_argument("--start-call", type=float, default=100, help="first call rate")
    parser.add_argument("--only", choices=["sipline", "kamailio"], help="measure one server")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    args.duration = args.duration or (5.0 if args.quick else 20.0)
    args.factor = 2.0 if args.quick else 1.5
    args.refine = 1 if args.quick else 3

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores;"
          f" {args.duration:g} s per run, {USERS} users", flush=True)  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sipline-bench-") as tmp:
        for name, start in (("sipline", sipline_server), ("kamailio", kamailio_server)):
            if args.only and args.only != name:
                continue
            workdir = Path(tmp) / name
            workdir.mkdir()
            with start(workdir) as server:
                results[name] = measure(server, workdir, args)

    print()
    print(f"{'workload':48s} {'sipline':>9s} {'kamailio':>9s} {'ratio':>7s}")
    for key, label in (
        ("registrations_per_s", "registrations/s (digest MD5, 10,000 users)"),
        ("calls_per_s", "calls/s (stateful proxy, Record-Route, location)"),
    ):
        ours = results.get("sipline", {}).get(key)
        theirs = results.get("kamailio", {}).get(key)
        ratio = f"{ours / theirs:.2f}" if ours and theirs else "-"
        print(f"{label:48s} {ours or 0:9.0f} {theirs or 0:9.0f} {ratio:>7s}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
