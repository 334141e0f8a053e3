"""One server process until it is told to stop: the single process of `sipline serve`,
or one worker of `sipline serve --workers N` (its supervisor is `cli/workers.py`).

Both start the same way: the server, its signals (SIGINT/SIGTERM stop, SIGHUP
reloads, SIGUSR1 reports the status line) and a line saying it serves. They differ in
where the status and that line go: a single process prints them for the operator; a
worker tells its supervisor on stdout, and follows the supervisor's lines on stdin
(the bans other workers made; the pipe's end means the supervisor is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from sipline.runtime.system import tune_gc
from sipline.server.config import ServerConfig
from sipline.server.startup import ServeError, WorkerSetup
from sipline.storage.aio import AsyncStore

if TYPE_CHECKING:  # the supervisor imports this module and must not load the server
    from sipline.server.sip_server import SipServer

__all__ = ["read_setup", "run_server", "welcome_lines"]

log = logging.getLogger("sipline")


async def welcome_lines(store: AsyncStore, cfg: ServerConfig) -> list[str]:
    """What an operator needs to know at start: the database, the domains, and how
    to add a first user when there is none."""
    domains = await store.list_domains()
    users = await store.call(store.store.count_users)
    database = cfg.server.database
    db = shlex.quote(str(database))
    lines = [
        f"sipline: database {database}",
        f"sipline: domains {', '.join(domains) if domains else '(none yet)'}",
        f"sipline: {users} user{'s' if users != 1 else ''}",
    ]
    if not users:
        domain = domains[0] if domains else "example.com"
        if not domains:
            lines.append(f"sipline: add a domain:  sipline domain add {domain} --db {db}")
        lines.append(f"sipline: add a user:    sipline user add alice@{domain} --db {db}")
    return lines


async def run_server(
    cfg: ServerConfig,
    reread: Callable[[], ServerConfig] | None = None,
    setup: WorkerSetup | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM (a worker: also until its supervisor is gone)."""
    # Here, not at the top: the supervisor of `--workers N` runs no server itself.
    from sipline.server.sip_server import SipServer  # noqa: PLC0415

    server = SipServer(cfg, worker=setup)
    server.load_config = reread
    try:
        bound = await server.start()
    except ServeError as exc:
        where = f"worker {setup.index}: " if setup is not None else ""
        click.echo(f"sipline: {where}{exc}", err=True)
        return 1
    tune_gc()  # after start-up: see runtime/system.py
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # SIGHUP re-reads the configuration (README "Operating sipline").
    loop.add_signal_handler(signal.SIGHUP, server.apply_reload)
    if setup is None:
        loop.add_signal_handler(signal.SIGUSR1, lambda: log.warning(server.status()))
        assert server.store is not None
        for line in await welcome_lines(server.store, cfg):
            click.echo(line, err=True)
        click.echo(f"sipline: serving {', '.join(bound)}", err=True)
        if server.ops is not None and server.ops.url:
            click.echo(f"sipline: dashboard, API and metrics at {server.ops.url}", err=True)
            if any(b.startswith("ws") for b in bound):
                click.echo(f"sipline: web phone at {server.ops.url}phone/", err=True)
    else:
        loop.add_signal_handler(signal.SIGUSR1, lambda: _tell("status " + server.status()))
        _follow_supervisor(server, loop, stop)
        _tell("ready")
    await stop.wait()
    log.info("stopping")
    await server.stop()
    return 0


# -- a worker and its supervisor ------------------------------------------------------------
def read_setup(index: int) -> WorkerSetup:
    """The setup line the supervisor writes on our stdin."""
    line = sys.stdin.buffer.readline()
    if not line:
        raise click.ClickException("--worker-index is for the supervising sipline serve only")
    doc = json.loads(line)
    return WorkerSetup(
        index=index,
        secret=bytes.fromhex(doc["secret"]),
        sockets=[socket.socket(fileno=int(fd)) for fd in doc["sockets"]],
        count=int(doc["count"]),
        channel=socket.socket(fileno=int(doc["channel"])) if doc.get("channel") else None,
        channel_dir=doc.get("channel_dir"),
        media_socket=socket.socket(fileno=int(doc["media"])) if doc.get("media") else None,
        media_port=int(doc.get("media_port", 0)),
        http=socket.socket(fileno=int(doc["http"])) if doc.get("http") is not None else None,
    )


def _tell(line: str) -> None:
    """One line to the supervisor (a short write to a pipe: it does not block)."""
    with contextlib.suppress(OSError):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _follow_supervisor(
    server: SipServer, loop: asyncio.AbstractEventLoop, stop: asyncio.Event
) -> None:
    """Bans this worker's flood control makes go up to the supervisor; those other
    workers made come down on stdin, whose end stops us."""
    flood = server.endpoint.flood
    if flood is not None:
        flood.on_ban = lambda host, seconds: _tell(f"ban {host} {seconds:g}")
    stdin = sys.stdin.buffer.fileno()
    pending = bytearray()

    def readable() -> None:
        try:
            data = os.read(stdin, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(stdin)
            log.warning("the supervising process is gone: stopping")
            stop.set()
            return
        pending.extend(data)
        *lines, rest = pending.split(b"\n")
        pending[:] = rest
        for line in lines:
            _from_supervisor(server, line.decode("ascii", "replace"))

    loop.add_reader(stdin, readable)


def _from_supervisor(server: SipServer, line: str) -> None:
    """A line the supervisor sent after the setup: a ban another worker made."""
    kind, _, rest = line.partition(" ")
    host, _, seconds = rest.partition(" ")
    flood = server.endpoint.flood
    if kind == "ban" and flood is not None and host:
        with contextlib.suppress(ValueError):
            flood.ban(host, float(seconds), publish=False)
