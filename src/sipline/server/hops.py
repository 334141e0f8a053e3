"""Next hops of registered devices, shared by the proxy, messaging and the backend.

A device's requests go back over the flow its REGISTER came on (RFC 3261 §18.2.2,
RFC 5626 §5.3): a binding records that flow (`Binding.flow`, docs/architecture.md
"Workers") as the URI of the node that holds it, a flow token (RFC 5626 §5.2,
`sipline.core.flow_token`) in its user part, which names the worker holding it and
the device's address on it. `Flows.hop` reads it:

- our own node, a TCP or TLS flow: the device's address on it, with the worker that
  holds it (`Target.worker`: another worker's flow is handed to it,
  transport/channel.py); over UDP every worker sends from the same shared port, so
  the binding is reached as without a flow (`received_target`, else its Contact);
- another node sharing our database: that node, with the flow URI as the top Route
  (RFC 3327 Path semantics, RFC 5626 §5.3 edge proxy), signed for this request with
  `nd` so the owner knows a node with our secret routed it (it authenticated the
  caller already) and does not challenge or refuse it again.

A binding with no flow (stored before flows were, or behind a Path) is reached as
before: the address its REGISTER came from (`received_target`), else its Contact.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.flow_token import Flow, FlowCodec
from sipline.core.message import Request
from sipline.core.routing import is_ip_literal
from sipline.core.uri import SipUri, Uri, format_host, parse_uri
from sipline.runtime.endpoint import Endpoint
from sipline.storage.base import Binding
from sipline.transport import Source, Target
from sipline.transport.base import ACCEPT_ONLY, STREAM_TRANSPORTS, normalize_host

__all__ = ["NODE_PARAM", "Flows", "Hop", "received_target"]

NODE_PARAM = "nd"
_NODE_TOKEN_BYTES = 12


def received_target(binding: Binding | None) -> Target | None:
    """The NAT-aware next hop of a binding: where its REGISTER came from."""
    if binding is None or not binding.received:
        return None
    transport, _, rest = binding.received.partition(":")
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not is_ip_literal(host):
        return None
    return Target(transport.upper(), host, int(port))


@dataclass(frozen=True, slots=True)
class Hop:
    """Where a device is reached: the next hop, and a Route to push first (another
    node's flow URI) when there is one."""

    target: Target
    route: str | None = None


def _literal(uri: SipUri) -> Target | None:
    if not is_ip_literal(uri.host):
        return None
    transport = uri.transport or ("TLS" if uri.secure else "UDP")
    return Target(
        transport, uri.host.strip("[]"), uri.port or (5061 if transport == "TLS" else 5060)
    )


class Flows:
    """This process's view of flows: the URI it records for a REGISTER's flow, and
    where a binding's flow is reached from here."""

    def __init__(
        self, endpoint: Endpoint, secret: bytes, worker: int, is_me: Callable[[Uri], bool]
    ) -> None:
        self.endpoint = endpoint
        self.codec = FlowCodec(secret)
        self.worker = worker
        self.is_me = is_me
        self._node_key = hashlib.sha256(b"sipline node route\x00" + secret).digest()

    def flow_uri(self, transport: str, host: str, port: int) -> str | None:
        """The flow of a REGISTER received over `transport` from (host, port): our
        public URI for that transport, the flow token in its user part, `lr`."""
        transport = transport.upper()
        # Another node reaches the flow through us over a transport it can dial: never
        # a WebSocket (RFC 7118: only browsers open those), so our UDP address for one.
        via = "UDP" if transport in ACCEPT_ONLY else transport
        try:
            item = self.endpoint.local_address(via, 6 if ":" in host else 4)
            token = self.codec.encode(Flow(self.worker, transport, host, port))
        except (LocalProtocolError, ValueError):
            return None
        scheme = "sips" if via == "TLS" else "sip"
        params = ";transport=tcp" if via == "TCP" else ""
        return f"{scheme}:{token}@{format_host(item.advertise)}:{item.port}{params};lr"

    def token_for(self, source: Source) -> str | None:
        """The flow token of a stream flow a request came on (for our Record-Route,
        RFC 5626 §5.3), None for UDP: a datagram's answer needs no particular worker."""
        if source.transport not in STREAM_TRANSPORTS:
            return None
        host, port = source.remote
        try:
            return self.codec.encode(Flow(self.worker, source.transport, host, port))
        except ValueError:
            return None

    def route_flow(self, uri: Uri, source: Source | None) -> Target | None:
        """RFC 5626 §5.3: our Route `uri` carries a flow token we issued, and the request
        did not come on that flow: it goes out on it (to the UA behind it). From that
        flow itself (the UA's own request), it is routed on as usual: None."""
        if not isinstance(uri, SipUri) or not uri.user:
            return None
        found = self.codec.decode(uri.user)
        if found is None or not found.stream:
            return None
        if source is not None and (
            source.transport == found.transport
            and normalize_host(source.remote[0]) == normalize_host(found.host)
            and source.remote[1] == found.port
        ):
            return None
        return Target(found.transport, found.host, found.port, worker=found.worker)

    def hop(self, binding: Binding, request: Request | None = None) -> Hop | None:
        """Where `binding`'s device is reached from this process (module docstring);
        `request` is what goes there, for the signature of a Route to another node."""
        flow = self._flow_uri(binding)
        if flow is not None:
            if self.is_me(flow):
                found = self.codec.decode(flow.user or "")
                if found is not None and found.stream:
                    target = Target(found.transport, found.host, found.port, worker=found.worker)
                    return Hop(target)
            else:
                node = _literal(flow)
                if node is not None:
                    route = f"<{binding.flow}"
                    if request is not None:
                        route += f";{NODE_PARAM}={self._node_token(request, binding.contact)}"
                    return Hop(node, route + ">")
        received = received_target(binding)
        return Hop(received) if received is not None else None

    @staticmethod
    def _flow_uri(binding: Binding) -> SipUri | None:
        if not binding.flow:
            return None
        try:
            uri = parse_uri(binding.flow)
        except RemoteProtocolError:
            return None
        return uri if isinstance(uri, SipUri) and uri.user else None

    def _node_token(self, request: Request, ruri: str) -> str:
        msg = f"{request.call_id}\x00{request.from_.tag or ''}\x00{ruri}"
        mac = hmac.new(self._node_key, msg.encode("utf-8", "surrogateescape"), "sha256")
        return mac.digest()[:_NODE_TOKEN_BYTES].hex()

    def from_node(self, request: Request) -> bool:
        """Did another node sharing our secret route `request` to a flow we hold? Its
        top Route names us with a flow token we made, signed (`nd`) for this very
        request: that node authenticated the caller and found the target."""
        routes = request.routes
        if not routes:
            return False
        uri = routes[0].uri
        if not isinstance(uri, SipUri) or not uri.user or not self.is_me(uri):
            return False
        given = uri.params.get(NODE_PARAM)
        if not given or self.codec.decode(uri.user) is None:
            return False
        expected = self._node_token(request, request.uri_text)
        return hmac.compare_digest(given.lower().encode("ascii", "replace"), expected.encode())
