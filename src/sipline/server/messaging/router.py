"""Where `sipline serve` sends MESSAGE, SUBSCRIBE and PUBLISH for its own users.

`ImRouter.route` takes the requests the presence agent and the message store
answer themselves and leaves every other one to the proxy (None):
- MESSAGE to a local user: too large -> 413; the user has devices -> the proxy forks
  it to all of them (RFC 3428 §6); no device -> stored (202) and delivered on the
  next registration (`MessagingService`).
- SUBSCRIBE to a local user for an event we serve (presence, message-summary) and
  in-dialog SUBSCRIBEs of our subscriptions -> the `Notifier`.
- PUBLISH to a local user -> the presence agent (`PresencePackage.publish`).
Requesters from our own domains authenticate (407) as the proxy does for calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sipline.core.dialog import DialogId
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request
from sipline.core.uri import SipUri, Uri, format_host, parse_uri
from sipline.core.views import parse_name_addr
from sipline.runtime.endpoint import Endpoint, ServerTransaction
from sipline.server.backend import ServerBackend
from sipline.server.messaging.sections import MessagingSection, PresenceSection
from sipline.server.messaging.service import (
    MessageSummaryPackage,
    MessagingService,
    MessagingSettings,
)
from sipline.server.presence.notifier import Notifier, NotifierSettings, event_name
from sipline.server.presence.pending import PendingLimits
from sipline.server.presence.service import PresencePackage
from sipline.storage.aio import AsyncStore
from sipline.storage.base import Binding, StoreError
from sipline.transport import Target

__all__ = ["ImRouter"]

log = logging.getLogger("sipline.im")

POLL_S = 1.0  # how often the store is polled for changes made by other processes


class ImRouter:
    def __init__(
        self,
        endpoint: Endpoint,
        store: AsyncStore,
        backend: ServerBackend,
        presence: PresenceSection,
        messaging: MessagingSection,
        *,
        authenticate_calls: bool,
        proxy_handle: Callable[[ServerTransaction], Awaitable[None]],
        is_me: Callable[[Uri], bool],
        is_server_uri: Callable[[object], bool],
        owner: str = "0",
        is_trusted: Callable[[ServerTransaction], bool] = lambda st: False,
    ) -> None:
        self.endpoint = endpoint
        self._is_trusted = is_trusted  # a [[trusted]] peer (README "Running on the Internet")
        self.store = store
        self.backend = backend
        self._authenticate_calls = authenticate_calls  # [auth]: our users must prove it
        self._proxy = proxy_handle
        self._is_me = is_me
        self._is_server_uri = is_server_uri
        wall = endpoint.wall
        self.presence = PresencePackage(
            store,
            policy=presence.default_policy,
            bindings=backend.bindings,
            wall=wall,
            entropy=endpoint.entropy,
            min_expires_s=presence.min_expires,
            max_expires_s=presence.max_expires,
            default_expires_s=presence.default_expires,
        )
        self.summary = MessageSummaryPackage(store, wall=wall)
        self.notifier = Notifier(
            endpoint,
            store,
            [self.presence, self.summary],
            owner=owner,
            settings=NotifierSettings(
                presence.min_expires,
                presence.max_expires,
                presence.default_expires,
                presence.min_notify_interval_s,
                PendingLimits(
                    presence.max_pending_per_source,
                    presence.max_pending_per_user,
                    presence.max_pending,
                ),
            ),
            contact=self.contact,
            hop=self.uri_hop,
        )
        self.messaging = MessagingService(
            endpoint,
            store,
            settings=MessagingSettings(
                messaging.max_body_bytes,
                messaging.store_offline,
                messaging.expiry_s,
                messaging.max_stored_per_user,
                messaging.retry_s,
            ),
            owner=owner,
            bindings=backend.bindings,
            hop=self.binding_hop,
            on_count_changed=lambda aor: self.notifier.changed("message-summary", aor),
        )
        self._poller: asyncio.Task[None] | None = None

    # -- life cycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.notifier.start()
        self._poller = self.endpoint.loop.create_task(self._poll())

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        self.notifier.stop()

    async def _poll(self) -> None:
        purge_every, n = 10, 0
        while True:
            await self.endpoint.timers.sleep(POLL_S)
            try:
                n += 1
                if n % purge_every == 0:
                    now = self.endpoint.wall()
                    await self.store.write(self.store.store.purge_expired_publications, now)
                await self.messaging.tick()
                await self.notifier.tick()
            except StoreError as exc:
                log.warning("messaging and presence poll failed: %s", exc)

    def registered(self, aor: str) -> None:
        """A REGISTER for `aor` succeeded: deliver what waits, tell the watchers."""
        self.messaging.deliver_soon(aor)
        self.endpoint.spawn(self.notifier.changed("presence", aor))

    # -- where requests go -------------------------------------------------------------------
    def contact(self, transport: str) -> str:
        """Our Contact for dialogs we hold (subscriptions)."""
        item = self.endpoint.local_address(transport)
        params = ";transport=tcp" if transport == "TCP" else ""
        return f"<sip:{format_host(item.advertise)}:{item.port}{params}>"

    async def uri_hop(self, uri: Uri) -> Target | None:
        """Where a request for `uri` goes: the NAT source of a registered contact, else
        RFC 3263."""
        binding = self.backend.binding_for_contact(str(uri))
        found = self.backend.device_hop(binding) if binding is not None else None
        if found is not None:  # another node's flow: that node routes it by Contact
            return found.target
        targets = await self.backend.resolve(uri)
        return targets[0] if targets else None

    async def binding_hop(self, binding: Binding, request: Request | None = None) -> Target | None:
        """Where a request for a registered device goes; one toward a flow another node
        holds gets that node's signed Route on top (server/hops.py)."""
        if binding.path:
            try:
                first = parse_name_addr(binding.path[0], "Path").uri
            except RemoteProtocolError:
                return None
            targets = await self.backend.resolve(first)
            return targets[0] if targets else None
        found = self.backend.device_hop(binding, request)
        if found is not None:
            if found.route is not None and request is not None:
                request.headers.add("Route", found.route, first=True)
            return found.target
        try:
            targets = await self.backend.resolve(parse_uri(binding.contact))
        except RemoteProtocolError:
            return None
        return targets[0] if targets else None

    def _local_user(self, st: ServerTransaction) -> str | None:
        """The AOR when the request is for one of our users and goes no further."""
        request = st.request
        uri = request.uri
        if not isinstance(uri, SipUri) or not uri.user:
            return None
        if not self.backend.is_local_domain(uri.host):
            return None
        if any(not self._is_me(r.uri) for r in request.routes):
            return None  # routed on somewhere else first
        return uri.aor

    def route(self, st: ServerTransaction) -> Awaitable[None] | None:
        request = st.request
        method = request.method
        if method not in ("MESSAGE", "SUBSCRIBE", "PUBLISH"):
            return None
        if request.to.tag is not None:
            if method == "SUBSCRIBE" and (
                self.notifier.holds(DialogId.of_incoming(request))
                or self._is_server_uri(request.uri)
            ):
                return self.notifier.resubscribe(st)
            return None
        aor = self._local_user(st)
        if aor is None:
            return None
        if method == "MESSAGE":
            return self._message(st, aor)
        if method == "SUBSCRIBE":
            if event_name(request) not in self.notifier.packages:
                return None  # an event our users' devices may serve: proxied to them
            return self._subscribe(st, aor)
        return self._publish(st, aor)

    # -- handlers --------------------------------------------------------------------------------
    async def _requester(self, st: ServerTransaction) -> str | None:
        """The From AOR, authenticated (407) when it claims one of our domains; None
        once a response went."""
        request = st.request
        mf = request.max_forwards
        if mf == 0:
            st.respond(483)
            return None
        from_uri = request.from_.uri
        if not isinstance(from_uri, SipUri) or not from_uri.user:
            st.respond(400, "Bad Request (From is not a SIP user)")
            return None
        if (
            self.backend.is_local_domain(from_uri.host)
            and self._authenticate_calls
            and not await self.backend.authorize(st, from_uri.host.lower())
        ):
            return None
        return from_uri.aor

    def _member(self, st: ServerTransaction) -> bool:
        """Did the requester authenticate as one of our users (`_requester`), or is it a
        trusted peer? Only members may learn whether a user exists and leave messages
        (README "Running on the Internet")."""
        from_uri = st.request.from_.uri
        return self._is_trusted(st) or (
            isinstance(from_uri, SipUri)
            and self.backend.is_local_domain(from_uri.host)
            and self._authenticate_calls
        )

    async def _user_exists(self, st: ServerTransaction, aor: str) -> bool:
        user, _, domain = aor.rpartition("@")
        if not await self.backend.user_exists(user, domain):
            st.respond(404)
            return False
        return True

    async def _message(self, st: ServerTransaction, aor: str) -> None:
        request = st.request
        if len(request.body) > self.messaging.settings.max_body_bytes:
            st.respond(413, "Request Entity Too Large (message body over the limit)")
            return
        if self.backend.bindings(aor) or not self.messaging.settings.store_offline:
            await self._proxy(st)  # RFC 3428 §6: to every registered contact
            return
        if await self._requester(st) is None:
            return
        if not self._member(st):
            # A stranger's message for a user with no registered device: 404 whether
            # the user exists or not, as for a call (nothing stored for strangers).
            st.respond(404)
            return
        if not await self._user_exists(st, aor):
            return
        await self.messaging.keep(st, aor)

    async def _subscribe(self, st: ServerTransaction, aor: str) -> None:
        watcher = await self._requester(st)
        if watcher is None:
            return
        # A stranger is answered the same for a missing user as for one whose policy
        # does not name it (the presence policy decides), never 404; its subscription
        # is kept only for a user who exists, within limits (server/presence/pending).
        member = self._member(st)
        if member and not await self._user_exists(st, aor):
            return
        user, _, domain = aor.rpartition("@")
        exists = member or await self.backend.user_exists(user, domain)
        accept = [
            a.partition(";")[0].strip().lower()
            for v in st.request.headers.get_all("accept")
            for a in v.split(",")
        ]
        package = self.notifier.packages[event_name(st.request)]
        if accept and package.content_type not in accept and "*/*" not in accept:
            st.respond(406, extra=[("Accept", package.content_type)])  # RFC 6665 §4.2.1.1
            return
        await self.notifier.subscribe(
            st, resource=aor, watcher=watcher, stranger=not member, exists=exists
        )

    async def _publish(self, st: ServerTransaction, aor: str) -> None:
        publisher = await self._requester(st)
        if publisher is None:
            return
        if publisher != aor:
            # RFC 3903 §6 step 1: only the presentity publishes its own state.
            st.respond(403, "Forbidden (you may publish only your own presence)")
            return
        if not await self._user_exists(st, aor):
            return
        if await self.presence.publish(st, aor=aor):
            await self.notifier.changed("presence", aor)
