"""The workloads of `python -m benchmarks` run with SIPp, each against one server
(workload (p), in one process, is benchmarks/inprocess.py's).

(a) registrations/s with digest authentication, 10,000 provisioned users;
(b) calls/s through the stateful proxy (INVITE/100/180/200/ACK/BYE/200, Record-Route,
    the callee found by a location lookup);
(c) stateless OPTIONS answered per second;
(d) the call of (b) through the sippy B2BUA;
(e) the memory of `sipline serve` holding 100,000 registered users;
(f) the call of (b) from a user of the domain, who answers the 407 first.

A server may be several nodes (`Running.targets`): each SIPp process then sends to one
node, in turn, so there are at least as many SIPp processes as nodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    HOST,
    ROOT,
    Process,
    Search,
    SippLoad,
    Step,
    find_max_rate,
    free_port,
    sipp_binary,
)
from benchmarks.servers import DOMAIN, Running, users, write_injection

__all__ = [
    "WORKLOADS",
    "Options",
    "Result",
    "authenticated_calls",
    "calls",
    "memory",
    "options",
    "registrations",
]

REGISTER = ROOT.parent / "tests" / "data" / "sipp" / "register_auth.xml"
OPTIONS = ROOT.parent / "tests" / "data" / "sipp" / "options_uac.xml"
UAC_PROXY = ROOT / "sipp" / "uac_rr.xml"
UAC_AUTH = ROOT / "sipp" / "uac_auth.xml"
UAC_B2BUA = ROOT / "sipp" / "uac_b2bua.xml"
UAS = ROOT / "sipp" / "uas_rr.xml"
USERS = 10_000
MEMORY_USERS = 100_000
MEMORY_TARGET_MB = 300

WORKLOADS = {
    "a": "registrations/s, digest auth (MD5), 10,000 users",
    "b": "calls/s, stateful proxy, Record-Route, location lookup",
    "c": "OPTIONS/s answered statelessly",
    "d": "calls/s, the same call through a B2BUA",
    "e": "memory with 100,000 registered users",
    "f": "authenticated calls/s: 407, Record-Route, location lookup",
    "p": "parser proxy path, INVITE/s in one process (no SIPp)",
}


@dataclass
class Options:
    duration: float
    factor: float
    refine: int
    settle_s: float
    max_sipp: int
    limit: float = 200_000
    starts: dict[str, float] = field(
        default_factory=lambda: {"a": 500, "b": 200, "c": 2000, "d": 100, "f": 200}
    )
    memory_sample: int = 20_000  # users re-registered through SIPp in (e)


@dataclass
class Result:
    workload: str
    server: str
    workers: int | None = None  # sipline's processes per node; Kamailio's UDP children
    nodes: int = 1
    rate: float | None = None  # per second, zero failed
    cpu_s_per_1000: float | None = None
    peak_pss_mb: float | None = None
    peak_vmhwm_mb: float | None = None
    sipp_processes: int = 1
    notes: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def callees(count: int) -> list[tuple[str, str]]:
    return users(count, prefix="callee")


def accounts(slots: int) -> list[tuple[str, str]]:
    """Everyone provisioned on a server: the 10,000 users and one callee per SIPp UAS
    (`slots`: the most SIPp UAC processes a run may use)."""
    return users(USERS) + callees(slots)


def slots(opts: Options, nodes: int = 1) -> int:
    """The most SIPp UAC processes a run against `nodes` nodes may use."""
    return max(opts.max_sipp, nodes)


def _search(
    workload: str,
    server: Running,
    opts: Options,
    load: SippLoad,
    *,
    settle_s: float | None = None,
    max_sipp: int | None = None,
) -> Result:
    def report(s: Step) -> None:
        print(f"  {workload} {server.name:<9} {s.line()}", flush=True)

    meter = server.meter
    with meter.sampling():
        found: Search = find_max_rate(
            lambda rate, n: load.run(rate, opts.duration, n),
            start=opts.starts[workload],
            factor=opts.factor,
            refine=opts.refine,
            limit=opts.limit,
            max_sipp=opts.max_sipp if max_sipp is None else max_sipp,
            min_sipp=server.nodes,
            settle=lambda: time.sleep(opts.settle_s if settle_s is None else settle_s),
            report=report,
        )
    for note in found.notes:
        print(f"  {workload} {server.name:<9} note: {note}", flush=True)
    best = found.best
    return Result(
        workload=workload,
        server=server.name,
        workers=server.workers,
        nodes=server.nodes,
        rate=best.rate if best else None,
        cpu_s_per_1000=best.cpu_s_per_1000 if best else None,
        peak_pss_mb=meter.peak_pss_kib / 1024,
        peak_vmhwm_mb=meter.vmhwm_kib() / 1024,
        sipp_processes=best.sipp_processes if best else 1,
        notes=found.notes,
        steps=[{**asdict(s), "ok": s.ok} for s in found.steps],
    )


def registrations(server: Running, opts: Options, workdir: Path) -> Result:
    """(a) REGISTER / 401 / REGISTER with MD5 credentials / 200, the users taken in turn
    (each SIPp process its own share of them)."""
    everyone = users(USERS)

    def per_process(i: int, n: int) -> list[str]:
        path = write_injection(workdir / f"users-{i}-of-{n}.csv", everyone[i::n])
        return ["-inf", str(path), "-key", "expires", "3600"]

    load = SippLoad(server.targets, REGISTER, workdir, server.meter, per_process)
    return _search("a", server, opts, load)


def options(server: Running, opts: Options, workdir: Path) -> Result:
    """(c) OPTIONS to the server itself, one transaction per call."""
    load = SippLoad(server.targets, OPTIONS, workdir, server.meter)
    return _search("c", server, opts, load)


def _register_callee(
    server: Running, workdir: Path, user: tuple[str, str], port: int, node: int = 0
) -> None:
    path = write_injection(workdir / f"{user[0]}.csv", [user])
    load = SippLoad(
        server.targets[node % server.nodes],
        REGISTER,
        workdir,
        server.meter,
        lambda i, n: ["-inf", str(path), "-key", "expires", "7200", "-p", str(port)],
        grace_s=10,
        transport=["-t", "u1"],  # the contact is the UAS's port, bound with -p
    )
    step = load.run(1, 1)
    if not step.ok:
        raise RuntimeError(f"{server.name}: callee {user[0]} could not register")


def _uas(workdir: Path, port: int, index: int) -> Process:
    return Process(
        f"uas-{index}",
        [sipp_binary(), "-sf", str(UAS), "-i", HOST, "-p", str(port), "-m", "1000000000",
         "-d", "0", "-buff_size", "4194304", "-nostdin", "-pause_msg_ign"],
        cwd=workdir,
    )  # fmt: skip


def _callee_uases(
    server: Running, opts: Options, workdir: Path, stack: ExitStack
) -> tuple[list[str], list[Process]]:
    """One callee per SIPp UAC process the run may use, each registered with digest
    authentication (through node k of the server, in turn) from the port its SIPp UAS
    then listens on; the UASs stop with `stack`."""
    names, uases = [], []
    for k, callee in enumerate(callees(slots(opts, server.nodes))):
        port = free_port()
        _register_callee(server, workdir, callee, port, node=k)
        uas = _uas(workdir, port, k)
        stack.callback(uas.stop)
        names.append(callee[0])
        uases.append(uas)
    time.sleep(0.5)  # every node has the bindings (the change feed is polled every 20 ms)
    return names, uases


def calls(server: Running, opts: Options, workdir: Path) -> Result:
    """(b) SIPp UAC process i calls callee i through the proxy (see `_callee_uases`),
    from outside its domain (no 407)."""
    with ExitStack() as stack:
        names, uases = _callee_uases(server, opts, workdir, stack)

        def per_process(i: int, n: int) -> list[str]:
            return ["-s", names[i], "-key", "domain", DOMAIN]

        load = SippLoad(
            server.targets,
            UAC_PROXY,
            workdir,
            server.meter,
            per_process,
            extra=["-pause_msg_ign"],
            watched=lambda n: [pid for uas in uases[:n] for pid in uas.pids()],
        )
        # Calls stay in the UAS's timewait for 4 s, transactions a little longer.
        return _search("b", server, opts, load, settle_s=opts.settle_s + 3, max_sipp=len(names))


def _auth_load(
    server: Running,
    workdir: Path,
    names: list[str],
    uases: list[Process],
    callers: list[tuple[str, str]],
    tag: str,
    recv_timeout_ms: int = 8000,
) -> SippLoad:
    def per_process(i: int, n: int) -> list[str]:
        path = write_injection(workdir / f"{tag}-{i}-of-{n}.csv", callers[i::n])
        return ["-inf", str(path), "-s", names[i]]

    return SippLoad(
        server.targets,
        UAC_AUTH,
        workdir,
        server.meter,
        per_process,
        extra=["-pause_msg_ign"],
        watched=lambda n: [pid for uas in uases[:n] for pid in uas.pids()],
        recv_timeout_ms=recv_timeout_ms,
    )


AUTH_CHECK_WRONG = 4  # under the default 10 failures per source that ban it
AUTH_CHECK_RIGHT = 10


def check_authentication(
    server: Running, workdir: Path, names: list[str], uases: list[Process]
) -> str:
    """That the server challenges and verifies callers: a few calls with wrong passwords
    all fail (challenged again or refused), then a few with the right ones all succeed.
    Raises RuntimeError otherwise."""
    callers = users(USERS)[-AUTH_CHECK_RIGHT:]
    wrong = [(u, "not-" + p) for u, p in callers[:AUTH_CHECK_WRONG]]
    # SIPp takes a second 407 for a retransmission of the first and waits: not for long.
    bad = _auth_load(server, workdir, names, uases, wrong, "wrong", 1000).run(
        AUTH_CHECK_WRONG, 1, server.nodes
    )
    good = _auth_load(server, workdir, names, uases, callers, "right").run(
        AUTH_CHECK_RIGHT, 1, server.nodes
    )
    line = (
        f"wrong passwords: {bad.successful}/{bad.calls} calls went through;"
        f" right ones: {good.successful}/{good.calls}"
    )
    if bad.successful or bad.failed < bad.calls or not good.ok:
        raise RuntimeError(f"{server.name} does not check callers' credentials: {line}")
    return line


def authenticated_calls(server: Running, opts: Options, workdir: Path) -> Result:
    """(f) The call of (b) from a user of the proxy's domain: INVITE / 407 / ACK, the
    INVITE again with MD5 credentials (all SIPp answers), then as (b). SIPp UAC process i
    calls callee i, its callers its own share of the 10,000 users, taken in turn. First
    `check_authentication`, whose line the result keeps in `extra`."""
    with ExitStack() as stack:
        names, uases = _callee_uases(server, opts, workdir, stack)
        checked = check_authentication(server, workdir, names, uases)
        print(f"  f {server.name:<9} {checked}", flush=True)
        load = _auth_load(server, workdir, names, uases, users(USERS), "callers")
        result = _search("f", server, opts, load, settle_s=opts.settle_s + 3, max_sipp=len(names))
        result.extra["auth_check"] = checked
        return result


def b2bua_calls(start: Callable[[int], Any], opts: Options, workdir: Path) -> Result:
    """(d) The call of (b) through a B2BUA whose next hop is one SIPp UAS."""
    port = free_port()
    uas = _uas(workdir, port, 0)
    try:
        with start(port) as server:
            load = SippLoad(
                server.targets,
                UAC_B2BUA,
                workdir,
                server.meter,
                lambda i, n: ["-s", "callee", "-key", "domain", DOMAIN],
                extra=["-pause_msg_ign"],
                watched=lambda n: uas.pids(),
            )
            # One next hop, so one UAS; more UAC processes are added if one is busy.
            return _search("d", server, opts, load, settle_s=opts.settle_s + 3)
    finally:
        uas.stop()


def memory(server: Running, opts: Options, workdir: Path, sipp_port: int) -> Result:
    """(e) The server started on a store holding 100,000 users, each with a registered
    contact (loaded into its location cache at start); then `memory_sample` of them
    register again through SIPp with digest authentication, from `sipp_port`, the port
    their stored contacts name (so each refreshes its binding rather than adding one).

    The target is judged on peak RSS: the sum over the server's processes (supervisor
    and workers) of VmHWM, each process's own peak. Those peaks need not coincide, so
    the sum is an upper bound of what the server held at once; PSS (shared pages split
    between the processes, sampled each second) is reported beside it."""
    meter = server.meter
    loaded_kib, start_peak_kib = meter.rss_kib(), meter.vmhwm_kib()
    sample = users(MEMORY_USERS)[: opts.memory_sample]
    path = write_injection(workdir / "memory-users.csv", sample)
    load = SippLoad(
        server.targets,
        REGISTER,
        workdir,
        meter,
        lambda i, n: ["-inf", str(path), "-key", "expires", "3600", "-p", str(sipp_port)],
        transport=["-t", "u1"],  # from the port the stored contacts name
    )
    rate = max(50, round(opts.memory_sample / max(1.0, opts.duration)))
    with meter.sampling():
        step = load.run(rate, opts.memory_sample / rate)
    processes = meter.processes()
    peak = sum(p.vmhwm_kib for p in processes) / 1024
    peak_pss = meter.peak_pss_kib / 1024
    met = peak < MEMORY_TARGET_MB
    verdict = "met" if met else "NOT met"
    name = f"  e {server.name:<9}"
    print(
        f"{name} {MEMORY_USERS:,} users bound: RSS {loaded_kib / 1024:.1f} MB after start"
        f" (peak {start_peak_kib / 1024:.1f} MB while loading);"
        f" {step.successful:,}/{step.calls:,} re-registered at {step.rate:,.0f}/s",
        flush=True,
    )
    for p in processes:
        print(
            f"{name}   {p.role:<10} pid {p.pid:<7} peak RSS {p.vmhwm_kib / 1024:6.1f} MB"
            f"  RSS now {p.vmrss_kib / 1024:6.1f} MB  peak PSS {p.peak_pss_kib / 1024:6.1f} MB",
            flush=True,
        )
    print(
        f"{name} peak RSS {peak:.1f} MB (VmHWM summed over {len(processes)} processes;"
        f" target < {MEMORY_TARGET_MB} MB: {verdict}); peak PSS {peak_pss:.1f} MB",
        flush=True,
    )
    notes = []
    if not step.ok:
        notes.append(
            f"the re-registration was not sustained ({step.failed:,} of {step.calls:,} failed,"
            f" {step.retransmissions:,} retransmissions): the peak is of a server under overload"
        )
        print(f"{name} note: {notes[-1]}", flush=True)
    return Result(
        workload="e",
        server=server.name,
        peak_pss_mb=peak_pss,
        peak_vmhwm_mb=peak,
        notes=notes,
        extra={
            "users": MEMORY_USERS,
            "rss_after_start_mb": loaded_kib / 1024,
            "peak_rss_at_start_mb": start_peak_kib / 1024,
            "reregistered": step.successful,
            "reregister_failed": step.failed,
            "reregister_rate": step.rate,
            "target_mb": MEMORY_TARGET_MB,
            "target_met": met,
            "processes": [
                {
                    "role": p.role,
                    "pid": p.pid,
                    "peak_rss_mb": p.vmhwm_kib / 1024,
                    "rss_mb": p.vmrss_kib / 1024,
                    "peak_pss_mb": p.peak_pss_kib / 1024,
                }
                for p in processes
            ],
        },
        steps=[{**asdict(step), "ok": step.ok}],
    )
