"""What an operator sees, wired to one server process: the message tap (call records,
SIP trace, HEP), the metrics and their sampling, registration events, the record
purge, the HTTP listener (single process, or worker 0), and the reload request.

`SipServer` makes one `OpsService` and calls `start`, `stop`, `registered` and
`apply`; nothing here is on the path of a request except the tap. The server is seen
through the `Served` protocol (server/reload.py decides what a reload changes).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import SipUri
from sipline.runtime.endpoint import Endpoint
from sipline.server.ops.config import OpsConfig
from sipline.server.ops.listen import bind_http
from sipline.server.records.hangup import ContactHops, send_hangup
from sipline.server.records.logs import configure_logging
from sipline.server.records.metrics import Metrics
from sipline.server.records.tap import MessageTap
from sipline.server.security.monitor import SecurityMonitor
from sipline.server.startup import ServeError, WorkerSetup
from sipline.storage.aio import AsyncStore
from sipline.storage.base import StoreError
from sipline.storage.ops import OpsEvent

if TYPE_CHECKING:
    from sipline.server.ops.http import HttpListener

__all__ = ["OpsService", "Served"]

log = logging.getLogger("sipline.server")
reg_log = logging.getLogger("sipline.registrar")

SAMPLE_S = 1.0
HISTORY_EVERY_S = 10.0
HISTORY_KEEP = 360  # an hour of samples
PURGE_EVERY_S = 3600.0
STALE_EVERY_S = 60.0
STALE_MARGIN_S = 60.0


class Served(Protocol):
    """What the operator's view needs of the server process it watches (`SipServer`)."""

    @property
    def endpoint(self) -> Endpoint: ...
    @property
    def worker(self) -> WorkerSetup | None: ...
    @property
    def security(self) -> SecurityMonitor | None: ...
    @property
    def bound(self) -> list[str]: ...
    @property
    def backend(self) -> ContactHops | None: ...
    def status(self) -> str: ...
    def apply_reload(self) -> dict[str, Any]: ...


class OpsService:
    def __init__(
        self,
        server: Served,
        store: AsyncStore,
        settings: OpsConfig,
        *,
        regions: list[str],
        database: Path,
        ringing_s: float,
    ) -> None:
        """`ringing_s`: how long a call attempt may ring ([limits] timer_c_s, §16.6)."""
        self.server = server
        self.store = store
        self.settings = settings
        self.metrics = Metrics()
        self.tap = MessageTap(server.endpoint, store, settings, self.metrics)
        self.http: HttpListener | None = None
        self.url: str | None = None
        self.regions = regions
        self.database = database
        self.ringing_s = ringing_s
        self._history: collections.deque[dict[str, float]] = collections.deque(maxlen=HISTORY_KEEP)
        self._tasks: list[asyncio.Task[None]] = []
        self._last_sample = 0.0

    @property
    def serves_http(self) -> bool:
        worker = self.server.worker
        return self.settings.http.listen is not None and (worker is None or worker.index == 0)

    async def start(self, http_socket: socket.socket | None = None) -> None:
        self.tap.start()
        self.store.on_expired = self._expired
        security = self.server.security
        if security is not None:  # the security log has the lines; we count and record
            security.on_auth_failed = self._auth_failed
            security.on_ban = self._banned
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._sample_forever()), loop.create_task(self._purge())]
        if self.serves_http:
            from sipline.server.ops.http import HttpListener  # noqa: PLC0415 (aiohttp)

            settings = self.settings.http
            sock = http_socket if http_socket is not None else bind_http(settings)
            self.http = HttpListener(settings, self)
            try:
                self.url = await self.http.start(sock)
            except (OSError, ssl.SSLError) as exc:
                raise ServeError(f"http: cannot serve on {settings.listen}: {exc}") from exc

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.http is not None:
            await self.http.stop()
        await self.tap.stop()

    # -- figures ----------------------------------------------------------------------------
    async def _sample_forever(self) -> None:
        while True:
            with contextlib.suppress(StoreError):
                await self.sample()
            await self.server.endpoint.timers.sleep(SAMPLE_S)

    async def sample(self) -> None:
        ep = self.server.endpoint
        guard = ep.overload
        self.tap.push_counts()
        self.metrics.sample(
            transactions=ep.live_transactions,
            connections=ep.transports.stats.connections_open,
            loop_lag_s=guard.lag_s if guard is not None else 0.0,
            overload_rejections=ep.stats.overload_rejections,
            malformed=ep.stats.malformed_requests + ep.stats.malformed_responses,
            registered=self.store.cached_binding_count(),
        )
        began = time.perf_counter()
        active = await self.store.call(self.store.store.count_active_calls)
        self.metrics.store_latency.observe(time.perf_counter() - began)
        self.metrics.active_calls.set(active)
        now = ep.wall()
        if now - self._last_sample >= HISTORY_EVERY_S:
            self._last_sample = now
            self._history.append(
                {
                    "at": now,
                    "active_calls": float(active),
                    "registered": float(self.store.cached_binding_count()),
                    "calls": float(self.metrics.calls_started._value.get()),
                    "transactions": float(ep.live_transactions),
                }
            )

    async def before_scrape(self) -> None:
        with contextlib.suppress(StoreError):
            await self.sample()

    def history(self) -> list[dict[str, float]]:
        return list(self._history)

    def wall(self) -> float:
        return self.server.endpoint.wall()

    def websockets(self) -> list[tuple[str, int]]:
        found = []
        for where in self.server.bound:  # "ws:127.0.0.1:8088", "wss:[::1]:8089"
            scheme, _, rest = where.partition(":")
            if scheme in ("ws", "wss"):
                found.append((scheme, int(rest.rpartition(":")[2])))
        return found

    def status(self) -> dict[str, Any]:
        line = self.server.status().removeprefix("status: ")
        doc: dict[str, Any] = {}
        for item in line.split():
            key, _, value = item.partition("=")
            doc[key] = int(value) if value.lstrip("-").isdigit() else value
        worker = self.server.worker
        doc["workers"] = worker.count if worker is not None else 1
        if worker is not None and worker.count > 1:
            # This process's counters are one worker's share: give the sums instead (the
            # other workers' are at most a second old).
            self.tap.push_counts()
            doc.update(self.metrics.totals())
            doc["counted_by"] = "all workers (the overload figures: worker 0)"
        doc["registered"] = self.store.cached_binding_count()
        doc["listening"] = self.server.bound
        doc["database"] = str(self.database)
        return doc

    async def _purge(self) -> None:
        """Each minute, close the call attempts that can no longer be ringing (Timer C
        and Timer B have long passed, §16.6 step 11, §17.1.1.2); each hour, forget the
        records older than `[cdr] keep_days`."""
        last_purge = 0.0
        while True:
            now = self.server.endpoint.wall()
            try:
                stale = now - self.ringing_s - 64 * 0.5 - STALE_MARGIN_S
                closed = await self.store.write(self.store.store.close_stale_calls, stale, now)
                if closed:
                    log.info("closed %d call attempts that never saw a final response", closed)
                if now - last_purge >= PURGE_EVERY_S:
                    last_purge = now
                    keep_s = self.settings.cdr.keep_days * 86400.0
                    gone = await self.store.write(self.store.store.purge_records, now - keep_s)
                    if gone:
                        log.info("purged %d call records, events and messages", gone)
            except StoreError as exc:
                log.warning("purging call records failed: %s", exc)
            await self.server.endpoint.timers.sleep(STALE_EVERY_S)

    # -- registrations ----------------------------------------------------------------------
    def contacts(self, request: Request) -> set[str] | None:
        """The contacts registered for the request's AOR before it is handled (from the
        binding cache, no I/O): a REGISTER that only refreshes one is no change."""
        try:
            to = request.to.uri
        except RemoteProtocolError:
            return None
        if not isinstance(to, SipUri):
            return None
        return {b.contact for b in self.store.bindings(to.aor, now=self.server.endpoint.wall())}

    def registered(
        self, request: Request, response: Response, source: str, known: set[str] | None = None
    ) -> None:
        """After the registrar answered a REGISTER: a log line and an event for each
        change (a new contact, a removal, a refusal; a refresh only at debug), counted."""
        status = response.status
        try:
            to = request.to.uri
            aor = to.aor if isinstance(to, SipUri) else str(to)
        except RemoteProtocolError:
            aor = "?"
        if status in (401, 407):
            self.metrics.registrations.labels("challenged").inc()
            return
        ua = (request.headers.get("User-Agent") or "")[:80]
        if status >= 300:
            self.metrics.registrations.labels("refused").inc()
            reg_log.info(
                "registration refused user=%s src=%s status=%d %s",
                aor,
                source,
                status,
                response.reason,
                extra={"event": "register_refused", "user": aor, "src": source},
            )
            self._event("register_refused", aor, source, f"{status} {response.reason}")
            return
        contacts = request.headers.get_all("Contact")
        if not contacts:  # a query (§10.2.3)
            self.metrics.registrations.labels("query").inc()
            return
        removing = request.contact_is_star or request.expires == 0
        uris: list[str] = []
        with contextlib.suppress(RemoteProtocolError):
            parsed = request.contacts
            uris = [c.uri_text for c in parsed]
            removing = removing or all(
                (c.expires if c.expires is not None else request.expires) == 0 for c in parsed
            )
        contact = contacts[0].split(",")[0].strip()[:200]
        if removing:
            kind, outcome, level = "unregistered", "removed", logging.INFO
        elif known is not None and uris and all(u in known for u in uris):
            kind, outcome, level = "refreshed", "refresh", logging.DEBUG
        else:
            kind, outcome, level = "registered", "ok", logging.INFO
        self.metrics.registrations.labels(outcome).inc()
        reg_log.log(
            level,
            "%s user=%s contact=%s src=%s expires=%s ua=%r",
            kind,
            aor,
            contact,
            source,
            request.expires if request.expires is not None else "-",
            ua,
            extra={"event": kind, "user": aor, "src": source},
        )
        if level == logging.INFO:
            self._event(kind, aor, source, contact)

    def _expired(self, gone: list[tuple[str, str]]) -> None:
        """Registrations that ran out without a refresh: a change like the others."""
        self.metrics.expired.inc(len(gone))
        for aor, contact in gone:
            reg_log.info(
                "expired user=%s contact=%s",
                aor,
                contact,
                extra={"event": "expired", "user": aor},
            )
            self._event("expired", aor, "", contact)

    def _auth_failed(self, request: Request, user: str, source: tuple[str, int]) -> None:
        self.metrics.auth_failures.labels(request.method[:16]).inc()
        host, port = source
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            transport = request.top_via.transport.lower()
        except RemoteProtocolError:
            transport = "?"
        self._event("auth_failed", user, f"{transport}:{where}", request.method)

    def _banned(self, host: str, seconds: float) -> None:
        self.metrics.bans.inc()
        self._event("banned", "", host, f"{round(seconds)} s")

    def _event(self, kind: str, user: str, source: str, detail: str) -> None:
        self.tap.event(OpsEvent(self.server.endpoint.wall(), kind, user, source, detail))

    # -- control ----------------------------------------------------------------------------
    async def end_call(self, call_id: str) -> bool:
        record = await self.store.call(self.store.store.get_call, call_id)
        if record is None or record.ended_at is not None or record.answered_at is None:
            return False
        messages = await self.store.call(self.store.store.call_messages, call_id)
        if not await send_hangup(self.server.endpoint, messages, self.server.backend):
            return False
        log.info("call ended by the operator call_id=%s", call_id, extra={"call_id": call_id})
        await self.store.write(self.store.store.cdr_ended, call_id, self.server.endpoint.wall(), "")
        return True

    async def reload(self) -> dict[str, Any]:
        """Re-read the configuration (SIGHUP, POST /api/reload). With workers, worker 0
        asks the supervisor, which passes SIGHUP to every worker."""
        worker = self.server.worker
        if worker is not None and worker.count > 1:
            os.kill(os.getppid(), signal.SIGHUP)
            return {"reloading": True, "workers": worker.count}
        return self.server.apply_reload()

    def apply(self, settings: OpsConfig, log_level: str) -> None:
        """Take reloaded settings: the log, the tap, the HTTP credentials."""
        self.settings = settings
        worker = self.server.worker
        configure_logging(log_level, settings.log.format, worker.index if worker else None)
        self.tap.apply(settings)
        if self.http is not None:
            self.http.apply(settings.http)
