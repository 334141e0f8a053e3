"""The server's answers to the proxy's questions: domains, users, locations, auth, DNS.

`ServerBackend` implements `ProxyBackend` over the store (`AsyncStore`), the digest
authenticator shared with the registrar, and the RFC 3263 resolver. Store reads that the proxy needs on
every call (bindings, domains) come from memory; account reads go to the store's
worker thread, never blocking the event loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request
from sipline.core.routing import Destination, is_ip_literal
from sipline.core.uri import SipUri, TelUri, Uri, parse_uri
from sipline.core.views import parse_name_addr
from sipline.runtime.endpoint import ServerTransaction
from sipline.server.auth import DigestAuthenticator
from sipline.server.hops import Flows, Hop, received_target
from sipline.storage.aio import AsyncStore
from sipline.storage.base import Binding
from sipline.transport import Target
from sipline.transport.resolver import ResolutionError, Resolver

_OB = re.compile(r";ob(?=[;?>]|$)", re.IGNORECASE)
_PORTS = {"TLS": 5061, "WS": 80, "WSS": 443}  # §19.1.2, RFC 7118 §5.2; else 5060

__all__ = ["ServerBackend"]

log = logging.getLogger("sipline.backend")


class ServerBackend:
    """`ProxyBackend` for `sipline serve`."""

    def __init__(
        self,
        store: AsyncStore,
        authenticator: DigestAuthenticator,
        resolver: Resolver,
        *,
        domains: list[str],
        wall: Callable[[], float],
        now: Callable[[], float],
    ) -> None:
        self.store = store
        self.auth = authenticator
        self.resolver = resolver
        self._configured = {d.lower() for d in domains}
        self._stored: set[str] = set()  # added with `sipline user add`, read by refresh
        self._domains = set(self._configured)
        self._wall = wall
        self._now = now
        # Where a binding's flow is reached from this process (server/hops.py); set once
        # the listeners are open, since a flow names them.
        self.flows: Flows | None = None

    async def refresh_domains(self) -> None:
        """Domains added with `sipline user add` while the server runs become ours."""
        self._stored = {d.lower() for d in await self.store.list_domains()}
        self._domains = self._configured | self._stored

    @property
    def domains(self) -> set[str]:
        return self._domains

    def set_configured_domains(self, domains: Iterable[str]) -> None:
        """After a reload: the configured domains are ours (or no longer) at once."""
        self._configured = {d.lower() for d in domains}
        self._domains = self._configured | self._stored

    def is_local_domain(self, host: str) -> bool:
        return host.lower() in self._domains

    async def user_exists(self, user: str, domain: str) -> bool:
        return await self.store.get_user(user, domain) is not None

    def bindings(self, aor: str) -> list[Binding]:
        return self.store.bindings(aor, now=self._wall())

    def binding_for_contact(self, contact: str) -> Binding | None:
        now = self._wall()
        found = self.store.binding_for_contact(contact, now=now)
        if found is None and ";ob" in contact:
            # RFC 5626 §4.3: an outbound client adds "ob" to the Contact of the dialogs it
            # starts (JsSIP does); it is the device registered without it.
            found = self.store.binding_for_contact(_OB.sub("", contact), now=now)
        return found

    async def authorize(self, st: ServerTransaction, domain: str) -> bool:
        request = st.request
        result = await self.auth.authenticate(
            request, realm=domain, now=self._now(), proxy=True, source=st.inbound.remote
        )
        if not result.ok:
            st.respond(result.status, result.reason, extra=list(result.headers))
            return False
        from_uri = request.from_.uri
        if isinstance(from_uri, SipUri) and from_uri.user != result.username:
            # The caller authenticated, but as someone other than the From it claims.
            st.respond(403, "Forbidden (From does not match the authenticated user)")
            return False
        return True

    async def identify(self, request: Request, domain: str) -> str | None:
        """The caller's AOR when the request carries valid credentials for `domain` of
        the user its From names; None otherwise, with no answer sent."""
        if not request.headers.get("proxy-authorization"):
            return None
        result = await self.auth.authenticate(request, realm=domain, now=self._now(), proxy=True)
        from_uri = request.from_.uri
        if not result.ok or not isinstance(from_uri, SipUri) or from_uri.user != result.username:
            return None
        return from_uri.aor

    async def resolve(self, uri: Uri) -> list[Target]:
        if isinstance(uri, TelUri):
            return []  # no gateway for tel: URIs is configured
        if not isinstance(uri, SipUri):
            return []
        transport = uri.transport or ("TLS" if uri.secure else None)
        if is_ip_literal(uri.maddr or uri.host):
            host = uri.maddr or uri.host
            t = transport or "UDP"
            if t == "WS" and uri.secure:
                t = "WSS"  # RFC 7118 §5.2: a sips URI with transport=ws
            port = uri.port or _PORTS.get(t, 5060)
            return [Target(t, host, port)]
        if (uri.maddr or uri.host).lower().rstrip(".").endswith(".invalid"):
            # RFC 6761 §6.4, RFC 7118 §5: a browser's made-up host; it is reached over
            # its own connection (its binding), never looked up.
            return []
        if not uri.maddr and self.is_local_domain(uri.host):
            return await self.location_targets(uri)
        targets = await self.resolver.resolve(
            Destination(
                host=uri.host,
                scheme=uri.scheme,
                port=uri.port,
                transport=transport,
                maddr=uri.maddr,
            )
        )
        return [Target(str(t.transport), t.host, t.port, t.server_name) for t in targets]

    async def location_targets(self, uri: SipUri) -> list[Target]:
        """§16.5: a URI in a domain we serve is never looked up in DNS (there, the
        domain leads back to us, or nowhere): its targets are the registered devices
        of its address-of-record, in order; none for the domain itself (us)."""
        targets: list[Target] = []
        if not uri.user:
            return targets
        for binding in self.bindings(uri.aor):
            try:
                targets += await self.binding_targets(binding)
            except (ResolutionError, RemoteProtocolError) as exc:
                log.info("cannot reach the device %s of %s: %s", binding.contact, uri.aor, exc)
        return list(dict.fromkeys(targets))

    def device_hop(self, binding: Binding, request: Request | None = None) -> Hop | None:
        """Where a registered device is reached by the flow its REGISTER came on
        (server/hops.py), else the address it came from; None: by its Contact."""
        if self.flows is not None:
            return self.flows.hop(binding, request)
        target = received_target(binding)
        return Hop(target) if target is not None else None

    def contact_hop(self, request: Request) -> Hop | None:
        """Where a request to a registered Contact goes (its Request-URI): the device's
        flow, with the owner node's Route put on the request when another node holds
        it; None when the Contact is no registered device's."""
        binding = self.binding_for_contact(request.uri_text)
        found = self.device_hop(binding, request) if binding is not None else None
        if found is not None and found.route is not None:
            request.headers.add("Route", found.route, first=True)
        return found

    async def binding_targets(self, binding: Binding) -> list[Target]:
        """Where a registered device is reached: its Path (RFC 3327), the address its
        REGISTER came from (NAT), else its Contact."""
        if binding.path:
            return await self.resolve(parse_name_addr(binding.path[0], "Path").uri)
        hop = self.device_hop(binding)
        if hop is not None:
            return [hop.target]
        contact = parse_uri(binding.contact)
        if (
            isinstance(contact, SipUri)
            and not contact.maddr
            and not is_ip_literal(contact.host)
            and self.is_local_domain(contact.host)
        ):
            return []  # names an address-of-record, not a device (and would loop)
        return await self.resolve(contact)
