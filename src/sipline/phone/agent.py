"""The user agent: one endpoint, a registration, and any number of calls.

See the package docstring (`sipline.phone`) for the API tour. This module owns the
endpoint's callbacks: requests inside a dialog go to their call (`calls.py`), new
INVITEs become incoming calls, NOTIFY goes to its subscription, MESSAGE to the inbox,
and OPTIONS is answered (§11.2). Where requests go is `addressing.py`; how they are
sent (digest challenges answered) is `requests.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any

from sipline.core.clock import Clock, Entropy
from sipline.core.dialog import Dialog, DialogTable
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import AbsoluteUri, Uri
from sipline.core.views import NameAddr
from sipline.media_io.sources import SinkLike, SourceLike
from sipline.phone.addressing import Addressing, advertised_host, uuid4_urn
from sipline.phone.call import Call
from sipline.phone.calls import CallTable
from sipline.phone.config import ALLOW, SUPPORTED, UserAgentConfig
from sipline.phone.credentials import DigestClient
from sipline.phone.events import EndedBy, UserAgentError
from sipline.phone.im import IncomingMessage, MessageInbox, send_message
from sipline.phone.media import CallMedia
from sipline.phone.registration import Registration
from sipline.phone.requests import RequestSender
from sipline.phone.tls_files import TlsFiles
from sipline.phone.watch import PresencePublication, Watch, WatchUpdate
from sipline.runtime.endpoint import Endpoint, EndpointConfig, Inbound, ServerTransaction
from sipline.runtime.system import SystemEntropy
from sipline.transport import Source, Target
from sipline.transport.base import TransportError
from sipline.transport.layer import TransportLayer
from sipline.transport.tls import client_context

__all__ = ["CallHandler", "MessageHandler", "TransferPolicy", "UserAgent"]

log = logging.getLogger("sipline.ua")

CallHandler = Callable[[Call], Awaitable[None] | None]
MessageHandler = Callable[[IncomingMessage], Awaitable[None] | None]
TransferPolicy = Callable[[Call, str], Awaitable[bool] | bool]


class UserAgent:
    """A SIP user agent (see `sipline.phone` for a tour).

    `aor`: who we are (`alice@example.com`). `password` (and `username` when it is not
    the AOR's user) answers digest challenges. `server` ("host[:port]") is the
    registrar and outbound proxy; with it the agent registers on `start` unless
    `register=False`. `listen` is the local "host:port" (port 0 picks one).
    `auto_answer` answers every call; otherwise `on_call` is called with each incoming
    `Call`, or `next_call()` hands them out. `clock` drives every timer of the agent
    (`sipline.testing.FakeClock` in tests). Further settings: `UserAgentConfig`.
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
        clock: Clock | None = None,
        config: UserAgentConfig | None = None,
        **settings: object,
    ) -> None:
        if config is None:
            config = UserAgentConfig.of(
                aor,
                password=password,
                username=username,
                server=server,
                listen=listen,
                transport=transport,
                register=register,
                auto_answer=auto_answer,
                **settings,
            )
        elif settings:
            raise TypeError("give either config= or settings, not both")
        if config.transport not in ("UDP", "TCP", "TLS"):
            raise ValueError(f"transport: udp, tcp or tls, not {config.transport.lower()!r}")
        self.config = config
        self.entropy: Entropy = entropy if entropy is not None else SystemEntropy()
        self.on_call = on_call
        self.on_transfer = on_transfer
        self.digest = (
            DigestClient(config.auth_username, config.password, entropy=self.entropy)
            if config.password is not None
            else None
        )
        self.dialogs = DialogTable()
        self._advertise_host = advertised_host(config)
        self.endpoint: Endpoint = self._make_endpoint(clock)
        self.addressing = Addressing(config, self.endpoint)
        self.sender = RequestSender(self.endpoint, self.digest)
        self.registration: Registration | None = None
        self._calls = CallTable(self.dialogs)
        self._incoming: asyncio.Queue[Call] = asyncio.Queue()
        # RFC 5626 §4.1: one instance id for the life of this agent (urn:uuid, RFC 4122 v4).
        self.instance_id = uuid4_urn(self.entropy.random_bytes(16))
        self._tls_files: TlsFiles | None = None
        self._started = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.inbox = MessageInbox(on_message, self._spawn)
        self._watches: dict[tuple[str, str], Watch] = {}  # (Call-ID, our tag) -> subscription
        self.publication: PresencePublication | None = None

    @property
    def on_message(self) -> MessageHandler | None:
        return self.inbox.handler

    @on_message.setter
    def on_message(self, handler: MessageHandler | None) -> None:
        self.inbox.handler = handler

    def _make_endpoint(self, clock: Clock | None) -> Endpoint:
        config = self.config
        transports = None
        if config.transport == "TLS":
            context = client_context(ca_path=config.tls_ca_file, verify=config.tls_verify)
            transports = TransportLayer(lambda *_: None, tls_client_context=context)
        endpoint = Endpoint(
            EndpointConfig(
                timers=config.timers, advertise=self._advertise_host, user_agent=config.user_agent
            ),
            entropy=self.entropy,
            transports=transports,
            clock=clock,
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
            await self.addressing.server_target()  # a server name that does not resolve fails here

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
        timers = self.endpoint.timers
        calls = self._calls.active
        if calls:
            with contextlib.suppress(TimeoutError):
                await timers.wait_for(_hang_up(calls), 2 * self.config.timers.t1 * 8)
        for call in calls:
            if call.is_active:
                await call.end("the user agent closed", EndedBy.LOCAL)
        for watch in list(self._watches.values()):
            with contextlib.suppress(Exception):
                await watch.close()
        if self.publication is not None:
            with contextlib.suppress(Exception):
                await timers.wait_for(self.publication.remove(), 5)
        if self.registration is not None:
            with contextlib.suppress(Exception):
                await timers.wait_for(self.registration.unregister(), 5)
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
                self.sender,
                aor=self.config.aor,
                registrar=await self.addressing.server_target(),
                contact=self.contact,
                expires_s=self.config.register_expires_s,
                keepalive_s=self.config.keepalive_s,
                headers=self._register_headers,
                # Over UDP the 200's Via tells our NAT mapping (RFC 3581). Over TCP/TLS
                # its rport is our connection's ephemeral port, which takes no new
                # connections: the flow itself is the way back (RFC 5626 §4.2).
                on_public_address=(
                    None if self.config.reliable else self.addressing.learned_public_address
                ),
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

    @property
    def registered(self) -> bool:
        return self.registration is not None and self.registration.registered

    # -- calls --------------------------------------------------------------------------------
    @property
    def calls(self) -> list[Call]:
        """The calls not yet ended."""
        return self._calls.active

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
        uri = self.target_uri(target)
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
        self._calls.add(call)
        if play is not None:
            call.play(play)
        if record is not None:
            call.record(record)
        call.place(uri, list(headers or []))
        return call

    async def next_call(self, timeout: float | None = None) -> Call:
        """The next incoming call that no `on_call` handler took."""
        return await self.endpoint.timers.wait_for(self._incoming.get(), timeout)

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
        return await self.endpoint.timers.wait_for(self.inbox.next(), timeout)

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
            self,
            self.target_uri(target),
            event,
            expires_s=expires_s,
            on_update=on_update,
            registry=self._watches,
            spawn=self._spawn,
        )
        await watch.start()
        return watch

    async def publish(
        self, status: str = "online", note: str | None = None, *, expires_s: int = 3600
    ) -> PresencePublication:
        """Publish our presence (online, away, busy, offline); later calls update it."""
        if self.publication is None:
            self.publication = PresencePublication(self, expires_s=expires_s, spawn=self._spawn)
        await self.publication.update(status, note)
        return self.publication

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(_discard(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_notify(self, st: ServerTransaction) -> bool:
        request = st.request
        watch = self._watches.get((request.call_id, request.to.tag or ""))
        if watch is None:
            return False
        watch.on_notify(st)
        return True

    # -- what the parts of the agent use (AgentServices, CallHost) ----------------------------
    def contact(self) -> NameAddr:
        """Our Contact: where requests for us go (the public address once known)."""
        return self.addressing.contact()

    def headers(self) -> list[tuple[str, str]]:
        return [("User-Agent", self.config.user_agent), ("Allow", ALLOW), ("Supported", SUPPORTED)]

    def initial_routes(self) -> list[NameAddr]:
        return self.addressing.initial_routes()

    def target_uri(self, target: str) -> Uri:
        return self.addressing.target_uri(target)

    async def first_hop(self, uri: Uri) -> Target:
        return await self.addressing.first_hop(uri)

    async def resolve(self, uri: Uri) -> Target:
        return await self.addressing.resolve(uri)

    def new_media(self) -> CallMedia:
        config = self.config
        return CallMedia(
            config.media,
            entropy=self.entropy,
            bind_host=config.listen_host or "0.0.0.0",
            advertise_host=self._advertise_host,
            username=config.aor.user or "-",
            mapper=config.media_mapper,
        )

    def bind_dialog(self, dialog: Dialog, call: Call) -> None:
        self._calls.bind_dialog(dialog, call)

    def call_ended(self, call: Call) -> None:
        self._calls.ended(call)

    async def transfer_call(
        self, target: str, *, referred_by: str, play: SourceLike | None
    ) -> Call:
        return await self.call(target, play=play, headers=[("Referred-By", referred_by)])

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
            self.inbox.on_message(st)  # in or out of a dialog alike (RFC 3428 §4)
            return None
        if request.to.tag is not None:
            return self._calls.in_dialog(st)
        if method == "INVITE":
            return self._on_invite(st)
        if method == "OPTIONS":
            st.respond(200, extra=[*self.headers(), ("Accept", "application/sdp")])
            return None
        if method in ("BYE", "NOTIFY", "INFO", "UPDATE", "PRACK"):
            st.respond(481)  # these only make sense inside a dialog
            return None
        st.respond(405, extra=[("Allow", ALLOW)])
        return None

    async def _on_invite(self, st: ServerTransaction) -> None:
        request = st.request
        if self._calls.merged(request):
            st.respond(482, "Loop Detected (merged request)")  # §8.2.2.2
            return
        call = Call(
            self,
            outgoing=False,
            local=request.to.copy(),
            remote=request.from_.copy(),
            call_id=request.call_id,
            media=self.new_media(),
        )
        self._calls.add(call)
        try:
            accepted = await call.receive(st)
        except RemoteProtocolError:
            await call.end("unusable INVITE", EndedBy.LOCAL, 400)
            raise  # the endpoint answers with the status the error carries
        if not accepted:
            await call.end("INVITE refused", EndedBy.LOCAL)
            return
        if self.on_call is not None:
            result = self.on_call(call)
            if inspect.isawaitable(result):
                call.spawn(result)
        elif self.config.auto_answer:
            call.spawn(self._auto_answer(call))
        else:
            self._incoming.put_nowait(call)

    async def _auto_answer(self, call: Call) -> None:
        if self.config.ring_s > 0:
            await self.endpoint.timers.sleep(self.config.ring_s)
        if call.is_active and not call.answered.done():
            await call.answer()

    def _on_ack(self, request: Request, inbound: Inbound) -> None:
        self._calls.on_ack(request)

    def _on_stray(self, response: Response, source: Source) -> None:
        self._calls.on_stray(response)


async def _hang_up(calls: list[Call]) -> None:
    # A coroutine, not the gather itself: a cancelled gather ends with an exception
    # rather than cancelled, and the timeout would not be told from a cancellation.
    await asyncio.gather(*(c.hangup() for c in calls), return_exceptions=True)


async def _discard(coro: Coroutine[Any, Any, object]) -> None:
    await coro
