"""The servers under test, each started on a free loopback port in its own directory:
`sipline serve`, Kamailio (configured like it: benchmarks/kamailio-server.cfg), the
sippy B2BUA, and a raw-socket OPTIONS responder (the ceiling for Python here)."""

from __future__ import annotations

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

from benchmarks.harness import HOST, ROOT, Process, free_port, wait_udp_ready
from sipline.testing.postgres import PostgresCluster

__all__ = [
    "DOMAIN",
    "Running",
    "kamailio",
    "provision_sipline",
    "raw_responder",
    "sipline",
    "sipline_supports_workers",
    "sippy_b2bua",
    "users",
    "write_injection",
]

DOMAIN = "example.com"
KAMAILIO_CFG = ROOT / "kamailio-server.cfg"
_SIPLINE = [sys.executable, "-c", "from sipline.cli.main import main; main()"]


@dataclass
class Running:
    name: str
    port: int
    process: Process
    description: str


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
def provision_sipline(
    db: Path | str, accounts: list[tuple[str, str]], *, bindings_port: int | None = None
) -> None:
    """Users (and, given `bindings_port`, one registered contact each, written the way
    SIPp's register_auth.xml writes it from that port) straight into the store (a
    SQLite file, or a postgresql:// URL)."""
    from sipline.storage import open_store
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


@contextmanager
def sipline(
    workdir: Path,
    db_template: Path | str,
    *,
    workers: int = 1,
    defences: bool | None = None,
    cluster: PostgresCluster | None = None,
) -> Iterator[Running]:
    """`sipline serve`; `defences` True: flood control counts SIPp's address too (not
    exempt as this host's loopback address is by default; a limit no run reaches, so
    the cost is measured, not a ban), False: flood control off, None: as configured
    by default. A template that is a postgresql:// URL (a database of `cluster`) is
    copied to a new database of that cluster, as a file template is copied."""
    workdir.mkdir(parents=True, exist_ok=True)
    db: Path | str = workdir / "sipline.db"
    if isinstance(db_template, str):
        if cluster is None:
            raise ValueError("a PostgreSQL template needs its cluster")
        db = cluster.create_database(template=db_template.rpartition("/")[2])
    else:
        shutil.copyfile(db_template, db)
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
    port = free_port()
    # Always said: serve's own default is one worker per core.
    extra = ["--workers", str(workers)]
    proc = Process(
        "sipline",
        [*_SIPLINE, "serve", "--config", str(config), "--listen", f"udp:{HOST}:{port}",
         "--db", str(db), *extra],
        cwd=workdir,
    )  # fmt: skip
    try:
        wait_udp_ready(port, alive=proc.alive)
        yield Running("sipline", port, proc, f"{max(1, workers)} process(es)")
    except RuntimeError:
        raise RuntimeError(f"sipline did not start:\n{proc.tail()}") from None
    finally:
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
        yield Running("kamailio", port, proc, f"{children} UDP workers, -x tlsf")
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
