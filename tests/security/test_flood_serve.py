"""A REGISTER flood against a real `sipline serve --workers 2` with default settings.

The attacker on 127.0.0.2 sends REGISTERs at 8,000/s for 12 s, from one port or from
16 (so both workers receive it); legitimate clients on 127.0.0.3 and 127.0.0.4
register with digest authentication meanwhile. They must get >= 95% of their
registrations through, and the workers' memory must come back within 10% of its idle
level soon after the flood ends (at most 60 s). The figures are printed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "interop"))
from flood_load import DOMAIN, Flood, Registrations, rss_mib, worker_pids
from interop_helpers import (
    HOST,
    SIPP_DATA,
    free_port_pair,
    need,
    run_sipp,
    start_serve,
    start_sipp_uas,
    write_sipp_users,
)

from sipline.storage import SqliteStore

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.serial]

CONFIG = f'[server]\ndomains = ["{DOMAIN}"]\n'
LEGIT = {"127.0.0.3": ("alice", "alice-pw"), "127.0.0.4": ("bob", "bob-pw")}
RECOVERY_S = 60.0
CALLS = 60
REGISTER = SIPP_DATA / "register_auth.xml"
UAC = SIPP_DATA / "uac_call_rr.xml"
UAS_RR = SIPP_DATA / "uas_rr.xml"


def provision(db: Path) -> None:
    store = SqliteStore(db)
    with store.transaction():
        store.add_domain(DOMAIN)
        for user, password in LEGIT.values():
            store.add_user(user, DOMAIN, password)
        for i in range(1000):  # the names the flood registers
            store.add_user(f"u{i}", DOMAIN, f"pw{i}")
    store.close()


def clients(port: int, count: int) -> list[Registrations]:
    return [
        Registrations(port, host, user, password, count=count)
        for host, (user, password) in LEGIT.items()
    ]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("ports", [1, 16])
def test_legitimate_clients_register_through_a_flood(tmp_path: Path, ports: int) -> None:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    provision(workdir / "sipline.db")
    server = start_serve(workdir, CONFIG, tls=False, workers=2)
    try:
        pids = worker_pids(server.lines)
        assert len(pids) == 2
        warm = clients(server.port, 5)  # caches and code paths warm before "idle"
        for c in warm:
            c.start()
        for c in warm:
            c.join()
        assert all(c.ok == 5 for c in warm), [c.statuses for c in warm]
        time.sleep(2.0)
        idle = min(rss_mib(pids) for _ in range(3) if time.sleep(0.3) is None)

        flood = Flood(server.port, ports=ports, rate=8000, seconds=12.0)
        legit = clients(server.port, 60)
        flood.start()
        time.sleep(0.2)
        for c in legit:
            c.start()
        peak = idle
        while flood._thread is not None and flood._thread.is_alive():
            peak = max(peak, rss_mib(pids))
            time.sleep(0.5)
        flood.join()
        for c in legit:
            c.join()
        peak = max(peak, rss_mib(pids))
        ended = time.monotonic()
        after = rss_mib(pids)
        while after > idle * 1.10 and time.monotonic() - ended < RECOVERY_S:
            time.sleep(1.0)
            after = rss_mib(pids)
        recovered_s = time.monotonic() - ended
        status = server.status()
        rates = [c.ok / c.count for c in legit]
        print(
            f"\nflood from {ports} port(s): {flood.sent} REGISTERs in {flood.seconds:g} s;"
            f" bans={status['flood_bans']} dropped={status['flood_dropped']}"
            f" overload_rejections={status['overload_rejections']}\n"
            + "".join(
                f"legit {c.host}: {c.ok}/{c.count} registered ({r:.0%}), statuses {c.statuses}\n"
                for c, r in zip(legit, rates, strict=True)
            )
            + f"worker RSS: idle {idle:.1f} MiB, peak {peak:.1f} MiB,"
            f" after {after:.1f} MiB ({recovered_s:.0f} s after the flood)"
        )
        assert status["flood_bans"] >= 1
        # Both workers hold the ban, whichever saw the flood: they pass bans on.
        assert status["flood_banned"] == 2
        assert all(r >= 0.95 for r in rates), rates
        assert after <= idle * 1.10, (idle, peak, after)
        assert server.alive()
    finally:
        code = server.stop()
    assert code == 0, "\n".join(server.lines[-20:])


@pytest.mark.timeout(200)
def test_legitimate_calls_go_through_a_flood(tmp_path: Path) -> None:
    """alice (SIPp UAC on 127.0.0.3) calls bob (SIPp UAS on 127.0.0.4, registered from
    there) 60 times at 5/s, with the 407 challenge and Record-Route, while 127.0.0.2
    floods REGISTERs from 16 ports. MD5 only: SIPp answers nothing else."""
    need("sipp")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    provision(workdir / "sipline.db")
    config = CONFIG + '[auth]\nalgorithms = ["MD5"]\n'
    server = start_serve(workdir, config, tls=False, workers=2)
    uas = None
    try:
        target = f"{HOST}:{server.port}"
        port = free_port_pair("127.0.0.4")
        bob = write_sipp_users(tmp_path / "bob.csv", [("bob", "bob-pw")], DOMAIN)
        registered = run_sipp(
            target, REGISTER, tmp_path, calls=1, rate=1, timeout_s=15, local_port=port,
            extra=["-i", "127.0.0.4", "-inf", str(bob), "-key", "expires", "600"],
        )  # fmt: skip
        assert (registered.successful, registered.failed) == (1, 0), registered.output[-2000:]
        uas = start_sipp_uas(
            UAS_RR, tmp_path, port=port, calls=CALLS, extra=["-i", "127.0.0.4", "-d", "0"],
            timeout_s=90,
        )  # fmt: skip
        flood = Flood(server.port, ports=16, rate=8000, seconds=12.0)
        flood.start()
        time.sleep(0.2)
        alice = write_sipp_users(tmp_path / "alice.csv", [("alice", "alice-pw")], DOMAIN)
        calls = run_sipp(
            target, UAC, tmp_path, calls=CALLS, rate=5, timeout_s=60,
            extra=["-i", "127.0.0.3", "-inf", str(alice), "-s", "bob"],
        )  # fmt: skip
        flood.join()
        status = server.status()
        print(
            f"\ncalls during a 16-port flood ({flood.sent} REGISTERs in {flood.seconds:g} s):"
            f" {calls.successful}/{CALLS} successful, {calls.failed} failed,"
            f" {calls.retransmissions} retransmissions; bans={status['flood_bans']}"
        )
        assert calls.successful >= 0.95 * CALLS, calls.output[-3000:]
        assert status["flood_bans"] >= 1
    finally:
        if uas is not None:
            uas.finish(timeout_s=5)
        code = server.stop()
    assert code == 0, "\n".join(server.lines[-20:])
