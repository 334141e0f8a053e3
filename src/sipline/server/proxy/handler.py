"""The proxy's entry points: a request to proxy, a CANCEL, an ACK, a stray response.

`Proxy.handle` validates the request (§16.3), preprocesses its Route (§16.4),
authenticates the caller and asks the relay gate, then finds the targets (§16.5,
`targets`) or lets the routing policy (`RoutePlanner`) take the call over, and hands
them to a `ContextDriver` (`driver`), which carries out the request's sans-I/O
`ProxyContext` (sipline.core.proxy). Policy (which domains are ours, who the users
are, authentication) comes from a `ProxyBackend`; mechanism stays here.
"""

from __future__ import annotations

import contextlib
import os

from sipline.core.errors import LocalProtocolError
from sipline.core.message import Request, Response
from sipline.core.uri import SipUri, TelUri, Uri
from sipline.runtime.endpoint import Endpoint, Inbound, ServerTransaction
from sipline.server.features.decisions import RoutePlanner
from sipline.server.hops import Flows
from sipline.server.media_services.registry import ServiceRegistry
from sipline.server.proxy.anchoring import MediaAnchor
from sipline.server.proxy.backend import ProxyBackend, ProxyConfig, RedirectPolicy
from sipline.server.proxy.driver import ContextDriver
from sipline.server.proxy.local import LocalNames, loop_hash
from sipline.server.proxy.stateless import StatelessForwarder
from sipline.server.proxy.targets import Leg, TargetFinder, anchor_legs
from sipline.server.security.gate import RelayGate
from sipline.server.security.route_sign import RouteSigner
from sipline.transport import Source

__all__ = ["PROXY_SUPPORTED", "Proxy"]

# Option tags a request may demand of us in Proxy-Require (§16.3 step 5).
PROXY_SUPPORTED = frozenset({"path", "outbound"})


class Proxy:
    def __init__(
        self,
        endpoint: Endpoint,
        backend: ProxyBackend,
        config: ProxyConfig | None = None,
        redirect: RedirectPolicy | None = None,
        planner: RoutePlanner | None = None,
        gate: RelayGate | None = None,
        services: ServiceRegistry | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.backend = backend
        self.config = config if config is not None else ProxyConfig()
        self.planner = planner
        self.gate = gate  # no relaying for strangers (sipline.server.security.gate)
        self.flows: Flows | None = None  # the server sets it (sipline.server.hops)
        # The media bridge (sipline.server.bridge), set by the server when it runs one.
        self.anchor: MediaAnchor | None = None
        # Signs our Record-Route; the server gives it the secret its workers share.
        self.local = LocalNames(endpoint, backend.is_local_domain, RouteSigner(os.urandom(32)))
        self.finder = TargetFinder(
            backend, self.local, endpoint.wall, services=services, redirect=redirect
        )
        self.stateless = StatelessForwarder(endpoint, backend, self.local, self.finder)
        endpoint.on_ack = self.on_ack
        endpoint.on_cancel = self.on_cancel
        endpoint.on_stray_response = self.on_stray_response

    @property
    def route_signer(self) -> RouteSigner:
        return self.local.signer

    @route_signer.setter
    def route_signer(self, signer: RouteSigner) -> None:
        self.local.signer = signer

    def is_me(self, uri: Uri) -> bool:
        return self.local.is_me(uri)

    # -- §16.3 validation ------------------------------------------------------------------
    def _validate(self, st: ServerTransaction) -> bool:
        """False when a response was already sent."""
        request = st.request
        uri = request.uri
        if not isinstance(uri, SipUri | TelUri) and not self._exempt(request):
            st.respond(416)  # §16.3 step 2
            return False
        request.to, request.from_, request.call_id  # noqa: B018 (§16.3 step 1)
        mf = request.max_forwards
        if mf == 0:
            st.respond(483)  # §16.3 step 3
            return False
        unsupported = [
            t for t in request.option_tags("proxy-require") if t.lower() not in PROXY_SUPPORTED
        ]
        if unsupported:
            st.respond(420, extra=[("Unsupported", ", ".join(unsupported))])  # §16.3 step 5
            return False
        if self.local.looped(request):
            st.respond(482)  # §16.3 step 4
            return False
        return True

    def _exempt(self, request: Request) -> bool:
        """Emergency calls (RFC 5031 URNs too) are never refused for a scheme or credentials."""
        return self.planner is not None and self.planner.exempt_from_auth(request)

    # -- entry point -----------------------------------------------------------------
    async def handle(self, st: ServerTransaction) -> None:
        request = st.request
        if not self._validate(st):
            return
        top_branch = request.top_via.branch or ""
        in_dialog = request.to.tag is not None
        # A dialog we record-routed: its requests come back through our signed Route
        # (§16.4, §16.6 step 4).
        in_our_dialog = self.local.in_our_dialog(request)
        # Another node sharing our secret routed it to a flow we hold (server/hops.py):
        # it authenticated the caller and chose the target; we only deliver.
        flows = self.flows
        from_node = flows is not None and flows.from_node(request)
        # That node named the flow in its Route (RFC 5626 §5.3): ours to send on.
        flow = flows.route_flow(request.routes[0].uri, None) if flows and from_node else None
        flow = self.local.preprocess_route(request, st.inbound.source) or flow
        if request.method == "INVITE":
            st.respond(100)  # §16.2: stop the caller's retransmissions now
        # RFC 3325 §5, §9.1: an identity asserted by an untrusted source (every UA; our
        # trust domain is only the nodes sharing our secret) is removed; we assert only
        # what we verified.
        if not from_node:
            request.headers.remove("P-Asserted-Identity")
            request.headers.remove("P-Preferred-Identity")
        identity: str | None = None
        from_uri = request.from_.uri
        authenticated = False
        gate = self.gate
        if (
            not in_dialog
            and not from_node
            and request.method not in ("ACK", "CANCEL", "BYE")
            and isinstance(from_uri, SipUri)
            and self.backend.is_local_domain(from_uri.host)
            and not (gate is not None and gate.trusted_source(st))
        ):
            domain = from_uri.host.lower()
            if self._exempt(request):
                # Never refused (emergency): verified only by credentials it carries.
                identity = await self.backend.identify(request, domain)
            elif self.config.authenticate_calls:
                if not await self.backend.authorize(st, domain):
                    return
                identity = from_uri.aor
                authenticated = True
            if identity is not None or self.config.authenticate_calls:
                # Credentials for us are consumed, not forwarded (kamailio
                # consume_credentials).
                request.headers.remove("Proxy-Authorization")
        if (
            gate is not None
            and not self._exempt(request)
            and not await gate.admit(
                st, authenticated=authenticated, in_our_dialog=in_our_dialog or from_node
            )
        ):
            return
        if (
            gate is not None
            and request.method == "INVITE"
            and not in_dialog
            and (authenticated or gate.trusted_source(st))
        ):
            gate.learn_dialog(request)  # the caller's Contact: a dialog's target
        # Hashed as forwarded (credentials consumed), so a copy that loops back to us
        # hashes the same (§16.6 step 8).
        hashed = loop_hash(request, top_branch)
        if flow is not None:  # toward the dialog's creator, on its own flow (RFC 5626 §5.3)
            ContextDriver(self, st, request, hashed, groups=[[Leg(request.uri_text, flow)]]).start()
            return
        if self.planner is not None:
            session = await self.planner.open(request, st.inbound.remote[0], identity=identity)
            if session is not None:
                driver = ContextDriver(self, st, request, hashed, session=session)
                await driver.apply(session.start())
                return
        # Our authenticated users and trusted peers may learn whether a user exists.
        members = authenticated or (gate is not None and gate.trusted_source(st))
        groups = await self.finder.targets(st, members=members)
        if groups is None:
            return
        if self.anchor is not None:
            groups = [await anchor_legs(self.anchor, request, legs) for legs in groups]
        ContextDriver(self, st, request, hashed, groups=groups).start()

    # -- CANCEL, ACK and stray responses ------------------------------------------------------
    def on_cancel(self, cancel_st: ServerTransaction, invite_st: ServerTransaction | None) -> None:
        """§16.10: answer the CANCEL, then cancel every pending branch; the 487s the
        branches return become the INVITE's final response."""
        if invite_st is None:
            cancel_st.respond(481)
            return
        cancel_st.respond(200)
        if invite_st.on_cancel is None:  # no branch forwarded yet
            with contextlib.suppress(LocalProtocolError):
                invite_st.respond(487)
            return
        invite_st.on_cancel()  # ContextDriver.cancel

    def on_ack(self, request: Request, inbound: Inbound) -> None:
        if self.anchor is not None and request.body:
            self.anchor.ack(request)
        self.stateless.on_ack(request, inbound, self.gate)

    def on_stray_response(self, response: Response, source: Source) -> None:
        if self.anchor is not None:
            self.anchor.stray_response(response)
        self.stateless.on_stray_response(response, source)
