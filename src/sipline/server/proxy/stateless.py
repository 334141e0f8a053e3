"""What the proxy forwards outside any transaction: the ACK for a 2xx (§16.11) and
a stray 2xx to INVITE (§16.7 via §18.1.2, sipline.server.proxy.stray)."""

from __future__ import annotations

from sipline.core.builders import MAGIC_COOKIE
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, Response
from sipline.core.proxy import strip_top_via
from sipline.core.routing import is_ip_literal
from sipline.core.uri import SipUri, Uri
from sipline.runtime.endpoint import Endpoint, Inbound
from sipline.server.proxy.backend import ProxyBackend
from sipline.server.proxy.local import DEFAULT_PORT, LocalNames, loop_hash
from sipline.server.proxy.stray import forwardable_stray, is_our_branch
from sipline.server.proxy.targets import TargetFinder, literal_target
from sipline.server.security.gate import RelayGate
from sipline.transport import Source, Target

__all__ = ["StatelessForwarder"]


class StatelessForwarder:
    def __init__(
        self,
        endpoint: Endpoint,
        backend: ProxyBackend,
        local: LocalNames,
        finder: TargetFinder,
    ) -> None:
        self.endpoint = endpoint
        self.backend = backend
        self.local = local
        self.finder = finder

    def on_ack(self, request: Request, inbound: Inbound, gate: RelayGate | None) -> None:
        """An ACK for a 2xx is end to end: route it like any in-dialog request,
        statelessly (§16.11), since it has no transaction of its own."""
        try:
            in_our_dialog = self.local.in_our_dialog(request)
            flow = self.local.preprocess_route(request, inbound.source)
            if request.max_forwards == 0:
                return
            if gate is not None and not gate.admits_ack(
                request, inbound, in_our_dialog=in_our_dialog
            ):
                return  # a stranger's ACK naming its own target: not relayed
            if flow is not None:  # toward the dialog's creator, on its flow (RFC 5626 §5.3)
                self._send_ack(request, flow)
                return
            routes = request.routes
            if routes:
                uri = routes[0].uri
            else:
                binding = self.backend.binding_for_contact(request.uri_text)
                found = self.backend.device_hop(binding, request) if binding else None
                if found is not None:  # a registered device: over its flow
                    if found.route is not None:
                        request.headers.add("Route", found.route, first=True)
                    self._send_ack(request, found.target)
                    return
                uri = request.uri
        except RemoteProtocolError:
            return
        hop = literal_target(uri)
        if hop is not None:
            self._send_ack(request, hop)  # no lookup to wait for: no task either
            return
        self.endpoint.spawn(self._forward_ack(request, uri))

    async def _forward_ack(self, request: Request, uri: Uri) -> None:
        hops = await self.finder.resolve(uri)
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
        branch = MAGIC_COOKIE + "ack" + loop_hash(request)
        request.headers.add("Via", self.endpoint.via_value(hop, branch), first=True)
        self.endpoint.send_stateless(request, hop)

    def on_stray_response(self, response: Response, source: Source) -> None:
        """§16.7 via §18.1.2: a response with no transaction (a late 2xx from a fork).
        Only a 2xx to INVITE whose top Via a branch of ours put is sent on, by the
        next Via; every other stray response is dropped (sipline.server.proxy.stray)."""
        if not forwardable_stray(response):
            return
        try:
            top = response.top_via
        except RemoteProtocolError:
            return
        if not self.local.via_is_me(top.host, top.port) or not is_our_branch(top.branch):
            return
        out = strip_top_via(response)
        via = out.top_via
        host = via.received or via.host
        port = via.rport or via.port or DEFAULT_PORT.get(via.transport, 5060)
        if not is_ip_literal(host):
            return
        self.endpoint.send_stateless(out, Target(via.transport, host, port))
