"""The servers under test, each started on a free loopback port in its own directory:
`sipline serve`, Kamailio (configured like it: benchmarks/kamailio-server.cfg), the
sippy B2BUA, and a raw-socket OPTIONS responder (the ceiling for Python here)."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness import (
    HOST,
    ROOT,
    Meter,
    Process,
    free_port,
    free_port_on,
    wait_udp_ready,
)

__all__ = [
    "DOMAIN",
    "Running",
    "is_url",
    "kamailio",
    "node_host",
    "open_store",
    "provision_sipline",
    "raw_responder",
    "sipline",
    "sipline_nodes",
    "sipline_supports_workers",
    "sippy_b2bua",
    "users",
    "write_injection",
]

if TYPE_CHECKING:
    from sipline.storage import Store

DOMAIN = "example.com"
KAMAILIO_CFG = ROOT / "kamailio-server.cfg"
_SIPLINE = [sys.executable, "-c", "from sipline.cli.main import main; main()"]


@dataclass
class Running:
    """A server under test: its first process (`process`), any further ones (`others`:
    the other nodes), the hosts it listens on (one per node) at `port`, and the meter
    over all of its processes."""

    name: str
    port: int
    process: Process
    description: str
    workers: int | None = None  # sipline's processes per node, Kamailio's UDP children
    hosts: tuple[str, ...] = (HOST,)
    others: tuple[Process, ...] = ()

    @property
    def nodes(self) -> int:
        return len(self.hosts)

    @property
    def targets(self) -> list[str]:
        """Where the load goes: HOST:PORT of each node."""
        return [f"{host}:{self.port}" for host in self.hosts]

    @functools.cached_property
    def meter(self) -> Meter:
        if not self.others:
            return self.process.meter
        every = (self.process, *self.others)
        return Meter(lambda: [pid for proc in every for pid in proc.pids()])


def users(count: int, prefix: str = "u") -> list[tuple[str, str]]:
    width = max(5, len(str(count - 1)))
    return [(f"{prefix}{i:0{width}d}", f"pw{i:0{width}d}") for i in range(count)]


def write_injection(path: Path, rows: list[tuple[str, str]]) -> Path:
    """A SIPp injection file: user; the whole [authentication ...] keyword (SIPp 3.6.1
    does not expand fields inside it); domain."""
    lines = ["SEQUENTIAL"] + [
        f"{u};[authentication username={u} password={p}];{DOMAIN}" for u, p in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


# -- sipline --------------------------------------------------------------------------------
def open_store(database: str | Path) -> Store:
    """The store at `database`: a SQLite file; a URL (postgresql://...) once sipline has
    a backend for it."""
    from sipline.storage import SqliteStore

    if is_url(database):
        raise SystemExit(f"no store backend in this sipline for {str(database).split(':')[0]}")
    return SqliteStore(Path(database))


def provision_sipline(
    db: str | Path, accounts: list[tuple[str, str]], *, bindings_port: int | None = None
) -> None:
    """Users (and, given `bindings_port`, one registered contact each, written the way
    SIPp's register_auth.xml writes it from that port) straight into the store."""
    from sipline.storage.base import Binding

    store = open_store(db)
    now = time.time()
    try:
        with store.transaction():
            store.add_domain(DOMAIN)
            for user, password in accounts:
                store.add_user(user, DOMAIN, password)
                if bindings_port is not None:
                    aor = f"{user}@{DOMAIN}"
                    store.update_bindings(
                        aor,
                        upsert=[
                            Binding(
                                aor=aor,
                                contact=f"sip:{user}@{HOST}:{bindings_port};transport=UDP",
                                expires_at=now + 7200,
                                call_id=f"provisioned-{user}",
                                cseq=1,
                                user_agent="benchmarks",
                                updated_at=now,
                            )
                        ],
                    )
    finally:
        store.close()


def sipline_supports_workers() -> bool:
    done = subprocess.run(
        [*_SIPLINE, "serve", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    return "--workers" in done.stdout


def is_url(database: str | Path) -> bool:
    """A database named by URL (postgresql://...), shared as it is, rather than a file."""
    return "://" in str(database)


def _database(workdir: Path, db_template: str | Path) -> str:
    """Where this run's server keeps its store: a URL as given (the caller provisioned
    it), else a fresh copy of the provisioned SQLite file in `workdir`."""
    if is_url(db_template):
        return str(db_template)
    db = workdir / "sipline.db"
    shutil.copyfile(db_template, db)
    return str(db)


def _sipline_config(workdir: Path, defences: bool | None) -> Path:
    config = workdir / "sipline.toml"
    security = {
        True: "[security]\nflood_exempt = []\nflood_requests = 1000000000\n",
        False: "[security]\nflood_control = false\n",
        None: "",
    }[defences]
    config.write_text(
        f'[server]\ndomains = ["{DOMAIN}"]\nrecord_route = true\nlog_level = "warning"\n'
        '[auth]\nalgorithms = ["MD5"]\n' + security,
        encoding="utf-8",
    )
    return config


def _serve(
    workdir: Path,
    name: str,
    config: Path,
    db: str,
    host: str,
    port: int,
    workers: int,
    profile: Path | None = None,
) -> Process:
    program = _SIPLINE
    if profile is not None:
        # cProfile writes when serve returns (SIGTERM stops it cleanly); one process only.
        script = Path(sys.executable).parent / "sipline"
        program = [sys.executable, "-m", "cProfile", "-o", str(profile), str(script)]
    # --workers always said: serve's own default is one worker per core.
    proc = Process(
        name,
        [*program, "serve", "--config", str(config), "--listen", f"udp:{host}:{port}",
         "--db", db, "--workers", str(workers)],
        cwd=workdir,
    )  # fmt: skip
    try:
        wait_udp_ready(port, host=host, alive=proc.alive)
    except RuntimeError:
        proc.stop()
        raise RuntimeError(f"{name} did not start:\n{proc.tail()}") from None
    return proc


@contextmanager
def sipline(
    workdir: Path,
    db_template: str | Path,
    *,
    workers: int = 1,
    defences: bool | None = None,
    profile: Path | None = None,
) -> Iterator[Running]:
    """`sipline serve --workers N`; `defences` True: flood control counts SIPp's address
    too (not exempt as this host's loopback address is by default; a limit no run
    reaches, so the cost is measured, not a ban), False: flood control off, None: as
    configured by default. `db_template`: a SQLite file copied for this run, or the URL
    of a database used as it is. `profile`: run under cProfile (one worker only), its
    statistics written there when the server stops."""
    if profile is not None and workers != 1:
        raise ValueError("cProfile sees one process: profile with workers=1")
    workdir.mkdir(parents=True, exist_ok=True)
    db = _database(workdir, db_template)
    port = free_port()
    config = _sipline_config(workdir, defences)
    proc = _serve(workdir, "sipline", config, db, HOST, port, workers, profile)
    try:
        yield Running("sipline", port, proc, f"{max(1, workers)} process(es)", workers=workers)
    finally:
        proc.stop()


def node_host(index: int) -> str:
    """Node `index`'s address: 127.0.0.1, 127.0.0.2, ... (all loopback on Linux)."""
    return f"127.0.0.{index + 1}"


@contextmanager
def sipline_nodes(
    workdir: Path, db_template: str | Path, *, nodes: int = 2, defences: bool | None = None
) -> Iterator[Running]:
    """`nodes` separate `sipline serve` processes (one worker each) on one machine, node
    i on udp:127.0.0.(i+1):PORT, sharing one database: what several machines in front of
    one store would be, short of the network between them. They share the secret kept
    beside a SQLite database; each is started once the one before it answers, so only
    the first migrates the store."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = _database(workdir, db_template)
    config = _sipline_config(workdir, defences)
    port = free_port_on([node_host(i) for i in range(nodes)])
    procs: list[Process] = []
    try:
        for i in range(nodes):
            # Kept as each starts, so a later one failing stops those before it.
            procs.append(_serve(workdir, f"sipline-node{i}", config, db, node_host(i), port, 1))  # noqa: PERF401
        yield Running(
            "sipline",
            port,
            procs[0],
            f"{nodes} nodes of 1 process sharing {'a SQLite file' if not is_url(db) else db}",
            workers=1,
            hosts=tuple(node_host(i) for i in range(nodes)),
            others=tuple(procs[1:]),
        )
    finally:
        for proc in reversed(procs):
            proc.stop()


# -- Kamailio -------------------------------------------------------------------------------
def kamailio_binary() -> str:
    path = shutil.which("kamailio")
    if path is None:
        raise SystemExit("kamailio is not installed (`make peers` installs it)")
    return path


def kamailio_version() -> str | None:
    path = shutil.which("kamailio")
    if path is None:
        return None
    out = subprocess.run([path, "-v"], capture_output=True, text=True, check=False).stdout
    first = out.splitlines()[0] if out else ""
    return first.removeprefix("version: kamailio ").split(" ")[0] or None


KAMAILIO_MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")


def _kamailio_subscribers(workdir: Path, accounts: list[tuple[str, str]]) -> tuple[str, str]:
    """The subscriber table auth_db reads: in SQLite with an index on (username, domain)
    like sipline's store, else in db_text (which scans the whole table per lookup: about
    4 ms a registration with 10,000 users here)."""
    if (KAMAILIO_MODULES / "db_sqlite.so").exists():
        import sqlite3

        path = workdir / "kamailio.sqlite"
        db = sqlite3.connect(path)
        db.executescript(
            "CREATE TABLE version (id INTEGER PRIMARY KEY AUTOINCREMENT, table_name VARCHAR(32)"
            " NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL);"
            "INSERT INTO version (table_name, table_version) VALUES ('subscriber', 7);"
            "CREATE TABLE subscriber (id INTEGER PRIMARY KEY AUTOINCREMENT, username VARCHAR(64)"
            " DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL, password VARCHAR(64)"
            " DEFAULT '' NOT NULL, ha1 VARCHAR(128) DEFAULT '' NOT NULL, ha1b VARCHAR(128)"
            " DEFAULT '' NOT NULL, CONSTRAINT subscriber_account_idx UNIQUE (username, domain));"
        )
        db.executemany(
            "INSERT INTO subscriber (username, domain, password) VALUES (?, ?, ?)",
            [(u, DOMAIN, p) for u, p in accounts],
        )
        db.commit()
        db.close()
        return "db_sqlite", f"sqlite://{path}"
    print("note: kamailio-sqlite-modules is missing: Kamailio reads users from db_text")
    dbdir = workdir / "kamailio-db"
    dbdir.mkdir(exist_ok=True)
    (dbdir / "version").write_text(
        "id(int,auto) table_name(string) table_version(int)\n0:subscriber:7\n", encoding="ascii"
    )
    rows = [
        "id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null)"
    ]
    rows += [f"{i}:{u}:{DOMAIN}:{p}::" for i, (u, p) in enumerate(accounts, 1)]
    (dbdir / "subscriber").write_text("\n".join(rows) + "\n", encoding="ascii")
    return "db_text", f"text://{dbdir}"


@contextmanager
def kamailio(
    workdir: Path, accounts: list[tuple[str, str]], *, children: int = 2
) -> Iterator[Running]:
    binary = kamailio_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    module, url = _kamailio_subscribers(workdir, accounts)
    port = free_port()
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(
        KAMAILIO_CFG.read_text(encoding="utf-8")
        .replace("@PORT@", str(port))
        .replace("@DOMAIN@", DOMAIN)
        .replace("@DBMODULE@", module)
        .replace("@DBURL@", url)
        .replace("@CHILDREN@", str(children)),
        encoding="utf-8",
    )
    pidfile = workdir / "kamailio.pid"
    # -x tlsf: Debian's default allocator costs Kamailio 3-4x the CPU.
    proc = Process(
        "kamailio",
        [binary, "-f", str(cfg), "-DD", "-E", "-Y", str(workdir), "-P", str(pidfile),
         "-m", "2048", "-M", "16", "-x", "tlsf"],
        cwd=workdir,
        foreground=True,
    )  # fmt: skip

    def stop() -> None:
        # Through the pidfile: signalling the process group can hang its workers.
        if pidfile.exists():
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)

    proc.stopper = stop
    try:
        wait_udp_ready(port, alive=proc.alive)
        yield Running(
            "kamailio", port, proc, f"{children} UDP workers (children), -x tlsf", workers=children
        )
    except RuntimeError:
        raise RuntimeError(f"kamailio did not start:\n{proc.tail()}") from None
    finally:
        proc.stop()


# -- sippy ----------------------------------------------------------------------------------
def sippy_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sippy")
    except PackageNotFoundError:
        return None


@contextmanager
def sippy_b2bua(workdir: Path, next_hop: int) -> Iterator[Running]:
    """sippy's b2bua_simple (`python -m sippy.b2bua_simple`): every INVITE becomes a call
    to the next hop, here a SIPp UAS; log level WARN (no per-message logging)."""
    if sippy_version() is None:
        raise SystemExit("sippy is not installed (pip install -e '.[bench]')")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "SIPLOG_LVL": "WARN", "SIPLOG_BEND": "stderr"}
    proc = Process(
        "sippy",
        [sys.executable, "-m", "sippy.b2bua_simple", "-f", "-l", HOST, "-p", str(port),
         "-n", f"{HOST}:{next_hop}", "-L", str(workdir / "sippy-b2bua.log")],
        cwd=workdir,
        env=env,
    )  # fmt: skip
    try:
        wait_udp_ready(port, alive=proc.alive)
        yield Running("sippy", port, proc, "b2bua_simple, one process")
    except RuntimeError:
        raise RuntimeError(f"sippy did not start:\n{proc.tail()}") from None
    finally:
        proc.stop()


# -- the Python ceiling ---------------------------------------------------------------------
@contextmanager
def raw_responder(workdir: Path) -> Iterator[Running]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT.parent)}
    proc = Process(
        "raw", [sys.executable, "-m", "benchmarks.raw_responder", str(port)], cwd=workdir, env=env
    )
    try:
        wait_udp_ready(port, alive=proc.alive)
        yield Running("raw", port, proc, "blocking recvfrom/sendto loop")
    finally:
        proc.stop()
