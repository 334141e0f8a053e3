"""`sipline serve --workers N`: the supervising process (a worker runs as any server
process does, `cli/server_process.py`).

The supervisor (docs/architecture.md "Workers") opens and migrates the store once,
checks the TLS certificate (generating the self-signed one once), binds every
listener once per worker with SO_REUSEPORT (`sipline.transport.shared`) and one
channel socket per worker in a private directory (`sipline.transport.channel`: the
workers hand each other flows and responses), then runs each worker as
`sipline serve ... --worker-index I`, a fresh interpreter that inherits its sockets.
It keeps the sockets, so a worker that dies is restarted on the very same ones (the
kernel's hash of peers to sockets does not move, and what arrived meanwhile waits in
the socket). Worker <-> supervisor, one line each:

- stdin, supervisor to worker: a JSON object (the nonce secret, the socket numbers);
  the pipe stays open, and its end (the supervisor is gone) stops the worker;
- stdout, worker to supervisor: `ready` once listening, `status ...` after SIGUSR1,
  `ban HOST SECONDS` when its flood control banned a source (runtime/flood.py): the
  supervisor passes it to every other worker's stdin, and they ban it too.

Signals: SIGINT/SIGTERM to the supervisor stop every worker (SIGTERM) and then it;
SIGUSR1 asks each worker for its status line and logs them and their sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import click

from sipline.server.config import ServerConfig
from sipline.server.ops.listen import bind_http, http_url
from sipline.server.secret_file import server_secret
from sipline.server.startup import ServeError, record_domains, tls_context
from sipline.storage.aio import AsyncStore
from sipline.storage.base import StoreError
from sipline.transport.channel import channel_socket
from sipline.transport.shared import probe, shared_socket

__all__ = ["WorkerCommand", "supervise"]

log = logging.getLogger("sipline")

# The lines an operator sees at start (the database, domains, users).
Welcome = Callable[[AsyncStore, ServerConfig], Awaitable[list[str]]]

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
STATUS_TIMEOUT_S = 2.0
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024  # as TransportLayer's default
_RESTART_DELAYS_S = (0.2, 1.0, 5.0)  # after a worker died soon after (re)starting
_STABLE_S = 10.0  # a worker up this long is well again: the next restart is immediate


@dataclass(slots=True)
class WorkerCommand:
    """How to start a worker: the `sipline serve` arguments (less the index)."""

    args: list[str]

    def argv(self, index: int) -> list[str]:
        # `serve` alone, not the whole `sipline` group: a worker needs none of the other
        # commands' modules (the user agent, media codecs, numpy). `-I` (isolated mode):
        # `-c` would put the working directory first on sys.path, so an `asyncio.py` or
        # `enum.py` lying there would run in every worker; -I leaves it out and ignores
        # PYTHONPATH, PYTHONSTARTUP and the user's site-packages as well.
        return [
            sys.executable,
            "-I",
            "-c",
            "from sipline.cli.serve import serve; serve(prog_name='sipline serve')",
            *self.args,
            "--worker-index",
            str(index),
        ]


@dataclass(eq=False)
class _Worker:
    index: int
    sockets: list[socket.socket]
    channel: socket.socket
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    failures: int = 0  # deaths in a row, each soon after a start
    ready: asyncio.Future[None] | None = None
    status: asyncio.Future[str] | None = None
    reader: asyncio.Task[None] | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    media: socket.socket | None = None  # the media host's socket: worker 0 only

    @property
    def fds(self) -> list[int]:
        media = [self.media.fileno()] if self.media is not None else []
        return [s.fileno() for s in self.sockets] + [self.channel.fileno()] + media


class Supervisor:
    def __init__(self, cfg: ServerConfig, count: int, command: WorkerCommand) -> None:
        self.cfg = cfg
        self.count = count
        self.command = command
        # Kept across restarts, shared with other nodes (server/secret_file.py).
        self.secret = server_secret(cfg.server.database, cfg.server.secret_file)
        self.workers: list[_Worker] = []
        self.bound: list[str] = []
        self.media_port = 0
        self.stopping = False
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        # [http] listen: bound here, served by worker 0 (docs/architecture.md "Workers").
        self.http: socket.socket | None = None
        self.http_url: str | None = None
        # Metrics summed over the workers (server/records/metrics.py): one directory for all.
        self.metrics_dir: str | None = None
        # The workers' channel sockets (transport/channel.py), in a directory only we read.
        self.channel_dir: str | None = None

    # -- preparing --------------------------------------------------------------------------
    async def prepare(self, welcome: Welcome) -> list[str]:
        """Store, certificate and sockets; returns the welcome lines. Raises ServeError."""
        cfg = self.cfg
        try:
            # No binding cache: the supervisor routes nothing, and with 100,000 users
            # the cache alone would cost it some 100 MB.
            store = await AsyncStore.open(cfg.server.database, load_bindings=False)
        except StoreError as exc:
            raise ServeError(str(exc)) from exc
        try:
            await record_domains(store, cfg.server.domains)
            lines = await welcome(store, cfg)
        finally:
            await store.close()
        if any(spec.transport in ("TLS", "WSS") for spec in cfg.server.listen):
            tls_context(
                cfg.tls, cfg.server.database
            )  # a bad certificate stops us here, not N times in the workers
        per_worker: list[list[socket.socket]] = [[] for _ in range(self.count)]
        self.channel_dir = tempfile.mkdtemp(prefix="sipline-workers-")
        channels = [channel_socket(self.channel_dir, i) for i in range(self.count)]
        try:
            for spec in cfg.server.listen:
                try:
                    port = probe(spec.transport, spec.host, spec.port)
                    for i in range(self.count):
                        per_worker[i].append(
                            shared_socket(spec.transport, spec.host, port, SOCKET_BUFFER_BYTES)
                        )
                except OSError as exc:
                    reason = (exc.strerror or str(exc)).lower()
                    raise ServeError(f"cannot listen on {spec}: {reason}") from exc
                host = f"[{spec.host}]" if ":" in spec.host else spec.host
                where = f"{spec.transport.lower()}:{host}:{port}"
                self.bound.append(where)
                log.info("listening on %s (%d workers)", where, self.count)
        except BaseException:
            for socks in [*per_worker, channels]:
                for s in socks:
                    s.close()
            shutil.rmtree(self.channel_dir, ignore_errors=True)
            raise
        self.workers = [_Worker(i, per_worker[i], channels[i]) for i in range(self.count)]
        self.workers[0].media = self._media_socket()
        self._prepare_ops()
        return lines

    def _media_socket(self) -> socket.socket | None:
        """The media host's loopback socket, bound once here and kept, so worker 0
        (which runs the host) gets the same port after a restart and every worker's
        proxy knows it from the start (server/media_services/setup.py)."""
        if not self.cfg.media.enabled:
            return None
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", self.cfg.media.port))
        except OSError as exc:
            sock.close()
            reason = (exc.strerror or str(exc)).lower()
            raise ServeError(
                f"media.port: cannot bind 127.0.0.1:{self.cfg.media.port}: {reason}"
            ) from exc
        self.media_port = int(sock.getsockname()[1])
        return sock

    def _prepare_ops(self) -> None:
        """The HTTP listener's socket, and the directory where every worker writes its
        metrics (prometheus-client's multiprocess mode; worker 0 sums them)."""
        if self.cfg.ops.http.listen is not None:
            self.http = bind_http(self.cfg.ops.http)
            self.http.set_inheritable(True)
            self.http_url = http_url(self.cfg.ops.http, self.http)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.metrics_dir = tempfile.mkdtemp(prefix="sipline-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir  # the workers inherit it

    # -- running ----------------------------------------------------------------------------
    async def run(self, ready_line: bool, welcome: list[str]) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: self._spawn_task(self._status()))
        # SIGHUP (or POST /api/reload at worker 0): every worker re-reads the configuration.
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        try:
            try:
                for w in self.workers:
                    await self._start(w)
            except OSError as exc:
                click.echo(f"sipline: cannot start the worker processes: {exc}", err=True)
                return 1
            results = await asyncio.gather(
                *(self._wait_ready(w) for w in self.workers), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                click.echo(f"sipline: {failed[0]}", err=True)
                return 1
            if ready_line:
                for line in welcome:
                    click.echo(line, err=True)
                click.echo(f"sipline: {self.count} worker processes", err=True)
                click.echo(f"sipline: serving {', '.join(self.bound)}", err=True)
                if self.http_url is not None:
                    click.echo(f"sipline: dashboard, API and metrics at {self.http_url}", err=True)
                    if any(b.startswith("ws") for b in self.bound):
                        click.echo(f"sipline: web phone at {self.http_url}phone/", err=True)
            for w in self.workers:
                self._spawn_task(self._watch(w))
            await self._stop.wait()
            log.info("stopping")
            return 0
        finally:
            self.stopping = True
            await self._stop_all()
            for w in self.workers:
                if w.media is not None:
                    w.media.close()
                for s in [*w.sockets, w.channel]:
                    s.close()
            if self.http is not None:
                self.http.close()
            for folder in (self.metrics_dir, self.channel_dir):
                if folder is not None:
                    shutil.rmtree(folder, ignore_errors=True)

    def _reload(self) -> None:
        log.warning("reload: passing SIGHUP to the workers")
        for w in self.workers:
            if w.proc is not None and w.proc.returncode is None and w.ready and w.ready.done():
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signal.SIGHUP)

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start(self, w: _Worker) -> None:
        loop = asyncio.get_running_loop()
        w.ready = loop.create_future()
        w.proc = await asyncio.create_subprocess_exec(
            *self.command.argv(w.index),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=w.fds + ([self.http.fileno()] if self.http and w.index == 0 else []),
            process_group=0,  # a terminal's Ctrl-C reaches us; we stop the workers
        )
        w.started_at = time.monotonic()
        setup = {
            "secret": self.secret.hex(),
            "count": self.count,
            "sockets": [s.fileno() for s in w.sockets],
            "channel": w.channel.fileno(),
            "channel_dir": self.channel_dir,
            "media": w.media.fileno() if w.media is not None else None,
            "media_port": self.media_port,
            "http": self.http.fileno() if self.http is not None and w.index == 0 else None,
        }
        assert w.proc.stdin is not None
        w.proc.stdin.write(json.dumps(setup).encode() + b"\n")
        await w.proc.stdin.drain()  # and left open: its end tells the worker we are gone
        w.reader = loop.create_task(self._read(w, w.proc))
        log.info("worker %d started (pid %d)", w.index, w.proc.pid)

    async def _read(self, w: _Worker, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if line == "ready":
                if w.ready is not None and not w.ready.done():
                    w.ready.set_result(None)
            elif line.startswith("status ") and w.status is not None and not w.status.done():
                w.status.set_result(line.removeprefix("status "))
            elif line.startswith("ban "):
                self._relay(w, line)

    def _relay(self, source: _Worker, line: str) -> None:
        """A ban made by one worker, to all the others (a short pipe write: no wait)."""
        for w in self.workers:
            proc = w.proc
            if w is source or proc is None or proc.stdin is None or proc.returncode is not None:
                continue
            with contextlib.suppress(OSError, RuntimeError):
                proc.stdin.write(line.encode() + b"\n")

    async def _wait_ready(self, w: _Worker) -> None:
        assert w.ready is not None and w.proc is not None
        exited: asyncio.Future[Any] = asyncio.ensure_future(w.proc.wait())
        ready: asyncio.Future[Any] = w.ready
        try:
            done, _ = await asyncio.wait(
                [ready, exited], timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not exited.done():
                exited.cancel()
        if ready in done:
            return
        if exited in done:
            raise ServeError(f"worker {w.index} exited ({w.proc.returncode}) before it was ready")
        raise ServeError(f"worker {w.index} not ready within {READY_TIMEOUT_S:.0f} s")

    async def _watch(self, w: _Worker) -> None:
        """Restart the worker whenever it dies, until we stop."""
        while not self.stopping:
            proc = w.proc
            assert proc is not None
            code = await proc.wait()
            if self.stopping:
                return
            up = time.monotonic() - w.started_at
            if self.metrics_dir is not None:  # its gauges go; its counters still count
                for f in glob.glob(os.path.join(self.metrics_dir, f"gauge_live*_{proc.pid}.db")):
                    with contextlib.suppress(OSError):
                        os.remove(f)
            w.failures = 0 if up >= _STABLE_S else w.failures + 1
            delay = (
                _RESTART_DELAYS_S[min(w.failures, len(_RESTART_DELAYS_S)) - 1] if w.failures else 0
            )
            log.warning(
                "worker %d (pid %d) exited with status %s after %.1f s; restarting",
                w.index,
                proc.pid,
                code,
                up,
            )
            if delay:
                await asyncio.sleep(delay)
            if self.stopping:
                return
            try:
                await self._start(w)
                await self._wait_ready(w)
            except (OSError, ServeError) as exc:  # died again at once: counted next turn
                log.warning("restarting worker %d failed: %s", w.index, exc)
                if w.proc is None:
                    return
                continue
            log.info("worker %d ready again (pid %d)", w.index, w.proc.pid if w.proc else 0)

    async def _status(self) -> None:
        """SIGUSR1: each worker's status line, then their sum (one `status:` line)."""
        loop = asyncio.get_running_loop()
        asked: list[tuple[_Worker, asyncio.Future[str]]] = []
        for w in self.workers:
            if w.proc is None or w.proc.returncode is not None:
                continue
            if w.ready is None or not w.ready.done():
                # Until it says `ready` its handler may not be set yet, and SIGUSR1's
                # default action would end it.
                log.warning("worker %d: still starting", w.index)
                continue
            w.status = loop.create_future()
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(signal.SIGUSR1)
                asked.append((w, w.status))
        total: dict[str, int] = {}
        alive = 0
        for w, future in asked:
            try:
                async with asyncio.timeout(STATUS_TIMEOUT_S):
                    line = await future
            except TimeoutError:
                log.warning("worker %d: no status within %.0f s", w.index, STATUS_TIMEOUT_S)
                continue
            alive += 1
            pid = w.proc.pid if w.proc is not None else 0
            body = line.removeprefix("status: ")
            log.warning("worker %d (pid %d): %s", w.index, pid, body)
            for item in body.split():
                key, _, value = item.partition("=")
                if value.lstrip("-").isdigit():
                    total[key] = total.get(key, 0) + int(value)
        counters = " ".join(f"{k}={v}" for k, v in total.items())
        log.warning("status: workers=%d %s", alive, counters)

    async def _stop_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        live = [w for w in self.workers if w.proc is not None and w.proc.returncode is None]
        for w in live:
            assert w.proc is not None
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(signal.SIGTERM)
        for w in live:
            assert w.proc is not None
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await w.proc.wait()
            except TimeoutError:
                log.warning("worker %d did not stop within %.0f s: killed", w.index, STOP_TIMEOUT_S)
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                await w.proc.wait()
        for w in self.workers:
            if w.reader is not None:
                w.reader.cancel()
            if w.proc is not None and w.proc.stdin is not None:
                w.proc.stdin.close()


async def supervise(
    cfg: ServerConfig, count: int, command: WorkerCommand, *, ready_line: bool, welcome: Welcome
) -> int:
    supervisor = Supervisor(cfg, count, command)
    try:
        lines = await supervisor.prepare(welcome)
    except ServeError as exc:
        click.echo(f"sipline: {exc}", err=True)
        if supervisor.channel_dir is not None:
            shutil.rmtree(supervisor.channel_dir, ignore_errors=True)
        return 1
    return await supervisor.run(ready_line, lines)
