"""`sipline serve`: the SIP server that ties the applications to one endpoint.

Requests are routed by what they ask of us: OPTIONS to the server itself is answered
here (§11), REGISTER for a served domain goes to the registrar (§10), and every other
request is proxied (§16) or redirected (§8.3) depending on the configured mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sipline.core.builders import build_response, stateless_tag
from sipline.core.clock import Clock
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Limits, Request, Response
from sipline.core.uri import SipUri
from sipline.core.validate import validate
from sipline.runtime.endpoint import Endpoint, EndpointConfig, Inbound, ServerTransaction
from sipline.runtime.siblings import join_siblings
from sipline.runtime.system import MemoryRelease
from sipline.server.backend import ServerBackend
from sipline.server.bridge.anchor import MediaBridges, media_bridges
from sipline.server.checking import start_checking
from sipline.server.component_config import feature_settings, overload_config, registrar_config
from sipline.server.config import ServerConfig
from sipline.server.features.routing_service import ServerRoutePlanner
from sipline.server.flood import emergency_spare, flood_config
from sipline.server.hops import Flows
from sipline.server.media_services.registry import ServiceRegistry
from sipline.server.media_services.setup import register_services, start_media_host
from sipline.server.messaging.router import ImRouter
from sipline.server.node import process_id
from sipline.server.ops.service import OpsService
from sipline.server.proxy import Proxy, ProxyConfig
from sipline.server.registrar import Registrar, registration_domain
from sipline.server.reload import reload
from sipline.server.security.gate import RelayGate
from sipline.server.security.log import add_log_file
from sipline.server.security.monitor import SecurityMonitor
from sipline.server.security.route_sign import RouteSigner
from sipline.server.startup import ServeError, WorkerSetup, record_domains, tls_context
from sipline.server.status_line import status_line
from sipline.server.upkeep import start_upkeep
from sipline.server.voicemail.setup import Voicemail
from sipline.storage.aio import AsyncStore
from sipline.storage.base import StoreBusyError, StoreError
from sipline.transport import TransportError, TransportLayer, WsPolicy
from sipline.transport.resolver import Resolver

if TYPE_CHECKING:  # loaded only by the process that runs the media host
    from sipline.server.media_services.host import MediaHost

__all__ = ["ALLOW", "SUPPORTED", "ServeError", "SipServer", "WorkerSetup", "tls_context"]

log = logging.getLogger("sipline.server")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, SUBSCRIBE, NOTIFY, PUBLISH, REFER, INFO, UPDATE, PRACK"
SUPPORTED = "path, outbound"
ACCEPT = "application/sdp, text/plain, message/cpim"


class SipServer:
    def __init__(
        self, config: ServerConfig, *, clock: Clock | None = None, worker: WorkerSetup | None = None
    ) -> None:
        self.config = config
        self.worker = worker
        cfg = config.limits
        limits = Limits(max_message_bytes=cfg.max_message_bytes)
        # limits.max_connections bounds the server: each worker takes its share.
        count = worker.count if worker is not None else 1
        transports = TransportLayer(
            lambda data, source: None,
            max_connections=-(-cfg.max_connections // count),
            max_connections_per_source=-(-cfg.max_connections_per_source // count),
            idle_timeout_s=cfg.idle_timeout_s,
            message_timeout_s=cfg.message_timeout_s,
        )
        self.endpoint = Endpoint(
            EndpointConfig(limits=limits, advertise=config.server.advertise),
            transports=transports,
            clock=clock,  # the wall clock schedules and expiries read (tests fix it)
        )
        self.endpoint.on_request = self.handle_request
        self.endpoint.stateless_handler = self.answer_statelessly
        self.bound: list[str] = []
        self._local_hosts: set[str] = set()
        self.store: AsyncStore | None = None
        self.backend: ServerBackend | None = None
        self.proxy: Proxy | None = None
        self.registrar: Registrar | None = None
        self.planner: ServerRoutePlanner | None = None
        self.im: ImRouter | None = None  # messaging and presence (README "Messaging and presence")
        self.ops: OpsService | None = None  # records, metrics, HTTP (README "Operating sipline")
        self._upkeep: list[asyncio.Task[None]] = []  # server/upkeep.py
        self._memory = MemoryRelease()
        self.security: SecurityMonitor | None = None
        self.gate: RelayGate | None = None
        self._log_handler: logging.Handler | None = None
        # Service addresses answered by the media host (README "Conference rooms").
        self.services = ServiceRegistry()
        register_services(
            self.services,
            config.media,
            config.conference,
            config.rooms,
            config.server.database,
            self.endpoint.timers,
            config.server.node_name,
        )
        self.media_host: MediaHost | None = None
        self.bridges: MediaBridges | None = None
        self.voicemail: Voicemail | None = None  # README "Voicemail and email"
        # Set by `sipline serve`: re-read the configuration file (None: nothing to read).
        self.load_config: Callable[[], ServerConfig] | None = None

    async def _open_store(self) -> None:
        try:
            self.store = await AsyncStore.open(
                self.config.server.database, max_queue=self.config.overload.max_store_queue
            )
        except StoreError as exc:
            raise ServeError(str(exc)) from exc
        ep = self.endpoint
        worker = self.worker
        # Other workers, other nodes (server/node.py) or the CLI write bindings too.
        self.store.shared = True
        cfg = self.config
        node, index = cfg.server.node_name, worker.index if worker is not None else 0
        checking = await start_checking(cfg, self.store, ep, worker)
        self.security, authenticator = checking.security, checking.authenticator
        policy, secret = checking.policy, checking.secret
        self.backend = ServerBackend(
            self.store,
            authenticator,
            Resolver(clock=ep.clock),  # DNS TTLs on the server's clock
            domains=list(cfg.server.domains),
            wall=ep.wall,
            now=ep.now,
        )
        await record_domains(self.store, cfg.server.domains)
        await self.backend.refresh_domains()
        self.registrar = Registrar(
            self.store,
            entropy=ep.entropy,
            authenticator=authenticator,
            config=registrar_config(cfg.registrar),
            domains=list(cfg.server.domains),
            names_me=self.names_me,
        )
        self.planner = ServerRoutePlanner(
            self.store,
            is_local=self.backend.is_local_domain,
            bindings=self.backend.bindings,
            settings=feature_settings(self.config),
            wall=ep.wall,
            host=lambda: ep.local_address().advertise,
            skip=self.redirects,
            on_missed=self._missed_call,
            missed_wanted=lambda: self.voicemail is not None and self.voicemail.notifies_missed,
            timers=ep.timers,
        )
        await self.planner.start()
        self.proxy = Proxy(
            ep,
            self.backend,
            ProxyConfig(
                record_route=cfg.server.record_route,
                timer_c_s=cfg.limits.timer_c_s,
                authenticate_calls=cfg.auth.authenticate_calls,
            ),
            redirect=self,
            services=self.services,
            planner=self.planner,
        )
        self.proxy.route_signer = RouteSigner(secret)
        # A binding records its flow and the process holding it (server/hops.py).
        flows = Flows(ep, secret, worker.index if worker is not None else 0, self.proxy.is_me)
        self.backend.flows = self.proxy.flows = self.proxy.local.flows = flows
        self.registrar.flow_uri = flows.flow_uri
        self.gate = RelayGate(
            policy,
            self.backend,
            authenticator,
            default_realm=self._default_realm,
            now=ep.now,
            is_me=self.proxy.is_me,
        )
        self.proxy.gate = self.gate
        self.im = ImRouter(
            ep,
            self.store,
            self.backend,
            cfg.presence,
            cfg.messaging,
            authenticate_calls=cfg.auth.authenticate_calls,
            proxy_handle=self.proxy.handle,
            is_me=self.proxy.is_me,
            is_server_uri=self.is_local,
            # One owner id per process sharing the store, NODE/WORKER (stable across
            # restarts): each resumes and notifies the subscriptions it owns.
            owner=process_id(node, index),
            is_trusted=self.gate.trusted_source,
        )
        im = self.im
        self.voicemail = Voicemail(
            self.store,
            cfg.voicemail,
            cfg.email,
            authenticate_calls=cfg.auth.authenticate_calls,
            timers=ep.timers,
            notify=lambda aor: im.notifier.changed("message-summary", aor),
            spawn=ep.spawn,
        )
        self.voicemail.register(self.services)

    def _missed_call(self, aor: str, caller: str) -> None:
        if self.voicemail is not None:
            self.voicemail.missed(aor, caller)

    def _default_realm(self) -> str | None:
        """The realm a stranger is challenged in: the first configured domain, else the
        first one served."""
        if self.config.server.domains:
            return self.config.server.domains[0]
        assert self.backend is not None
        return min(self.backend.domains) if self.backend.domains else None

    def redirects(self, aor: str) -> bool:
        """Redirect server mode (§8.3): for every user, or the configured ones."""
        server = self.config.server
        return server.mode == "redirect" or aor in server.redirect_users

    # -- start and stop -------------------------------------------------------------------
    async def start(self) -> list[str]:
        """Open the store and every listener; raise `ServeError` naming what failed."""
        path = self.config.security.log_file
        if path is not None and self._log_handler is None:
            try:
                self._log_handler = add_log_file(path)
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                raise ServeError(f"cannot open security.log_file {path}: {reason}") from exc
        await self._open_store()
        assert self.im is not None and self.store is not None and self.backend is not None
        self._enable_overload(self.store)
        self._enable_flood()
        self._upkeep = start_upkeep(
            self.endpoint, self.store, self.backend, self._memory, security=self.security
        )
        worker = self.worker
        # Known before any listener opens: a worker's shared socket already holds what
        # the kernel queued for it, read at the first await below, and an OPTIONS to
        # 127.0.0.1 must be ours by then (it got 404 when these came last).
        self._local_hosts.update({"127.0.0.1", "::1", "localhost"})
        self._local_hosts.update(spec.host for spec in self.config.server.listen)
        if self.config.server.advertise:
            self._local_hosts.add(self.config.server.advertise)
        tls: ssl.SSLContext | None = None
        self.endpoint.transports.ws_policy = WsPolicy(
            origins=self.config.server.ws_origins, trusted_host=self._ours
        )
        for i, spec in enumerate(self.config.server.listen):
            if spec.transport in ("TLS", "WSS") and tls is None:
                tls = tls_context(self.config.tls, self.config.server.database)
            try:
                host, port = await self.endpoint.bind(
                    spec.transport,
                    spec.host,
                    spec.port,
                    ssl_context=tls,
                    sock=worker.sockets[i] if worker is not None else None,
                )
            except (OSError, TransportError) as exc:
                await self.stop()
                cause = exc if isinstance(exc, OSError) else exc.__cause__
                reason = (
                    cause.strerror if isinstance(cause, OSError) and cause.strerror else str(exc)
                )
                raise ServeError(f"cannot listen on {spec}: {reason.lower()}") from exc
            where = f"{spec.transport.lower()}:{'[' + host + ']' if ':' in host else host}:{port}"
            self.bound.append(where)
            self._local_hosts.add(host)
            log.log(logging.DEBUG if worker else logging.INFO, "listening on %s", where)
        if worker is not None and worker.channel is not None and worker.channel_dir:
            join_siblings(  # flows and responses other workers hold reach them
                self.endpoint, worker.index, worker.count, worker.channel, worker.channel_dir
            )
        await self.im.start()  # resumes stored subscriptions: needs the listeners
        media, domains = self.config.media, self.config.server.domains
        try:
            clock = self.endpoint.clock
            self.media_host = await start_media_host(self.services, media, domains, worker, clock)
        except OSError as exc:
            await self.stop()
            raise ServeError(str(exc)) from exc
        if media.enabled and self.proxy is not None:  # docs/architecture.md "Media bridge"
            self.bridges = self.proxy.anchor = media_bridges(self.endpoint)
        self.ops = OpsService(
            self,
            self.store,
            self.config.ops,
            regions=[r.name for r in self.config.regions],
            database=self.config.server.database,
            ringing_s=self.config.limits.timer_c_s,
        )
        try:
            await self.ops.start(worker.http if worker is not None else None)
        except ServeError:
            await self.stop()
            raise
        return self.bound

    def apply_reload(self) -> dict[str, Any]:
        """Re-read the configuration (`load_config`) and apply what can change live."""
        return reload(self.config, self.load_config, self.reconfigure)

    def reconfigure(self, config: ServerConfig) -> None:
        """Take a reloaded configuration whose changes are all live ones
        (server/reload.py LIVE_KEYS)."""
        self.config = config
        if self.registrar is not None:
            self.registrar.config = registrar_config(config.registrar)
        if self.backend is not None:
            self.backend.set_configured_domains(config.server.domains)
        if self.ops is not None:
            self.ops.apply(config.ops, config.server.log_level)

    def _enable_overload(self, store: AsyncStore) -> None:
        """Overload control (README "Overload control", RFC 3261 §21.5.4)."""
        guard = self.endpoint.enable_overload(overload_config(self.config.overload))
        guard.backlog = lambda: store.backlog
        self.endpoint.busy_errors = (StoreBusyError,)

    def _enable_flood(self) -> None:
        """Per-source flood control in front of the overload control (README "Running
        on the Internet"); its exempt networks are spared the per-source connection cap."""
        assert self.backend is not None
        guard = self.endpoint.enable_flood(flood_config(self.config.security, self.config.trusted))
        guard.spare = emergency_spare(self.backend, self.config.emergency.numbers)
        self.endpoint.transports.exempt_source = guard.exempt

    def status(self) -> str:
        """One line for operators and tests: live transactions and message counters."""
        return status_line(self.endpoint, self.store)

    async def stop(self) -> None:
        for task in self._upkeep:
            task.cancel()
        if self.ops is not None:
            await self.ops.stop()
        if self._log_handler is not None:
            logging.getLogger("sipline.security").removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None
        for service in (self.media_host, self.bridges, self.voicemail):
            if service is not None:
                await service.stop()
        if self.planner is not None:
            await self.planner.stop()
        if self.im is not None:
            await self.im.stop()
        await self.endpoint.close()  # and a worker's channel to the others
        if self.store is not None:
            await self.store.close()

    # -- requests -------------------------------------------------------------------------
    def names_me(self, uri: SipUri) -> bool:
        """Is `uri` this server's own address (a listening address, the advertised
        host, localhost), with or without a port, and not a domain it serves?"""
        assert self.backend is not None
        host = uri.host.lower()
        return host in self._local_hosts and not self.backend.is_local_domain(host)

    def is_local(self, uri: object) -> bool:
        """Does this Request-URI name the server itself (not a user)?"""
        return (
            isinstance(uri, SipUri)
            and uri.user is None
            and (
                uri.host.lower() in self._local_hosts
                or uri.host.lower() in self.config.server.domains
            )
        )

    def answer_statelessly(self, request: Request, inbound: Inbound) -> Response | None:
        """OPTIONS to the server itself (§11.2: what we support, so a peer or a monitor can
        find out), answered without a transaction (§8.2.7): a retransmission is simply
        answered again, and a flood of keep-alive probes holds no memory."""
        if request.method == "OPTIONS" and not request.routes and self.is_local(request.uri):
            return build_response(
                request,
                200,
                to_tag=stateless_tag(request),
                extra=[("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", SUPPORTED)],
            )
        return None

    def handle_request(self, st: ServerTransaction) -> Awaitable[None] | None:
        assert self.proxy is not None
        request = st.request
        security = self.security
        if (
            security is not None
            and security.banned(st.inbound.remote[0])
            and not (self.planner is not None and self.planner.exempt_from_auth(request))
        ):
            # A source banned for failed authentication (README "Running on the
            # Internet"); emergency calls are never refused.
            security.refuse(st.inbound.remote, request)
            st.respond(403, "Forbidden")
            return None
        try:
            # §8.2.6 / RFC 4475 §3.1.2: a malformed request whose answer can be routed
            # gets 400 (or what the defect calls for), its reason naming the defect, as
            # `sipline check` says; never forwarded half understood.
            validate(request, self.endpoint.config.limits)
        except RemoteProtocolError as exc:
            st.respond(exc.status, exc.reason)
            return None
        if request.method == "REGISTER" and self._is_registrar_uri(request.uri):
            return self._register(st)
        if self.im is not None:
            routed = self.im.route(st)  # MESSAGE, SUBSCRIBE, PUBLISH for our users
            if routed is not None:
                return routed
        return self.proxy.handle(st)

    def _is_registrar_uri(self, uri: object) -> bool:
        """§10.3: a REGISTER addressed to a domain we serve (or to us) is ours; one for
        another domain is proxied towards that domain's registrar."""
        return isinstance(uri, SipUri) and uri.user is None and self._ours(uri.host.lower())

    def _ours(self, host: str) -> bool:  # a served domain or our own name
        assert self.backend is not None
        return self.backend.is_local_domain(host) or host in self._local_hosts

    async def _register(self, st: ServerTransaction) -> None:
        """§10.3 by the registrar; then the devices' locations for routing (RFC 6442)."""
        assert self.registrar is not None and self.backend is not None
        assert self.planner is not None
        source = st.inbound.source
        uri = st.request.uri
        if isinstance(uri, SipUri):
            with contextlib.suppress(RemoteProtocolError):  # the registrar answers a bad To
                if not self.backend.is_local_domain(registration_domain(st.request, self.names_me)):
                    await self.backend.refresh_domains()  # added from the CLI a moment ago?
        known = self.ops.contacts(st.request) if self.ops is not None else None
        response = await self.registrar.handle(
            st.request,
            source=(source.transport, source.remote[0], source.remote[1]),
            now_wall=self.endpoint.wall(),
            now=self.endpoint.now(),
        )
        st.send(response)
        if self.ops is not None:
            self.ops.registered(
                st.request,
                response,
                f"{source.transport.lower()}:{source.remote[0]}:{source.remote[1]}",
                known,
            )
        if response.status == 200 and self.im is not None and isinstance(uri, SipUri):
            with contextlib.suppress(RemoteProtocolError):
                to = st.request.to.uri
                if isinstance(to, SipUri):
                    self.im.registered(to.aor)  # stored messages, presence watchers
        if response.status == 200:
            try:
                await self.planner.record_registration(st.request, source.remote[0])
            except StoreError as exc:
                log.warning("cannot store the location of a registration: %s", exc)
