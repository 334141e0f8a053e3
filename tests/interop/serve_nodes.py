"""Several `sipline serve` nodes sharing one database, as real processes on 127.0.0.1,
127.0.0.2 and 127.0.0.3 (README "Running several nodes").

The database is a string (`--db`): a SQLite file path that every node opens today; a
`postgresql://` URL works the same once that backend is in, so a test module
parametrizes over backends by changing only the fixture that names the database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from interop_helpers import STARTED, ServeProcess, free_port_pair

from sipline.storage.aio import AsyncStore

NODE_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
DOMAIN = "example.com"
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


@dataclass
class Node:
    """One `sipline serve` of several: its loopback address, its port (UDP and TCP)
    and the process."""

    host: str
    serve: ServeProcess

    @property
    def port(self) -> int:
        return self.serve.port

    @property
    def target(self) -> str:
        """HOST:PORT, as a phone's `server=` names it."""
        return f"{self.host}:{self.port}"

    @property
    def name(self) -> str:
        """The node's name (server/node.py: its public address by default)."""
        return self.target

    def kill9(self) -> None:
        """`kill -9`: nothing is flushed, nothing is said goodbye."""
        self.serve.proc.send_signal(signal.SIGKILL)
        self.serve.proc.wait(timeout=10)

    def stop(self) -> int:
        return self.serve.stop()


async def provision(database: str, users: dict[str, str] = USERS) -> None:
    """The domain and the users, written through the store as the CLI would."""
    store = await AsyncStore.open(database, load_bindings=False)
    try:
        if DOMAIN not in await store.list_domains():
            await store.write(store.store.add_domain, DOMAIN)
        for user, password in users.items():
            await store.write(store.store.add_user, user, DOMAIN, password)
    finally:
        await store.close()


def _command(host: str, port: int, database: str, workers: int, config: Path | None) -> list[str]:
    args = [
        sys.executable, "-c", "from sipline.cli.main import main; main()", "serve",
        "--listen", f"udp:{host}:{port}", "--listen", f"tcp:{host}:{port}",
        "--db", database, "--domain", DOMAIN, "--workers", str(workers),
    ]  # fmt: skip
    return [*args, "--config", str(config)] if config is not None else args


def start_nodes(
    workdir: Path,
    database: str,
    *,
    hosts: Sequence[str] = NODE_HOSTS,
    config: str | None = None,
    workers: int = 1,
) -> list[Node]:
    """One node per host, all started at once (so they race for the migrations and
    the secret file as nodes booted together do), each waited for until it serves."""
    started: list[Node] = []
    for host in hosts:
        home = workdir / host
        home.mkdir(parents=True, exist_ok=True)
        path = None
        if config is not None:
            path = home / "sipline.toml"
            path.write_text(config, encoding="utf-8")
        port = free_port_pair(host)
        proc = subprocess.Popen(
            _command(host, port, database, workers, path),
            cwd=home, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        serve = ServeProcess(proc, home, port, 0)
        STARTED.append(serve)  # conftest: no traceback in any node's log
        serve._reader = threading.Thread(target=serve._read, daemon=True)
        serve._reader.start()
        started.append(Node(host, serve))
    try:
        for node in started:
            node.serve.wait_line("sipline: serving")
    except BaseException:
        for node in started:
            node.stop()
        raise
    return started


@contextlib.contextmanager
def running_nodes(
    workdir: Path, database: str, *, hosts: Sequence[str] = NODE_HOSTS, config: str | None = None
) -> Iterator[list[Node]]:
    """`start_nodes`, and at the end every node still running stops cleanly (exit 0)."""
    nodes = start_nodes(workdir, database, hosts=hosts, config=config)
    codes: dict[str, int] = {}
    try:
        yield nodes
    finally:
        for node in nodes:
            killed = node.serve.proc.returncode == -signal.SIGKILL
            code = node.stop()
            if not killed:
                codes[node.host] = code
    bad = {host: code for host, code in codes.items() if code != 0}
    assert not bad, bad


def shared_sqlite(tmp_path: Path) -> str:
    """The database every node opens: one SQLite file (workers share one already)."""
    path = tmp_path / "shared.db"
    os.makedirs(path.parent, exist_ok=True)
    return str(path)
