"""The transaction-stateful proxy (RFC 3261 §16) and the redirect server (§8.3).

One `ResponseContext` per proxied request holds its server transaction and its
branches (client transactions). Requests are validated (§16.3), their Route
preprocessed (§16.4), targets found in the location service (§16.5), and forwarded
(§16.6) in parallel within a q-value group and sequentially across groups; responses
are chosen per §16.7, CANCEL handled per §16.10, Timer C guards each INVITE branch.
Policy (which domains are ours, who the users are, authentication) comes from a
`ProxyBackend`; mechanism stays here. A `RoutePlanner` (telephony features, see
`sipline.server.features`) may take a call over: its session decides the steps, each
forked in parallel with an optional timeout that cancels the step's branches, and
is asked again whenever a step fails, until it has nothing left to try.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sipline.core.builders import MAGIC_COOKIE
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.routing import is_ip_literal
from sipline.core.uri import SipUri, TelUri, Uri, format_host, parse_uri
from sipline.core.views import parse_name_addr
from sipline.runtime.endpoint import ClientTransaction, Endpoint, Inbound, ServerTransaction
from sipline.server.abandoned import end_abandoned_answer
from sipline.server.features.plan import (
    Decision,
    Exhausted,
    Outcome,
    Reject,
    RingTarget,
    RoutePlanner,
    RouteSession,
    classify,
)
from sipline.server.hop_timeout import HopTimer
from sipline.server.hops import received_target as _received_target
from sipline.server.media_services.registry import ServiceRegistry
from sipline.server.security.gate import RelayGate
from sipline.server.security.route_sign import RouteSigner
from sipline.server.stray import forwardable_stray, is_our_branch
from sipline.storage.base import Binding
from sipline.transport import Source, Target

__all__ = ["Proxy", "ProxyBackend", "ProxyConfig", "RedirectPolicy"]

log = logging.getLogger("sipline.proxy")

# Option tags a request may demand of us in Proxy-Require (§16.3 step 5).
PROXY_SUPPORTED = frozenset({"path", "outbound"})
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})
_DEFAULT_PORT = {"UDP": 5060, "TCP": 5060, "TLS": 5061}


class ProxyBackend(Protocol):
    """What the proxy needs to know about users and domains."""

    def is_local_domain(self, host: str) -> bool: ...

    async def user_exists(self, user: str, domain: str) -> bool: ...

    def bindings(self, aor: str) -> list[Binding]:
        """Current (unexpired) bindings of `aor`."""
        ...

    def binding_for_contact(self, contact: str) -> Binding | None:
        """The binding whose Contact is `contact` (to reach a UA behind NAT in-dialog)."""
        ...

    async def authorize(self, st: ServerTransaction, domain: str) -> bool:
        """Authenticate the caller of `st` for `domain`; when it answers False it has
        already sent the 407 challenge (or a 403)."""
        ...

    async def identify(self, request: Request, domain: str) -> str | None:
        """The AOR the request's credentials for `domain` prove (matching its From),
        or None; never answers (for requests that are not refused, emergency calls)."""
        ...

    async def resolve(self, uri: Uri) -> list[Target]:
        """RFC 3263: where to send a request for `uri`."""
        ...


@dataclass(slots=True)
class ProxyConfig:
    record_route: bool = True
    timer_c_s: float = 180.0  # §16.6 step 11: more than 3 minutes
    authenticate_calls: bool = True
    max_route_steps: int = 32  # steps a RouteSession may ring in one call


class RedirectPolicy(Protocol):
    def redirects(self, aor: str) -> bool: ...


@dataclass(slots=True, eq=False)
class Branch:
    target: Target
    uri: str
    ct: ClientTransaction | None = None
    provisional: bool = False  # a provisional (>100) arrived: CANCEL may go (§9.1)
    final: Response | None = None
    timer_c: asyncio.TimerHandle | None = None
    timer_c_at: float = 0.0  # when Timer C is due (a provisional pushes it back)
    abandoned: bool = False  # cancelled by its step's timeout: its 487 is not an answer
    hop_timer: HopTimer | None = None  # a step's per-hop timeout (Timer B cut short)
    hung_up: bool = False  # a late 2xx on this abandoned branch was ACKed and BYEd


@dataclass(slots=True, eq=False)
class ResponseContext:
    """§16: everything about one proxied request."""

    st: ServerTransaction
    request: Request  # as received (our copy per branch is made in forward)
    groups: list[list[tuple[str, Target, tuple[str, ...]]]] = field(default_factory=list)
    branches: list[Branch] = field(default_factory=list)
    best: Response | None = None
    challenges: list[tuple[str, str]] = field(default_factory=list)
    final_sent: bool = False
    cancelled: bool = False
    got_2xx: bool = False
    loop_hash: str = ""  # §16.6 step 8: the first part of every branch we create
    # With a RouteSession: the branches of the current step start at `step_first`.
    session: RouteSession | None = None
    step_first: int = 0
    step_timer: asyncio.TimerHandle | None = None
    step_timed_out: bool = False
    steps: int = 0
    advancing: bool = False


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
        self.services = services  # addresses the media host answers (server/media_services)
        self.gate = gate  # no relaying for strangers (sipline.server.security.gate)
        # Signs our Record-Route; the server gives it the secret its workers share.
        self.route_signer = RouteSigner(os.urandom(32))
        self.backend = backend
        self.config = config if config is not None else ProxyConfig()
        self.redirect = redirect
        self.planner = planner
        endpoint.on_ack = self.on_ack
        endpoint.on_cancel = self.on_cancel
        endpoint.on_stray_response = self.on_stray_response

    # -- helpers about ourselves ------------------------------------------------------
    def _is_me(self, uri: Uri) -> bool:
        if not isinstance(uri, SipUri):
            return False
        host = uri.host.lower()
        for item in self.endpoint.local_addresses:
            if (
                host in (item.advertise.lower(), item.host)
                and (uri.port or _DEFAULT_PORT[item.transport]) == item.port
            ):
                return True
        return False

    def _record_route(self, transport: str, request: Request) -> str:
        item = self.endpoint.local_address(transport)
        params = ";transport=tcp" if transport == "TCP" else ""
        # §16.6 step 4, §19.1.1: our URI's parameters are ours; `sl` binds it to
        # this dialog (sipline.server.security.route_sign).
        params += self.route_signer.param(request)
        scheme = "sips" if transport == "TLS" else "sip"
        return f"<{scheme}:{format_host(item.advertise)}:{item.port}{params};lr>"

    def _in_our_dialog(self, request: Request) -> bool:
        """An in-dialog request whose Route naming us (or Request-URI, after a strict
        router, §16.4) carries our signature for its dialog: a dialog we record-routed.
        A Route through us without it is an ordinary Route to a target it names."""
        if request.to.tag is None:
            return False
        uri = request.uri
        if self._is_me(uri):
            return self.route_signer.signed_for(uri, request)
        routes = request.routes
        if routes and self._is_me(routes[0].uri):
            return self.route_signer.signed_for(routes[0].uri, request)
        return False

    def _loop_hash(self, request: Request, top_branch: str | None = None) -> str:
        """§16.6 step 8: a branch part that is the same whenever the same request
        comes back to us unchanged (a loop), different when it spirals.

        `top_branch` is the branch of the Via that was topmost when we received the
        request; when checking a request that came back, it is the Via just below
        ours, since every hop since has pushed its own above it."""
        if top_branch is None:
            top_branch = request.top_via.branch or ""
        h = hashlib.blake2b(digest_size=8)
        for part in (
            request.uri_text,
            request.from_.tag or "",
            request.to.tag or "",
            request.call_id,
            str(request.cseq.seq),
            top_branch,
            request.headers.get("proxy-require") or "",
            request.headers.get("proxy-authorization") or "",
            ",".join(request.headers.get_all("route")),
        ):
            h.update(part.encode("utf-8", "surrogateescape"))
            h.update(b"\x00")
        return h.hexdigest()

    # -- §16.3 validation and §16.4 route preprocessing ----------------------------------
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
        if self._looped(request):
            st.respond(482)  # §16.3 step 4
            return False
        return True

    def _looped(self, request: Request) -> bool:
        """§16.3 step 4: one of our Vias carries the branch hash this request would get
        again; a changed Request-URI or Route (a spiral) gives another hash."""
        if request.headers.has_one_value("via"):
            return False  # one Via: the sender's own, no hop of ours below it
        vias = request.vias
        for i, via in enumerate(vias):
            branch = via.branch
            if (
                branch
                and branch.startswith(MAGIC_COOKIE)
                and i + 1 < len(vias)
                and self._via_is_me(via.host, via.port)
            ):
                marker = MAGIC_COOKIE + self._loop_hash(request, vias[i + 1].branch or "")
                if branch.startswith(marker + "."):
                    return True
        return False

    def _exempt(self, request: Request) -> bool:
        """Emergency calls (RFC 5031 URNs too) are never refused for a scheme or credentials."""
        return self.planner is not None and self.planner.exempt_from_auth(request)

    def _via_is_me(self, host: str, port: int | None) -> bool:
        for item in self.endpoint.local_addresses:
            if host in (item.advertise, item.host) and (port or 5060) == item.port:
                return True
        return False

    def _preprocess_route(self, request: Request) -> None:
        """§16.4: undo a strict router's rewrite, and pop our own Route entry."""
        if self._is_me(request.uri) and request.routes:
            # The previous hop is a strict router: the Request-URI is our Record-Route
            # value; the real one was put last in Route (§16.4, §12.2.1.1).
            routes = request.routes
            last = routes[-1]
            request.uri = last.uri
            request.headers.remove("Route")
            for r in routes[:-1]:
                request.headers.add("Route", str(r))
        while True:
            routes = request.routes
            if not routes or not (self._is_me(routes[0].uri) or self._is_served(routes[0].uri)):
                break
            request.headers.pop_first_value("Route")

    def _is_served(self, uri: Uri) -> bool:
        """A Route to a domain we serve (no user) leads here: RFC 3263 would find us."""
        return (
            isinstance(uri, SipUri)
            and not uri.user
            and not uri.maddr
            and self.backend.is_local_domain(uri.host)
        )

    # -- entry point -----------------------------------------------------------------
    async def handle(self, st: ServerTransaction) -> None:
        request = st.request
        if not self._validate(st):
            return
        top_branch = request.top_via.branch or ""
        in_dialog = request.to.tag is not None
        # A dialog we record-routed: its requests come back through our signed Route
        # (§16.4, §16.6 step 4).
        in_our_dialog = self._in_our_dialog(request)
        self._preprocess_route(request)
        if request.method == "INVITE":
            st.respond(100)  # §16.2: stop the caller's retransmissions now
        # RFC 3325 §5, §9.1: an identity asserted by an untrusted source (every UA: we
        # keep no trust domain) is removed; we assert only what we verified.
        request.headers.remove("P-Asserted-Identity")
        request.headers.remove("P-Preferred-Identity")
        identity: str | None = None
        from_uri = request.from_.uri
        authenticated = False
        if (
            not in_dialog
            and request.method not in ("ACK", "CANCEL", "BYE")
            and isinstance(from_uri, SipUri)
            and self.backend.is_local_domain(from_uri.host)
            and not (self.gate is not None and self.gate.trusted_source(st))
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
            self.gate is not None
            and not self._exempt(request)
            and not await self.gate.admit(
                st, authenticated=authenticated, in_our_dialog=in_our_dialog
            )
        ):
            return
        if (
            self.gate is not None
            and request.method == "INVITE"
            and not in_dialog
            and (authenticated or self.gate.trusted_source(st))
        ):
            self.gate.learn_dialog(request)  # the caller's Contact: a dialog's target
        # Hashed as forwarded (credentials consumed), so a copy that loops back to us
        # hashes the same (§16.6 step 8).
        loop_hash = self._loop_hash(request, top_branch)
        if self.planner is not None:
            session = await self.planner.open(request, st.inbound.remote[0], identity=identity)
            if session is not None:
                ctx = ResponseContext(st, request, session=session, loop_hash=loop_hash)
                # The server transaction holds its context (and so frees it when it ends).
                st.on_cancel = lambda: self._cancel_context(ctx)
                ctx.advancing = True
                await self._apply(ctx, session.start())
                return
        # Our authenticated users and trusted peers may learn whether a user exists.
        members = authenticated or (self.gate is not None and self.gate.trusted_source(st))
        targets = await self._targets(st, members=members)
        if targets is None:
            return
        ctx = ResponseContext(st, request, targets, loop_hash=loop_hash)
        st.on_cancel = lambda: self._cancel_context(ctx)
        self._next_group(ctx, loop_hash)

    async def _targets(
        self, st: ServerTransaction, *, members: bool = False
    ) -> list[list[tuple[str, Target, tuple[str, ...]]]] | None:
        """§16.5: the target set, as q-ordered groups of (Request-URI, next hop, Path).
        `members`: the caller authenticated as one of our users (may learn who exists)."""
        request = st.request
        routes = request.routes
        uri = request.uri
        if routes:
            # Loose routing: the next hop is the top Route; the Request-URI stays.
            hops = await self._resolve(routes[0].uri)
            if not hops:
                st.respond(404, "Not Found (next hop in Route cannot be resolved)")
                return None
            return [[(request.uri_text, hops[0], ())]]
        if isinstance(uri, SipUri):
            local = self.backend.is_local_domain(uri.host)
            if local and uri.user:
                service = self.services.route(uri) if self.services is not None else None
                if service is not None:  # a room, voicemail: the media host, not a device
                    return [[(request.uri_text, service, ())]]
                return await self._location_targets(st, uri, members)
            if not local and not self._is_me(uri):
                binding = self.backend.binding_for_contact(str(uri))
                hop = _received_target(binding) if binding is not None else None
                hops = [hop] if hop is not None else await self._resolve(uri)
                if not hops:
                    st.respond(404, "Not Found (cannot resolve the Request-URI)")
                    return None
                return [[(request.uri_text, hops[0], ())]]
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
    ) -> list[list[tuple[str, Target, tuple[str, ...]]]] | None:
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
            self._redirect(st, bindings)
            return None
        groups: dict[float, list[tuple[str, Target, tuple[str, ...]]]] = {}
        for b in bindings:
            hop = await self._binding_hop(b)
            if hop is None:
                continue
            groups.setdefault(b.q if b.q is not None else 1.0, []).append((b.contact, hop, b.path))
        if not groups:
            st.respond(480, "Temporarily Unavailable (no reachable contact)")
            return None
        # §16.6: highest q first; equal q values are tried in parallel.
        return [groups[q] for q in sorted(groups, reverse=True)]

    async def _binding_hop(self, b: Binding) -> Target | None:
        if b.path:
            hops = await self._resolve(parse_uri(_strip_brackets(b.path[0])))
            return hops[0] if hops else None
        hop = _received_target(b)
        if hop is not None:
            return hop
        hops = await self._resolve(parse_uri(b.contact))
        return hops[0] if hops else None

    async def _resolve(self, uri: Uri) -> list[Target]:
        try:
            return await self.backend.resolve(uri)
        except Exception as exc:  # resolution failures mean "no target", not a crash
            log.info("cannot resolve %s: %s", uri, exc)
            return []

    def _redirect(self, st: ServerTransaction, bindings: Iterable[Binding]) -> None:
        """§8.3: 302 listing the current contacts with their q and remaining time."""
        now = self.endpoint.wall()
        contacts = []
        for b in bindings:
            value = f"<{b.contact}>"
            if b.q is not None:
                value += f";q={b.q:g}"
            value += f";expires={b.remaining_s(now)}"
            contacts.append(("Contact", value))
        st.respond(302, extra=contacts)

    # -- steps decided by a RouteSession ----------------------------------------------------
    async def _apply(self, ctx: ResponseContext, decision: Decision) -> None:
        """Carry out decisions until a step is ringing or the caller has an answer."""
        session = ctx.session
        assert session is not None  # only contexts with a session get here
        while True:
            if ctx.final_sent or ctx.cancelled:
                ctx.advancing = False
                self._send_best(ctx)
                return
            if isinstance(decision, Reject):
                ctx.final_sent = True
                ctx.st.respond(decision.status, decision.reason, extra=list(decision.extra))
                return
            if isinstance(decision, Exhausted):
                ctx.advancing = False
                self._send_best(ctx, (decision.status, decision.reason))
                return
            ctx.steps += 1
            if ctx.steps > self.config.max_route_steps:
                decision = Exhausted(500, "Server Internal Error (too many routing steps)")
                continue
            resolved = [(t, await self._ring_hop(t)) for t in decision.targets]
            hops = [(t, hop) for t, hop in resolved if hop is not None]
            if ctx.final_sent or ctx.cancelled:
                continue
            if not hops:
                decision = session.step_failed(Outcome.UNAVAILABLE, None)
                continue
            ctx.step_first, ctx.step_timed_out = len(ctx.branches), False
            ctx.advancing = False
            for t, (hop, path) in hops:
                self._forward(
                    ctx,
                    t.uri,
                    hop,
                    path,
                    ctx.loop_hash,
                    headers=t.headers,
                    set_headers=decision.set_headers,
                    body=decision.body,
                    hop_timeout_s=decision.hop_timeout_s,
                )
            if decision.timeout_s is not None and not ctx.final_sent:
                ctx.step_timer = self.endpoint.loop.call_later(
                    decision.timeout_s, self._step_timeout, ctx
                )
            return

    async def _ring_hop(self, t: RingTarget) -> tuple[Target, tuple[str, ...]] | None:
        if t.binding is not None:
            hop = await self._binding_hop(t.binding)
            return (hop, t.binding.path) if hop is not None else None
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
        hops = await self._resolve(uri)
        return (hops[0], ()) if hops else None

    def _step_timeout(self, ctx: ResponseContext) -> None:
        """The step rang long enough (no answer): cancel its branches (§9.1); their
        487s then end the step. A branch with no provisional yet cannot be cancelled
        on the wire until one arrives, so it is given up at once."""
        ctx.step_timer = None
        if ctx.final_sent or ctx.got_2xx or ctx.cancelled:
            return
        ctx.step_timed_out = True
        invite = ctx.request.method == "INVITE"
        for b in ctx.branches[ctx.step_first :]:
            if b.final is None and b.ct is not None:
                b.abandoned = True
                if invite:  # §9.1: CANCEL is for INVITE only
                    b.ct.cancel()
                if not invite or not b.provisional:
                    b.ct._fail(408, "Request Timeout (step timed out)")

    def _step_done(self, ctx: ResponseContext) -> None:
        """Every branch of the step has a final response and none was a 2xx."""
        session = ctx.session
        assert session is not None  # only contexts with a session get here
        if ctx.step_timer is not None:
            ctx.step_timer.cancel()
            ctx.step_timer = None
        best: Response | None = None
        for b in ctx.branches[ctx.step_first :]:
            if b.final is not None and not b.abandoned and (best is None or _better(b.final, best)):
                best = b.final
        outcome = classify(best.status if best else None, timed_out=ctx.step_timed_out)
        ctx.advancing = True
        self.endpoint.spawn(self._apply(ctx, session.step_failed(outcome, best)))

    # -- §16.6 forwarding ---------------------------------------------------------------
    def _next_group(self, ctx: ResponseContext, loop_hash: str) -> None:
        if not ctx.groups:
            self._send_best(ctx)
            return
        group = ctx.groups.pop(0)
        for uri_text, hop, path in group:
            self._forward(ctx, uri_text, hop, path, loop_hash)

    def _forward(
        self,
        ctx: ResponseContext,
        uri_text: str,
        hop: Target,
        path: tuple[str, ...],
        loop_hash: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        set_headers: Iterable[tuple[str, str]] = (),
        body: bytes | None = None,
        hop_timeout_s: float | None = None,
    ) -> None:
        original = ctx.request
        request = Request(original.method, uri_text, original.headers.copy(), original.body)
        if uri_text == original.uri_text:
            request._start = original._start  # untouched Request-URI: keep the raw line
        h = request.headers
        for name, value in set_headers:
            h.set(name, value)
        for name, value in headers:
            h.add(name, value)
        if body is not None:
            request.body = body
        mf = original.max_forwards
        h.set("Max-Forwards", str((mf if mf is not None else 70) - 1))  # §16.6 step 3
        for p in reversed(path):  # RFC 3327: the Path becomes the Route set, in order
            h.add("Route", p, first=True)
        if (
            self.config.record_route
            and original.method in DIALOG_CREATING
            and original.to.tag is None
        ):
            inbound = ctx.st.inbound.transport
            if inbound != hop.transport:
                # Double Record-Route when the transport changes: each side sees ours.
                h.add("Record-Route", self._record_route(inbound, original), first=True)
            h.add("Record-Route", self._record_route(hop.transport, original), first=True)
        branch_id = f"{MAGIC_COOKIE}{loop_hash}.{self.endpoint.new_branch()[len(MAGIC_COOKIE) :]}"
        h.add("Via", self.endpoint.via_value(hop, branch_id), first=True)
        branch = Branch(hop, uri_text)
        ctx.branches.append(branch)
        branch.ct = self.endpoint.send_request(
            request, hop, on_response=lambda r: self._on_response(ctx, branch, r), add_via=False
        )
        ctx.st.relayed()
        if hop_timeout_s is not None:
            branch.hop_timer = HopTimer(self.endpoint.loop, branch, hop_timeout_s)
        if request.method == "INVITE":
            self._arm_timer_c(ctx, branch)

    def _arm_timer_c(self, ctx: ResponseContext, branch: Branch) -> None:
        """Start Timer C, or push it back (§16.7 step 2). The handle is left in place
        when pushed back and re-armed for the rest when it fires early, so a ringing
        branch costs no cancel and new handle per provisional."""
        loop = self.endpoint.loop
        branch.timer_c_at = loop.time() + self.config.timer_c_s
        if branch.timer_c is None:
            branch.timer_c = loop.call_at(branch.timer_c_at, self._timer_c_fired, ctx, branch)

    def _timer_c_fired(self, ctx: ResponseContext, branch: Branch) -> None:
        """§16.6 step 11 / §16.8: cancel a branch that rang too long, or give up on it."""
        branch.timer_c = None
        if branch.final is not None or branch.ct is None:
            return
        loop = self.endpoint.loop
        if loop.time() < branch.timer_c_at:  # pushed back by a provisional meanwhile
            branch.timer_c = loop.call_at(branch.timer_c_at, self._timer_c_fired, ctx, branch)
            return
        if branch.provisional:
            branch.ct.cancel()
        else:
            branch.ct._fail(408, "Request Timeout")

    # -- §16.7 responses -------------------------------------------------------------------
    def _on_response(self, ctx: ResponseContext, branch: Branch, response: Response) -> None:
        status = response.status
        if branch.hop_timer is not None:
            branch.hop_timer.heard()
        if status < 200:
            if status == 100:
                return  # §16.7 step 5: 100 Trying is not forwarded
            branch.provisional = True
            if branch.timer_c is not None:
                self._arm_timer_c(ctx, branch)  # §16.7 step 2: reset on provisionals
            if not ctx.final_sent:
                self._relay(ctx, response)
            return
        if branch.timer_c is not None:
            branch.timer_c.cancel()
            branch.timer_c = None
        if status < 300:
            if branch.abandoned and ctx.final_sent and branch.ct is not None:
                # §16.7 step 10 forwards every 2xx, but this branch is one we gave up:
                # the caller already has its answer (the next PSAP's), so we end this
                # dialog ourselves rather than hand the caller a second one (see
                # sipline.server.abandoned for the reasoning and the choice).
                end_abandoned_answer(
                    self.endpoint,
                    branch.ct.request,
                    response,
                    branch.target,
                    self._is_me,
                    send_bye=not branch.hung_up,
                )
                branch.hung_up = True
                return
            # Every 2xx goes upstream, even after another branch's (§16.7 step 10).
            # A branch given up (a synthesised 408) that answers first still wins.
            first = branch.final is None or branch.final.status >= 300
            branch.final = response
            ctx.got_2xx = True
            if ctx.final_sent:
                self._relay_stateless(ctx, response)
            else:
                ctx.final_sent = True
                self._relay(ctx, response)
            if first:
                self._cancel_pending(ctx, _ANSWERED_ELSEWHERE)
            return
        if branch.final is not None:
            return
        branch.final = response
        if status in (401, 407):
            # §16.7 step 7: collect every challenge for the final answer.
            name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
            ctx.challenges.extend((name, v) for v in response.headers.get_all(name))
        if not branch.abandoned and (ctx.best is None or _better(response, ctx.best)):
            ctx.best = response
        if status >= 600:
            ctx.groups.clear()  # §16.7 step 5: 6xx ends the search
            self._cancel_pending(ctx, f"SIP;cause={status}")
        self._maybe_finish(ctx)

    def _maybe_finish(self, ctx: ResponseContext) -> None:
        if ctx.final_sent or ctx.advancing or any(b.final is None for b in ctx.branches):
            return
        if ctx.session is not None and not ctx.cancelled:
            self._step_done(ctx)
            return
        if ctx.groups and not ctx.cancelled:
            self._next_group(ctx, ctx.loop_hash)
            return
        self._send_best(ctx)

    def _send_best(
        self, ctx: ResponseContext, fallback: tuple[int, str | None] | None = None
    ) -> None:
        if ctx.final_sent:
            return
        ctx.final_sent = True
        if ctx.step_timer is not None:
            ctx.step_timer.cancel()
        best = ctx.best
        if best is None:
            if fallback is not None and not ctx.cancelled:
                ctx.st.respond(*fallback)
                return
            ctx.st.respond(408 if not ctx.cancelled else 487)
            return
        if best.status == 503:
            ctx.st.respond(500, "Server Internal Error (downstream unavailable)")  # §16.7 step 6
            return
        if best.status in (401, 407) and ctx.challenges:
            # §16.7 step 7: one response carrying every branch's challenges.
            out = _strip_top_via(best)
            for name in ("WWW-Authenticate", "Proxy-Authenticate"):
                out.headers.remove(name)
            for name, value in ctx.challenges:
                out.headers.add(name, value)
            ctx.st.send(out)
            return
        self._relay(ctx, best)

    def _relay(self, ctx: ResponseContext, response: Response) -> None:
        if self.gate is not None and ctx.request.method == "INVITE" and 100 < response.status < 300:
            self.gate.learn_dialog(response)  # the callee's Contact: the dialog's target
        out = _strip_top_via(response)
        try:
            if out.headers.get("via") is None:
                # §16.7 step 3: no Via left, so it was meant for us and is not forwarded;
                # the caller gets the outcome in a response of our own.
                log.info("response %d with only our Via from %s", response.status, ctx.st.key)
                ctx.st.respond(response.status, response.reason)
                return
            ctx.st.send(out)
        except LocalProtocolError:
            self._relay_stateless(ctx, response)  # the transaction moved on (e.g. Accepted)

    def _relay_stateless(self, ctx: ResponseContext, response: Response) -> None:
        out = _strip_top_via(response)
        if out.headers.get("via") is None:
            return  # §16.7 step 3: meant for us; nothing to send upstream
        self._send_upstream(out, ctx.st.inbound.source)

    def _cancel_pending(self, ctx: ResponseContext, reason: str | None = None) -> None:
        """§16.7 step 10 / §16.10: CANCEL every INVITE branch still without a final
        response; `reason` tells the devices why (RFC 3326: another branch answered or
        declined). Only an INVITE can be cancelled (§9.1); the other branches of a
        forked non-INVITE request run to their own end (Timer F at most)."""
        if ctx.request.method != "INVITE":
            return
        for b in ctx.branches:
            if b.final is None and b.ct is not None:
                b.ct.cancel(reason)

    def _cancel_context(self, ctx: ResponseContext) -> None:
        ctx.cancelled = True
        ctx.groups.clear()
        self._cancel_pending(ctx)

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
        invite_st.on_cancel()  # _cancel_context of its ResponseContext

    def on_ack(self, request: Request, inbound: Inbound) -> None:
        """An ACK for a 2xx is end to end: route it like any in-dialog request,
        statelessly (§16.11), since it has no transaction of its own."""
        try:
            in_our_dialog = self._in_our_dialog(request)
            self._preprocess_route(request)
            if request.max_forwards == 0:
                return
            if self.gate is not None and not self.gate.admits_ack(
                request, inbound, in_our_dialog=in_our_dialog
            ):
                return  # a stranger's ACK naming its own target: not relayed
            routes = request.routes
            if routes:
                uri = routes[0].uri
            else:
                binding = self.backend.binding_for_contact(request.uri_text)
                hop = _received_target(binding) if binding is not None else None
                if hop is not None:
                    self._send_ack(request, hop)
                    return
                uri = request.uri
        except RemoteProtocolError:
            return
        hop = _literal_target(uri)
        if hop is not None:
            self._send_ack(request, hop)  # no lookup to wait for: no task either
            return
        self.endpoint.spawn(self._forward_ack(request, uri))

    async def _forward_ack(self, request: Request, uri: Uri) -> None:
        hops = await self._resolve(uri)
        if isinstance(uri, SipUri) and self.backend.is_local_domain(uri.host):
            # A 2xx ACK sent to a user's address (pyVoIP does) rather than to the
            # answering device's Contact: the location service knows the devices, not
            # DNS; each gets it, and those without the dialog ignore it (§12.2.2).
            for hop in hops:
                copy = Request(request.method, request.uri_text, request.headers.copy())
                self._send_ack(copy, hop)
            return
        if hops:
            self._send_ack(request, hops[0])

    def _send_ack(self, request: Request, hop: Target) -> None:
        mf = request.max_forwards
        request.headers.set("Max-Forwards", str((mf if mf is not None else 70) - 1))
        # §16.11: a stateless branch must be the same for retransmissions of the ACK.
        branch = MAGIC_COOKIE + "ack" + self._loop_hash(request)
        request.headers.add("Via", self.endpoint.via_value(hop, branch), first=True)
        self.endpoint.send_stateless(request, hop)

    def on_stray_response(self, response: Response, source: Source) -> None:
        """§16.7 via §18.1.2: a response with no transaction (a late 2xx from a fork).
        Only a 2xx to INVITE whose top Via a branch of ours put is sent on, by the
        next Via; every other stray response is dropped (sipline.server.stray)."""
        if not forwardable_stray(response):
            return
        try:
            top = response.top_via
        except RemoteProtocolError:
            return
        if not self._via_is_me(top.host, top.port) or not is_our_branch(top.branch):
            return
        out = _strip_top_via(response)
        via = out.top_via
        host = via.received or via.host
        port = via.rport or via.port or _DEFAULT_PORT.get(via.transport, 5060)
        if not is_ip_literal(host):
            return
        self.endpoint.send_stateless(out, Target(via.transport, host, port))

    def _send_upstream(self, response: Response, source: Source) -> None:
        via = response.top_via
        host = via.received or source.remote[0]
        port = via.rport or via.port or _DEFAULT_PORT.get(via.transport, 5060)
        if source.transport == "UDP":
            target = Target("UDP", host, port)
        else:
            target = Target(source.transport, source.remote[0], source.remote[1])
        self.endpoint.send_stateless(response, target, source=source)


def _strip_top_via(response: Response) -> Response:
    """§16.7 step 3: our own Via comes off before the response goes upstream."""
    out = Response(response.status, response.reason, response.headers.copy(), response.body)
    out._start = response._start
    out.headers.pop_first_value("Via")
    return out


def _better(candidate: Response, current: Response) -> bool:
    """§16.7 step 6: 6xx beats everything; otherwise the lowest class wins, and
    within 4xx the auth challenges and specific answers beat the generic ones."""
    c, b = candidate.status, current.status
    if b >= 600:
        return False
    if c >= 600:
        return True
    if c // 100 != b // 100:
        return c // 100 < b // 100
    # Prefer 401/407 (the caller can act on them) over 408/480-style failures.
    if c in (401, 407) and b not in (401, 407):
        return True
    return c < b and b not in (401, 407)


# RFC 3326 §2 (its example): what a forking proxy says to the branches it cancels once
# one answered, so their devices do not report a missed call.
_ANSWERED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


def _literal_target(uri: Uri) -> Target | None:
    """RFC 3263 §4.2 for a numeric host (or maddr): the target, with no lookup; None
    when a name has to be resolved (or the URI is not a SIP URI)."""
    if not isinstance(uri, SipUri):
        return None
    host = uri.maddr or uri.host
    if not is_ip_literal(host):
        return None
    transport = uri.transport or ("TLS" if uri.secure else "UDP")
    port = uri.port or (5061 if transport == "TLS" else 5060)
    return Target(transport, host, port)  # as ServerBackend.resolve gives it


def _strip_brackets(value: str) -> str:
    """A Path value is a name-addr: the URI inside the angle brackets."""
    v = value.strip()
    return parse_name_addr(v, "Path").uri_text if v.startswith("<") else v
