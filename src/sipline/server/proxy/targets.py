"""§16.5: where a proxied request goes. The target set as q-ordered groups of legs
(Request-URI, next hop, Path) from Route, the location service, a media service or
RFC 3263; the next hop of a routing step's target; the redirect server's 302 (§8.3).
Answers the caller itself (404, 480, 302) when there is nowhere to go."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request
from sipline.core.routing import is_ip_literal
from sipline.core.uri import SipUri, Uri, parse_uri
from sipline.core.views import parse_name_addr
from sipline.runtime.endpoint import ServerTransaction
from sipline.server.bridge.plan import webrtc_contact
from sipline.server.features.decisions import RingTarget
from sipline.server.media_services.registry import ServiceRegistry
from sipline.server.proxy.anchoring import ANCHORED_METHODS, AnchoredLeg, MediaAnchor
from sipline.server.proxy.backend import ProxyBackend, RedirectPolicy
from sipline.server.proxy.local import LocalNames
from sipline.storage.base import Binding
from sipline.transport import Target

__all__ = ["Leg", "TargetFinder", "anchor_legs", "literal_target", "redirect"]

log = logging.getLogger("sipline.proxy")


@dataclass(frozen=True, slots=True)
class Leg:
    """Where one branch goes: its Request-URI, next hop and Path (RFC 3327), and what
    a routing step adds to its request."""

    uri: str
    hop: Target
    path: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # added
    set_headers: tuple[tuple[str, str], ...] = ()  # set, replacing any
    body: bytes | None = None  # replacing the request's
    webrtc: bool = False  # the contact speaks WebRTC (sipline.server.bridge.plan)
    anchored: AnchoredLeg | None = None  # its media goes through the bridge


class TargetFinder:
    def __init__(
        self,
        backend: ProxyBackend,
        local: LocalNames,
        wall: Callable[[], float],
        *,
        services: ServiceRegistry | None = None,
        redirect: RedirectPolicy | None = None,
    ) -> None:
        self.backend = backend
        self.local = local
        self.wall = wall
        self.services = services
        self.redirect = redirect

    async def targets(
        self, st: ServerTransaction, *, members: bool = False
    ) -> list[list[Leg]] | None:
        """§16.5: the target set, as q-ordered groups; None when already answered.
        `members`: the caller authenticated as one of our users (may learn who exists)."""
        request = st.request
        routes = request.routes
        uri = request.uri
        if routes:
            # Loose routing: the next hop is the top Route; the Request-URI stays.
            hops = await self.resolve(routes[0].uri)
            if not hops:
                st.respond(404, "Not Found (next hop in Route cannot be resolved)")
                return None
            return [[Leg(request.uri_text, hops[0])]]
        if isinstance(uri, SipUri):
            local = self.backend.is_local_domain(uri.host)
            if local and uri.user:
                service = self.services.route(uri) if self.services is not None else None
                if service is not None:  # a room, voicemail: the media host, not a device
                    return [[Leg(request.uri_text, service)]]
                return await self._location_targets(st, uri, members)
            if not local and not self.local.is_me(uri):
                binding = self.backend.binding_for_contact(str(uri))
                found = self.backend.device_hop(binding, request) if binding else None
                if found is not None:  # a registered device: over its flow
                    path = (found.route,) if found.route else ()
                    return [[Leg(request.uri_text, found.target, path)]]
                hops = await self.resolve(uri)
                if not hops:
                    st.respond(404, "Not Found (cannot resolve the Request-URI)")
                    return None
                return [[Leg(request.uri_text, hops[0])]]
        # Addressed to us (this host, or a domain we serve with no user): nobody to
        # forward to. In a dialog, it is one we do not have (§12.2.2: 481), such as the
        # BYE a client sends after our stateless 503; outside one, nobody is there.
        if request.to.tag is not None:
            st.respond(481)
        else:
            st.respond(404)
        return None

    async def _location_targets(
        self, st: ServerTransaction, uri: SipUri, members: bool = False
    ) -> list[list[Leg]] | None:
        aor = uri.aor
        bindings = self.backend.bindings(aor)
        if not bindings:
            if not members:
                # Nothing tells a stranger whether the user exists: no registered
                # contact is 404 for both, with no lookup to time (as Kamailio's
                # default configuration answers a failed location lookup).
                st.respond(404)
                return None
            user = aor.rpartition("@")[0]
            if not await self.backend.user_exists(user, uri.host.lower()):
                st.respond(404)
                return None
            st.respond(480)  # a known user with no registered device
            return None
        if self.redirect is not None and self.redirect.redirects(aor):
            redirect(st, bindings, self.wall())
            return None
        groups: dict[float, list[Leg]] = {}
        for b in bindings:
            found = await self.binding_hop(b, st.request)
            if found is None:
                continue
            hop, path = found
            groups.setdefault(b.q if b.q is not None else 1.0, []).append(
                Leg(b.contact, hop, path, webrtc=webrtc_contact(b.contact, b.params))
            )
        if not groups:
            st.respond(480, "Temporarily Unavailable (no reachable contact)")
            return None
        # §16.6: highest q first; equal q values are tried in parallel.
        return [groups[q] for q in sorted(groups, reverse=True)]

    async def binding_hop(
        self, b: Binding, request: Request | None = None
    ) -> tuple[Target, tuple[str, ...]] | None:
        """The next hop of a registered device, and the Path (RFC 3327) or the owner
        node's flow Route (server/hops.py) its request carries first."""
        if b.path:
            hops = await self.resolve(parse_uri(_strip_brackets(b.path[0])))
            return (hops[0], b.path) if hops else None
        found = self.backend.device_hop(b, request)
        if found is not None:
            return found.target, (found.route,) if found.route else ()
        hops = await self.resolve(parse_uri(b.contact))
        return (hops[0], ()) if hops else None

    async def resolve(self, uri: Uri) -> list[Target]:
        try:
            return await self.backend.resolve(uri)
        except Exception as exc:  # resolution failures mean "no target", not a crash
            log.info("cannot resolve %s: %s", uri, exc)
            return []

    async def ring_hop(
        self, t: RingTarget, request: Request | None = None
    ) -> tuple[Target, tuple[str, ...]] | None:
        """The next hop (and Path) of a routing step's target, or None."""
        if t.binding is not None:
            return await self.binding_hop(t.binding, request)
        try:
            uri = parse_uri(t.uri)
        except RemoteProtocolError:
            return None
        if (
            self.services is not None
            and isinstance(uri, SipUri)
            and self.backend.is_local_domain(uri.host)
        ):
            service = self.services.route(uri)  # a forward to voicemail: the media host
            if service is not None:
                return (service, ())
        hops = await self.resolve(uri)
        return (hops[0], ()) if hops else None


def redirect(st: ServerTransaction, bindings: Iterable[Binding], now: float) -> None:
    """§8.3: 302 listing the current contacts with their q and remaining time."""
    contacts = []
    for b in bindings:
        value = f"<{b.contact}>"
        if b.q is not None:
            value += f";q={b.q:g}"
        value += f";expires={b.remaining_s(now)}"
        contacts.append(("Contact", value))
    st.respond(302, extra=contacts)


def literal_target(uri: Uri) -> Target | None:
    """RFC 3263 §4.2 for a numeric host (or maddr): the target, with no lookup; None
    when a name has to be resolved (or the URI is not a SIP URI)."""
    if not isinstance(uri, SipUri):
        return None
    host = uri.maddr or uri.host
    if not is_ip_literal(host):
        return None
    transport = uri.transport or ("TLS" if uri.secure else "UDP")
    if transport == "WS" and uri.secure:
        transport = "WSS"  # RFC 7118 §5.2: a sips URI with transport=ws
    port = uri.port or {"TLS": 5061, "WS": 80, "WSS": 443}.get(transport, 5060)
    return Target(transport, host, port)  # as ServerBackend.resolve gives it


def _strip_brackets(value: str) -> str:
    """A Path value is a name-addr: the URI inside the angle brackets."""
    v = value.strip()
    return parse_name_addr(v, "Path").uri_text if v.startswith("<") else v


async def anchor_legs(anchor: MediaAnchor | None, request: Request, legs: list[Leg]) -> list[Leg]:
    """`legs`, with those the anchor takes carrying their anchored request body."""
    if anchor is None or request.method not in ANCHORED_METHODS:
        return legs
    out = []
    for leg in legs:
        body = leg.body if leg.body is not None else request.body
        anchored = await anchor.anchor(request, body, webrtc_target=leg.webrtc)
        if anchored is None:
            out.append(leg)
        else:
            headers = leg.set_headers
            if request.headers.get("content-type") is None:  # an offer where there was none
                headers += (("Content-Type", "application/sdp"),)
            out.append(replace(leg, body=anchored.body, anchored=anchored, set_headers=headers))
    return out
