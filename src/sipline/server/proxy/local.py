"""The proxy's view of itself: which URIs and Vias name us (§16.4), the Record-Route
we add (§16.6 step 4), whether a request belongs to a dialog we record-routed, and
loop detection (§16.3 step 4, §16.6 step 8)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sipline.core.builders import MAGIC_COOKIE
from sipline.core.message import Request
from sipline.core.uri import SipUri, Uri, format_host
from sipline.runtime.endpoint import Endpoint
from sipline.runtime.siblings import PIN
from sipline.server.hops import Flows
from sipline.server.security.route_sign import RouteSigner
from sipline.transport import Source, Target

__all__ = ["DEFAULT_PORT", "LocalNames", "loop_hash"]

DEFAULT_PORT = {"UDP": 5060, "TCP": 5060, "TLS": 5061, "WS": 80, "WSS": 443}
_TRANSPORT_PARAM = {"TCP": ";transport=tcp", "WS": ";transport=ws", "WSS": ";transport=ws"}


def loop_hash(request: Request, top_branch: str | None = None) -> str:
    """§16.6 step 8: a branch part that is the same whenever the same request comes
    back to us unchanged (a loop), different when it spirals.

    `top_branch` is the branch of the Via that was topmost when we received the
    request; when checking a request that came back, it is the Via just below ours,
    since every hop since has pushed its own above it."""
    if top_branch is None:
        top_branch = request.top_via.branch or ""
    headers = request.headers
    keys = headers._keys
    # Each part followed by a NUL, hashed in one call (the same octets as one update
    # per part and per NUL).
    text = "\x00".join(
        (
            request.uri_text,
            request.from_.tag or "",
            request.to.tag or "",
            request.call_id,
            str(request.cseq.seq),
            top_branch,
            (headers.get("proxy-require") or "") if "proxy-require" in keys else "",
            (headers.get("proxy-authorization") or "") if "proxy-authorization" in keys else "",
            ",".join(headers.get_all("route")) if "route" in keys else "",
            "",
        )
    )
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


class LocalNames:
    """Our listeners, the domains we serve and the key that signs our Record-Route."""

    def __init__(
        self, endpoint: Endpoint, is_local_domain: Callable[[str], bool], signer: RouteSigner
    ) -> None:
        self.endpoint = endpoint
        self.is_local_domain = is_local_domain
        self.signer = signer  # the server gives it the secret its workers share
        self.flows: Flows | None = None  # flow tokens (server/hops.py): set by the server

    def is_me(self, uri: Uri) -> bool:
        if not isinstance(uri, SipUri):
            return False
        host = uri.host.lower()
        for item in self.endpoint.local_addresses:
            if (
                host in (item.advertise.lower(), item.host)
                and (uri.port or DEFAULT_PORT[item.transport]) == item.port
            ):
                return True
        return False

    def via_is_me(self, host: str, port: int | None) -> bool:
        for item in self.endpoint.local_addresses:
            if host in (item.advertise, item.host) and (port or 5060) == item.port:
                return True
        return False

    def is_served(self, uri: Uri) -> bool:
        """A Route to a domain we serve (no user) leads here: RFC 3263 would find us."""
        return (
            isinstance(uri, SipUri)
            and not uri.user
            and not uri.maddr
            and self.is_local_domain(uri.host)
        )

    def record_route(
        self, transport: str, request: Request, flow: str | None = None, *, pinned: bool = False
    ) -> str:
        """Our Record-Route for `transport`; `flow`, the token of the stream flow the
        request came on, goes in its user part (RFC 5626 §5.3), so requests toward
        its sender reach it on that flow whichever worker or node they enter.
        `pinned`: the dialog's media bridge lives in this process (docs/architecture.md
        "Media bridge"), so a worker names itself (`pin`, sipline.runtime.siblings) and
        the other workers hand the dialog's later requests to it."""
        item = self.endpoint.local_address(transport)
        # RFC 7118 §5.2: "transport=ws" names WS and WSS alike.
        params = _TRANSPORT_PARAM.get(transport, "")
        siblings = self.endpoint.siblings
        if pinned and siblings is not None:
            params += f";{PIN}={siblings.index}"
        # §16.6 step 4, §19.1.1: our URI's parameters are ours; `sl` binds it to
        # this dialog (sipline.server.security.route_sign).
        params += self.signer.param(request)
        scheme = "sips" if transport in ("TLS", "WSS") else "sip"
        user = f"{flow}@" if flow else ""
        return f"<{scheme}:{user}{format_host(item.advertise)}:{item.port}{params};lr>"

    def in_our_dialog(self, request: Request) -> bool:
        """An in-dialog request whose Route naming us (or Request-URI, after a strict
        router, §16.4) carries our signature for its dialog: a dialog we record-routed.
        A Route through us without it is an ordinary Route to a target it names."""
        if request.to.tag is None:
            return False
        uri = request.uri
        if self.is_me(uri):
            return self.signer.signed_for(uri, request)
        routes = request.routes
        if routes and self.is_me(routes[0].uri):
            return self.signer.signed_for(routes[0].uri, request)
        return False

    def looped(self, request: Request) -> bool:
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
                and self.via_is_me(via.host, via.port)
            ):
                marker = MAGIC_COOKIE + loop_hash(request, vias[i + 1].branch or "")
                if branch.startswith(marker + "."):
                    return True
        return False

    def preprocess_route(self, request: Request, source: Source | None = None) -> Target | None:
        """§16.4: undo a strict router's rewrite, and pop our own Route entry. Returns
        the flow the request goes out on when one of ours names one (RFC 5626 §5.3:
        a request toward the dialog's creator, through our Record-Route with its
        flow token, server/hops.py)."""
        flow: Target | None = None
        if self.is_me(request.uri) and request.routes:
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
            if not routes or not (self.is_me(routes[0].uri) or self.is_served(routes[0].uri)):
                return flow
            uri = routes[0].uri
            if flow is None and self.flows is not None and self.signer.toward_creator(uri, request):
                flow = self.flows.route_flow(uri, source)
            request.headers.pop_first_value("Route")
