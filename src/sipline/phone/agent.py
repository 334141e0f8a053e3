"""The user agent: one endpoint, a registration, and any number of calls.

See the package docstring (`sipline.phone`) for the API tour. This module owns the
endpoint's callbacks: requests are matched to calls by dialog (481 when none, §12.2.2),
new INVITEs become incoming calls, OPTIONS is answered (§11.2), and ACKs and late 2xx
responses are handed to their calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any

from sipline.core.clock import Entropy
from sipline.core.dialog import Dialog, DialogId, DialogTable
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.routing import Destination, Transport, is_ip_literal
from sipline.core.uri import AbsoluteUri, SipUri, Uri, format_host
from sipline.core.views import NameAddr
from sipline.media.sources import SinkLike, SourceLike
from sipline.phone.call import Call
from sipline.phone.config import ALLOW, SUPPORTED, UserAgentConfig, parse_aor, parse_hostport
from sipline.phone.credentials import DigestClient
from sipline.phone.events import EndedBy, UserAgentError
from sipline.phone.im import ACCEPT as MESSAGE_ACCEPT
from sipline.phone.im import IncomingMessage, read_message, send_message
from sipline.phone.media import CallMedia
from sipline.phone.registration import Registration
from sipline.phone.targets import target_uri
from sipline.phone.tls_files import TlsFiles
from sipline.phone.watch import PresencePublication, Watch, WatchUpdate
from sipline.runtime.endpoint import Endpoint, EndpointConfig, Inbound, ServerTransaction
from sipline.runtime.system import SystemEntropy
from sipline.transport import Source, Target
from sipline.transport.base import TransportError
from sipline.transport.layer import TransportLayer
from sipline.transport.resolver import ResolutionError, Resolver
from sipline.transport.tls import client_context

__all__ = ["CallHandler", "MessageHandler", "TransferPolicy", "UserAgent"]

log = logging.getLogger("sipline.ua")

CallHandler = Callable[[Call], Awaitable[None] | None]
MessageHandler = Callable[[IncomingMessage], Awaitable[None] | None]
TransferPolicy = Callable[[Call, str], Awaitable[bool] | bool]
_WILDCARDS = ("0.0.0.0", "::", "")
_DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}


def _source_address(towards: str | None) -> str:
    """The local address the kernel would use to reach `towards` (no packet is sent)."""
    family = socket.AF_INET6 if towards and ":" in towards else socket.AF_INET
    probe = towards or "192.0.2.1"  # TEST-NET-1: only the routing decision matters
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 9))
            return str(sock.getsockname()[0])
    except OSError:
        return "127.0.0.1"


class UserAgent:
    """A SIP user agent (see `sipline.phone` for a tour).

    `aor`: who we are (`alice@example.com`). `password` (and `username` when it is not
    the AOR's user) answers digest challenges. `server` ("host[:port]") is the
    registrar and outbound proxy; with it the agent registers on `start` unless
    `register=False`. `listen` is the local "host:port" (port 0 picks one).
    `auto_answer` answers every call; otherwise `on_call` is called with each incoming
    `Call`, or `next_call()` hands them out. Further settings: `UserAgentConfig`.
    """

    def __init__(
        self,
        aor: str,
        *,
        password: str | None = None,
        username: str | None = None,
        server: str | None = None,
        listen: str = "0.0.0.0:0",
        transport: str = "udp",
        register: bool | None = None,
        auto_answer: bool = False,
        on_call: CallHandler | None = None,
        on_transfer: TransferPolicy | None = None,
        on_message: MessageHandler | None = None,
        entropy: Entropy | None = None,
        config: UserAgentConfig | None = None,
        **settings: object,
    ) -> None:
        if config is None:
            host, port = parse_hostport(listen, default_port=0)
            config = UserAgentConfig(
                aor=parse_aor(aor),
                password=password,
                username=username,
                server=(
                    parse_hostport(server, _DEFAULT_PORTS.get(transport.upper(), 5060))
                    if server
                    else None
                ),
                transport=transport.upper(),
                listen_host=host,
                listen_port=port,
                register=register,
                auto_answer=auto_answer,
            )
            for name, value in settings.items():
                if not hasattr(config, name):
                    raise TypeError(f"unknown setting {name!r} (see UserAgentConfig)")
                setattr(config, name, value)
        elif settings:
            raise TypeError("give either config= or settings, not both")
        if config.transport not in ("UDP", "TCP", "TLS"):
            raise ValueError(f"transport: udp, tcp or tls, not {config.transport.lower()!r}")
        self.config = config
        self.entropy: Entropy = entropy if entropy is not None else SystemEntropy()
        self.on_call = on_call
        self.on_transfer = on_transfer
        self.on_message = on_message
        self.digest = (
            DigestClient(config.auth_username, config.password, entropy=self.entropy)
            if config.password is not None
            else None
        )
        self.dialogs = DialogTable()
        self.endpoint: Endpoint = self._make_endpoint()
        self.registration: Registration | None = None
        self._calls: list[Call] = []
        self._by_dialog: dict[DialogId, Call] = {}
        self._incoming: asyncio.Queue[Call] = asyncio.Queue()
        self._resolver = Resolver(transports=(Transport(config.transport),))
        self._public: tuple[str, int] | None = None
        # RFC 5626 §4.1: one instance id for the life of this agent (urn:uuid, RFC 4122 v4).
        self.instance_id = _uuid4(self.entropy.random_bytes(16))
        self._tls_files: TlsFiles | None = None
        self._started = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending_invites: dict[tuple[str, str, int], str] = {}  # merged requests, §8.2.2.2
        self._messages: asyncio.Queue[IncomingMessage] = asyncio.Queue()
        self._watches: dict[tuple[str, str], Watch] = {}  # (Call-ID, our tag) -> subscription
        self.publication: PresencePublication | None = None

    def _make_endpoint(self) -> Endpoint:
        config = self.config
        advertise = config.advertise
        if advertise is None and config.listen_host not in _WILDCARDS:
            advertise = config.listen_host
        if advertise is None:
            server = config.server[0] if config.server else None
            # A name would need DNS here (blocking): ask about the default route instead.
            advertise = _source_address(server if server and is_ip_literal(server) else None)
        self._advertise_host = advertise
        transports = None
        if config.transport == "TLS":
            context = client_context(ca_path=config.tls_ca_file, verify=config.tls_verify)
            transports = TransportLayer(lambda *_: None, tls_client_context=context)
        endpoint = Endpoint(
            EndpointConfig(timers=config.timers, advertise=advertise, user_agent=config.user_agent),
            entropy=self.entropy,
            transports=transports,
        )
        endpoint.on_request = self._on_request
        endpoint.on_ack = self._on_ack
        endpoint.on_stray_response = self._on_stray
        return endpoint

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen, and register when a server is configured."""
        if self._started:
            return
        self._started = True
        config = self.config
        try:
            ssl_context = None
            if config.transport == "TLS":
                # Requests for us come back over our registration's flow (RFC 5626);
                # the listener our Contact names takes new connections (a peer's
                # BYE) with a certificate made for this run.
                self._tls_files = TlsFiles.create()
                ssl_context = self._tls_files.server_context()
            await self.endpoint.bind(
                config.transport,
                config.listen_host,
                config.listen_port,
                ssl_context=ssl_context,
                sock=config.listen_socket,
            )
        except TransportError as exc:  # the port is taken, the address is not ours, ...
            self._started = False
            raise UserAgentError(str(exc)) from None
        if config.should_register:
            await self.register()
        elif config.server is not None:
            await self._server_target()  # a server name that does not resolve fails here

    async def __aenter__(self) -> UserAgent:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Hang up every call, unregister, close the sockets."""
        calls = [c for c in self._calls if c.is_active]
        if calls:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(c.hangup() for c in calls), return_exceptions=True),
                    2 * self.config.timers.t1 * 8,
                )
        for call in calls:
            if call.is_active:
                await call._end("the user agent closed", EndedBy.LOCAL)
        for watch in list(self._watches.values()):
            with contextlib.suppress(Exception):
                await watch.close()
        if self.publication is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.publication.remove(), 5)
        if self.registration is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.registration.unregister(), 5)
            self.registration.stop()
        for task in list(self._tasks):
            task.cancel()
        await self.endpoint.close()
        if self._tls_files is not None:
            self._tls_files.remove()

    # -- registration -------------------------------------------------------------------------
    async def register(self) -> Response:
        """REGISTER with the server (raises `RegistrationError`); refreshed until close."""
        if self.config.server is None:
            raise UserAgentError("no server to register with")
        if self.registration is None:
            self.registration = Registration(
                self.endpoint,
                aor=self.config.aor,
                registrar=await self._server_target(),
                contact=self.contact,
                digest=self.digest,
                expires_s=self.config.register_expires_s,
                keepalive_s=self.config.keepalive_s,
                headers=self._register_headers,
                # Over UDP the 200's Via tells our NAT mapping (RFC 3581). Over TCP/TLS
                # its rport is our connection's ephemeral port, which takes no new
                # connections: the flow itself is the way back (RFC 5626 §4.2).
                on_public_address=None if self.config.reliable else self._learned_public_address,
                outbound=self.config.reliable,
                instance_id=self.instance_id,
            )
        return await self.registration.register()

    async def unregister(self) -> None:
        if self.registration is not None:
            await self.registration.unregister()

    def _register_headers(self) -> list[tuple[str, str]]:
        headers = [("User-Agent", self.config.user_agent)]
        if self.config.reliable:
            headers.append(("Supported", "outbound, path"))  # RFC 5626 §4.2.1
        return headers

    def _learned_public_address(self, host: str, port: int) -> None:
        log.info("behind NAT: reachable at %s:%d", host, port)
        self._public = (host, port)

    @property
    def registered(self) -> bool:
        return self.registration is not None and self.registration.registered

    # -- calls --------------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        """The calls not yet ended."""
        return [c for c in self._calls if c.is_active]

    def _target_uri(self, target: str) -> Uri:
        try:
            return target_uri(target, self.config.aor.host, self.config.emergency_numbers)
        except ValueError as exc:
            raise UserAgentError(str(exc)) from None

    async def call(
        self,
        target: str,
        *,
        play: SourceLike | None = None,
        record: SinkLike | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Call:
        """Call `target` (a SIP URI, `user@host`, or a user of our own domain). Returns at
        once; await `call.answered` for the answer."""
        uri = self._target_uri(target)
        if isinstance(uri, AbsoluteUri) and self.config.server is None:
            # A service URN is routed by the outbound proxy (RFC 6881 §9.3), not by DNS.
            raise UserAgentError(f"calling {uri} needs a server (--server) to route it")
        await self.start()
        local = NameAddr.of(self.config.aor, self.config.display_name, tag=self.endpoint.new_tag())
        call = Call(
            self,
            outgoing=True,
            local=local,
            remote=NameAddr.of(uri),
            call_id=self.endpoint.new_call_id(),
            media=self.new_media(),
        )
        self._calls.append(call)
        if play is not None:
            call.play(play)
        if record is not None:
            call.record(record)
        call._spawn(call._place(uri, list(headers or [])))
        return call

    async def next_call(self, timeout: float | None = None) -> Call:
        """The next incoming call that no `on_call` handler took."""
        return await asyncio.wait_for(self._incoming.get(), timeout)

    # -- messages and presence ---------------------------------------------------------------
    async def send_message(
        self,
        target: str,
        text: str | bytes,
        *,
        content_type: str = "text/plain;charset=utf-8",
        cpim: bool = False,
    ) -> Response:
        """Send a MESSAGE (RFC 3428) to `target`; the final response (202 when the
        server stored it for an offline user). Raises `MessageFailed`."""
        return await send_message(self, target, text, content_type=content_type, cpim=cpim)

    async def next_message(self, timeout: float | None = None) -> IncomingMessage:
        """The next message received that no `on_message` handler took."""
        return await asyncio.wait_for(self._messages.get(), timeout)

    async def watch(
        self,
        target: str,
        event: str = "presence",
        *,
        expires_s: int = 600,
        on_update: Callable[[WatchUpdate], None] | None = None,
    ) -> Watch:
        """Subscribe to `target`'s presence (or `message-summary`); raises
        `UserAgentError` when refused."""
        await self.start()
        watch = Watch(
            self, self._target_uri(target), event, expires_s=expires_s, on_update=on_update
        )
        await watch.start()
        return watch

    async def publish(
        self, status: str = "online", note: str | None = None, *, expires_s: int = 3600
    ) -> PresencePublication:
        """Publish our presence (online, away, busy, offline); later calls update it."""
        if self.publication is None:
            self.publication = PresencePublication(self, expires_s=expires_s)
        await self.publication.update(status, note)
        return self.publication

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(_discard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_message(self, st: ServerTransaction) -> None:
        """RFC 3428 §7: 200 for a message we can show, 415 with Accept otherwise."""
        found = read_message(st.request)
        if isinstance(found, int):
            extra = [("Accept", MESSAGE_ACCEPT)] if found == 415 else []
            st.respond(found, extra=extra)
            return
        st.respond(200)
        if found is None:
            return
        if self.on_message is not None:
            result = self.on_message(found)
            if inspect.isawaitable(result):
                self._spawn(_awaited(result))
        else:
            self._messages.put_nowait(found)

    def _on_notify(self, st: ServerTransaction) -> bool:
        request = st.request
        watch = self._watches.get((request.call_id, request.to.tag or ""))
        if watch is None:
            return False
        watch._on_notify(st)
        return True

    # -- the CallHost interface ---------------------------------------------------------------
    def contact(self) -> NameAddr:
        """Our Contact: where requests for us go (the public address once known)."""
        item = self.endpoint.local_address(self.config.transport)
        host, port = self._public or (item.advertise, item.port)
        uri = SipUri("sip", self.config.aor.user, None, host, port)
        if self.config.reliable:
            uri.params.set("transport", self.config.transport.lower())
            if self.config.server is not None:
                uri.params.set("ob", None)  # RFC 5626 §5.4: route back over our flow
        return NameAddr.of(uri)

    def headers(self) -> list[tuple[str, str]]:
        return [("User-Agent", self.config.user_agent), ("Allow", ALLOW), ("Supported", SUPPORTED)]

    def initial_routes(self) -> list[NameAddr]:
        """§8.1.2: the outbound proxy as a pre-existing route set (loose routing)."""
        server = self.config.server
        if server is None:
            return []
        params = f";transport={self.config.transport.lower()}" if self.config.reliable else ""
        return [NameAddr(f"sip:{format_host(server[0])}:{server[1]}{params};lr")]

    async def _server_target(self) -> Target:
        server = self.config.server
        assert server is not None
        host, port = server
        if is_ip_literal(host):
            return Target(self.config.transport, host, port)
        return await self.resolve(SipUri("sip", None, None, host, port))

    async def first_hop(self, uri: Uri) -> Target:
        """Where a request outside any dialog goes: the outbound proxy, else RFC 3263."""
        if self.config.server is not None:
            return await self._server_target()
        return await self.resolve(uri)

    async def resolve(self, uri: Uri) -> Target:
        """RFC 3263 for a URI (IP literals need no DNS)."""
        if not isinstance(uri, SipUri):
            raise UserAgentError(f"cannot route to {uri}")
        host = uri.maddr or uri.host
        transport = uri.transport or ("TLS" if uri.secure else self.config.transport)
        if is_ip_literal(host):
            return self._usable(
                Target(transport, host.strip("[]"), uri.port or _DEFAULT_PORTS.get(transport, 5060))
            )
        try:
            targets = await self._resolver.resolve(
                Destination(
                    host=uri.host,
                    scheme=uri.scheme,
                    port=uri.port,
                    transport=uri.transport,
                    maddr=uri.maddr,
                )
            )
        except ResolutionError as exc:
            raise UserAgentError(f"cannot resolve {host}: {exc}") from None
        first = targets[0]
        return self._usable(Target(str(first.transport), first.host, first.port, first.server_name))

    def _usable(self, target: Target) -> Target:
        """A target over a transport we have: our Via names our listener for it (§18.1.1)."""
        try:
            self.endpoint.local_address(target.transport)
        except LocalProtocolError:
            raise UserAgentError(
                f"{target.host}:{target.port} needs {target.transport}, and this agent uses "
                f"{self.config.transport} (--transport {target.transport.lower()})"
            ) from None
        return target

    def new_media(self) -> CallMedia:
        config = self.config
        bind = config.listen_host or "0.0.0.0"
        return CallMedia(
            config.media,
            entropy=self.entropy,
            bind_host=bind,
            advertise_host=self._advertise_host,
            username=config.aor.user or "-",
            mapper=config.media_mapper,
        )

    def bind_dialog(self, dialog: Dialog, call: Call) -> None:
        self._by_dialog[dialog.id] = call

    def call_ended(self, call: Call) -> None:
        for dialog_id in [d for d, c in self._by_dialog.items() if c is call]:
            del self._by_dialog[dialog_id]
            dialog = self.dialogs.get(dialog_id)
            if dialog is not None:
                dialog.terminate()
        self.dialogs.purge()
        with contextlib.suppress(ValueError):
            self._calls.remove(call)
        for key in [k for k, _ in self._pending_invites.items() if k[0] == call.call_id]:
            del self._pending_invites[key]

    async def transfer_call(self, target: str, *, referred_by: str, like: Call) -> Call:
        return await self.call(target, play=like._play_spec, headers=[("Referred-By", referred_by)])

    async def allow_transfer(self, call: Call, target: str) -> bool:
        policy = self.on_transfer
        if policy is None:
            return True
        verdict = policy(call, target)
        if inspect.isawaitable(verdict):
            return bool(await verdict)
        return bool(verdict)

    # -- the endpoint's callbacks ---------------------------------------------------------------
    def _on_request(self, st: ServerTransaction) -> Awaitable[None] | None:
        request = st.request
        method = request.method
        if method == "NOTIFY" and self._on_notify(st):
            return None
        if method == "MESSAGE":
            self._on_message(st)  # in or out of a dialog alike (RFC 3428 §4)
            return None
        if request.to.tag is not None:
            try:
                dialog = self.dialogs.receive_request(request)
            except RemoteProtocolError as exc:
                st.respond(exc.status, exc.reason)
                return None
            call = self._by_dialog.get(dialog.id) if dialog is not None else None
            if call is None or not call.is_active:
                st.respond(481)
                return None
            return call._on_request(st)
        if method == "INVITE":
            return self._on_invite(st)
        if method == "OPTIONS":
            st.respond(
                200,
                extra=[*self.headers(), ("Accept", "application/sdp")],
            )
            return None
        if method in ("BYE", "NOTIFY", "INFO", "UPDATE", "PRACK"):
            st.respond(481)  # these only make sense inside a dialog
            return None
        st.respond(405, extra=[("Allow", ALLOW)])
        return None

    async def _on_invite(self, st: ServerTransaction) -> None:
        request = st.request
        key = (request.call_id, request.from_.tag or "", request.cseq.seq)
        branch = request.top_via.branch or ""
        seen = self._pending_invites.get(key)
        if seen is not None and seen != branch:
            st.respond(482, "Loop Detected (merged request)")  # §8.2.2.2
            return
        self._pending_invites[key] = branch
        call = Call(
            self,
            outgoing=False,
            local=request.to.copy(),
            remote=request.from_.copy(),
            call_id=request.call_id,
            media=self.new_media(),
        )
        self._calls.append(call)
        try:
            accepted = await call._receive(st)
        except RemoteProtocolError:
            await call._end("unusable INVITE", EndedBy.LOCAL, 400)
            raise  # the endpoint answers with the status the error carries
        if not accepted:
            await call._end("INVITE refused", EndedBy.LOCAL)
            return
        if self.on_call is not None:
            result = self.on_call(call)
            if inspect.isawaitable(result):
                call._spawn(result)
        elif self.config.auto_answer:
            call._spawn(self._auto_answer(call))
        else:
            self._incoming.put_nowait(call)

    async def _auto_answer(self, call: Call) -> None:
        if self.config.ring_s > 0:
            await asyncio.sleep(self.config.ring_s)
        if call.is_active and not call.answered.done():
            await call.answer()

    def _on_ack(self, request: Request, inbound: Inbound) -> None:
        dialog = self.dialogs.match(request)
        call = self._by_dialog.get(dialog.id) if dialog is not None else None
        if call is not None:
            call._on_ack(request)

    def _on_stray(self, response: Response, source: Source) -> None:
        try:
            dialog_id = DialogId.of_response(response)
            method = response.cseq.method
        except RemoteProtocolError:
            return
        if dialog_id is None or method != "INVITE" or not 200 <= response.status < 300:
            return
        call = self._by_dialog.get(dialog_id)
        if call is not None:
            call._on_stray_2xx(response)


def _uuid4(random: bytes) -> str:
    """RFC 4122 §4.4: a version 4 UUID from 16 random bytes, as a URN."""
    b = bytearray(random)
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def _awaited(result: Awaitable[None]) -> None:
    await result


async def _discard(coro: Coroutine[Any, Any, object]) -> None:
    await coro
