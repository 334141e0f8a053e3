"""`sipline serve`: run the SIP server until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shlex
import signal
import sys
from collections.abc import Callable

import click

from sipline.cli.store_options import StoreOptions, build_config, store_options
from sipline.cli.workers import WorkerCommand, read_setup, serve_worker, supervise
from sipline.runtime.system import tune_gc
from sipline.server.config import (
    ConfigError,
    ServerConfig,
    default_workers,
)
from sipline.server.ops.config import check_ops
from sipline.server.records.logs import configure_logging
from sipline.server.startup import ServeError
from sipline.storage.aio import AsyncStore
from sipline.transport.loop import run as run_loop

__all__ = ["build_config", "serve"]

log = logging.getLogger("sipline")


def with_http(cfg: ServerConfig, http: str | None) -> ServerConfig:
    """`--http HOST:PORT` over `[http] listen`."""
    if http is not None:
        try:
            cfg.ops = dataclasses.replace(
                cfg.ops, http=dataclasses.replace(cfg.ops.http, listen=http)
            )
            check_ops(cfg.ops)
        except ValueError as exc:
            raise ConfigError(str(exc).replace("http.listen", "--http", 1)) from None
    return cfg


async def _serve(
    cfg: ServerConfig, ready_line: bool, reread: Callable[[], ServerConfig] | None = None
) -> int:
    # Here, not at the top: the supervisor of `--workers N` runs no server itself.
    from sipline.server.sip_server import SipServer  # noqa: PLC0415

    server = SipServer(cfg)
    try:
        bound = await server.start()
    except ServeError as exc:
        click.echo(f"sipline: {exc}", err=True)
        return 1
    tune_gc()  # after start-up: see runtime/system.py
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # SIGUSR1 prints the status line (live transactions, counters) to the log.
    loop.add_signal_handler(signal.SIGUSR1, lambda: log.warning(server.status()))
    ops = server.ops
    if ops is not None:
        ops.load_config = reread
        # SIGHUP re-reads the configuration (README "Operating sipline").
        loop.add_signal_handler(signal.SIGHUP, ops.apply_reload)
    if ready_line:
        assert server.store is not None
        for line in await welcome_lines(server.store, cfg):
            click.echo(line, err=True)
        click.echo(f"sipline: serving {', '.join(bound)}", err=True)
        if ops is not None and ops.url:
            click.echo(f"sipline: dashboard, API and metrics at {ops.url}", err=True)
    await stop.wait()
    log.info("stopping")
    await server.stop()
    return 0


async def welcome_lines(store: AsyncStore, cfg: ServerConfig) -> list[str]:
    """What an operator needs to know at start: the database, the domains, and how
    to add a first user when there is none."""
    domains = await store.list_domains()
    users = await store.call(store.store.count_users)
    db = shlex.quote(str(cfg.database))
    lines = [
        f"sipline: database {cfg.database}",
        f"sipline: domains {', '.join(domains) if domains else '(none yet)'}",
        f"sipline: {users} user{'s' if users != 1 else ''}",
    ]
    if not users:
        domain = domains[0] if domains else "example.com"
        if not domains:
            lines.append(f"sipline: add a domain:  sipline domain add {domain} --db {db}")
        lines.append(f"sipline: add a user:    sipline user add alice@{domain} --db {db}")
    return lines


@click.command()
@store_options
@click.option(
    "--listen",
    multiple=True,
    metavar="TRANSPORT:HOST:PORT",
    help="Listener, e.g. udp:127.0.0.1:5060, tcp:[::1]:5060, tls:0.0.0.0:5061 (repeatable). Default: UDP and TCP on 127.0.0.1:5060, TLS on 127.0.0.1:5061.",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    metavar="NAME",
    help="A domain this server is responsible for (repeatable).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Server processes sharing the listeners and the database (default: [server] workers, else one per core; 1: a single process).",
)
@click.option(
    "--http",
    metavar="HOST:PORT",
    default=None,
    help="Serve /metrics, the management API and the dashboard here (default: [http] listen, else off).",
)
@click.option("--worker-index", type=int, default=None, hidden=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default=None)
def serve(
    where: StoreOptions,
    listen: tuple[str, ...],
    domains: tuple[str, ...],
    workers: int | None,
    http: str | None,
    worker_index: int | None,
    log_level: str | None,
) -> None:
    """Run the SIP server: registrar, proxy and redirect server."""
    # SIGUSR1 asks for the status line once serving; until then (the binding cache can
    # take seconds to load) it must not kill the process, which is its default action.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the same for a reload (SIGHUP)
    config_path, db = where.config_path, where.db

    def reread() -> ServerConfig:
        """The configuration as at start, the file read again (SIGHUP, the API)."""
        new = with_http(build_config(config_path, listen, domains, db), http)
        if log_level is not None:
            new.log_level = log_level
        return new

    try:
        cfg = reread()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(cfg.log_level, cfg.ops.log.format, worker_index)
    if worker_index is not None:
        # Started by the supervising `sipline serve` (sipline.cli.workers).
        sys.exit(run_loop(serve_worker(cfg, read_setup(worker_index), reread)))
    count = workers if workers is not None else (cfg.workers or default_workers())
    if count == 1:
        sys.exit(run_loop(_serve(cfg, ready_line=True, reread=reread)))
    args = [f"--config={config_path}"] if config_path is not None else []
    args += [f"--listen={spec}" for spec in listen]
    args += [f"--domain={name}" for name in domains]
    args += [f"--db={db}"] if db is not None else []
    args += [f"--log-level={log_level}"] if log_level is not None else []
    args += [f"--http={http}"] if http is not None else []
    command = WorkerCommand(args)
    # The supervisor serves no traffic: the stock loop (its subprocess support) will do.
    sys.exit(
        run_loop(
            supervise(cfg, count, command, ready_line=True, welcome=welcome_lines),
            use_uvloop=False,
        )
    )
