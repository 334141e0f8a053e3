"""`sipline serve`: run the SIP server until SIGINT or SIGTERM."""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys

import click

from sipline.cli.server_process import read_setup, run_server, welcome_lines
from sipline.cli.store_options import StoreOptions, build_config, store_options
from sipline.cli.workers import WorkerCommand, supervise
from sipline.server.config import ConfigError, ServerConfig, default_workers
from sipline.server.records.logs import configure_logging
from sipline.transport.loop import run as run_loop

__all__ = ["build_config", "serve", "welcome_lines"]

log = logging.getLogger("sipline")


def with_http(cfg: ServerConfig, http: str | None) -> ServerConfig:
    """`--http HOST:PORT` over `[http] listen`."""
    if http is None:
        return cfg
    try:
        settings = dataclasses.replace(cfg.ops.http, listen=http)
    except ValueError as exc:
        raise ConfigError(str(exc).replace("http.listen", "--http", 1)) from None
    return dataclasses.replace(cfg, ops=dataclasses.replace(cfg.ops, http=settings))


@click.command()
@store_options
@click.option(
    "--listen",
    multiple=True,
    metavar="TRANSPORT:HOST:PORT",
    help="Listener, e.g. udp:127.0.0.1:5060, tcp:[::1]:5060, tls:0.0.0.0:5061, ws:127.0.0.1:8088 or wss:0.0.0.0:8089 (SIP over WebSocket, for browsers) (repeatable). Default: UDP and TCP on 127.0.0.1:5060, TLS on 127.0.0.1:5061.",
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
        if log_level is None:
            return new
        return dataclasses.replace(new, server=dataclasses.replace(new.server, log_level=log_level))

    try:
        cfg = reread()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(cfg.server.log_level, cfg.ops.log.format, worker_index)
    if worker_index is not None:
        # Started by the supervising `sipline serve` (sipline.cli.workers).
        sys.exit(run_loop(run_server(cfg, reread, read_setup(worker_index))))
    count = workers if workers is not None else (cfg.server.workers or default_workers())
    if count == 1:
        sys.exit(run_loop(run_server(cfg, reread)))
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
