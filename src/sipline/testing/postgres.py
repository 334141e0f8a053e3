"""Throwaway PostgreSQL clusters for tests and benchmarks: `initdb` in a temporary
directory, `pg_ctl start` on a free loopback port, databases made and dropped on demand.

The server binaries come from `$SIPLINE_PG_BINDIR`, else `pg_config --bindir`, else
Debian's `/usr/lib/postgresql/*/bin` (off the PATH there), else the PATH. PostgreSQL
refuses to run as root, so under root the cluster belongs to `nobody` (`runuser`).
The cluster trusts every local connection (any password is accepted) and skips fsync:
it lives as long as the test session, and a killed sipline still loses nothing a
commit acknowledged (the server process keeps running).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresCluster", "PostgresUnavailableError", "find_bindir"]


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries here, or the cluster could not start."""


def find_bindir() -> Path | None:
    """Where `initdb` and `pg_ctl` are, or None."""
    candidates: list[str] = []
    if os.environ.get("SIPLINE_PG_BINDIR"):
        candidates.append(os.environ["SIPLINE_PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("initdb")
    if found is not None:
        candidates.append(str(Path(found).resolve().parent))
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """One cluster on 127.0.0.1:`port`, superuser `postgres`; `url(name)` reaches a
    database in it. Use as a context manager, or `start()` and `stop()`."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise PostgresUnavailableError(
                "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian"
                " package postgresql, or set $SIPLINE_PG_BINDIR"
            )
        self.bindir = found
        self.port = 0
        self._root: Path | None = None
        self._runas: list[str] = []
        self._made = 0

    @property
    def data_dir(self) -> Path:
        if self._root is None:
            raise PostgresUnavailableError("the cluster is not started")
        return self._root / "data"

    def _run(self, *args: str) -> None:
        cmd = [*self._runas, *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise PostgresUnavailableError(f"{' '.join(args[:2])} failed: {done.stderr.strip()}")

    def start(self) -> PostgresCluster:
        root = Path(tempfile.mkdtemp(prefix="sipline-pg-"))
        self._root = root
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
            self._runas = ["runuser", "-u", "nobody", "--"]
        self.port = _free_port()
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "start",
            "-D",
            str(self.data_dir),
            "-w",
            "-l",
            str(root / "log"),
            "-o",
            options,
        )
        return self

    def stop(self) -> None:
        root = self._root
        if root is None:
            return
        try:
            self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast")
        except PostgresUnavailableError:
            pass
        finally:
            shutil.rmtree(root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement in the `postgres` database (outside a transaction)."""
        import psycopg  # noqa: PLC0415 (only clusters need it)

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """A new empty database (a copy of `template` when given); its URL."""
        self._made += 1
        name = name or f"sipline_{os.getpid()}_{self._made}"
        copy = f' TEMPLATE "{template}"' if template else ""
        self.admin(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
