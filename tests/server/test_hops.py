"""Where a binding's device is reached from a process (server/hops.py `Flows`): over
its stream flow at our node (naming the worker that holds it), through the node that
holds it with a Route signed for the request, or, without a flow, as before."""

from __future__ import annotations

import os

from sipline.core.flow_token import Flow
from sipline.core.message import Request, parse_message
from sipline.core.uri import SipUri, Uri
from sipline.runtime.endpoint import Endpoint
from sipline.server.hops import NODE_PARAM, Flows, Hop
from sipline.storage.base import Binding
from sipline.transport import Source, Target

SECRET = os.urandom(32)
NODE_A, NODE_B = ("127.0.0.1", 5060), ("127.0.0.2", 5070)
CONTACT = "sip:bob@10.0.0.9:5099;transport=tcp"


def node(address: tuple[str, int], worker: int = 0) -> Flows:
    def is_me(uri: Uri) -> bool:
        return isinstance(uri, SipUri) and (uri.host, uri.port) == address

    return Flows(Endpoint(), SECRET, worker, is_me)


def flow_uri(flows: Flows, transport: str, remote: tuple[str, int], at: tuple[str, int]) -> str:
    token = flows.codec.encode(Flow(flows.worker, transport, *remote))
    param = ";transport=tcp" if transport == "TCP" else ""
    return f"sip:{token}@{at[0]}:{at[1]}{param};lr"


def binding(flow: str | None, received: str | None = None) -> Binding:
    return Binding(
        "bob@example.com", CONTACT, 2e9, "c", 1, received=received, flow=flow, updated_at=1.0
    )


def message(ruri: str = CONTACT) -> Request:
    request = parse_message(
        (
            f"MESSAGE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5000;branch=z9hG4bKx\r\n"
            "From: <sip:someone@elsewhere.test>;tag=f1\r\nTo: <sip:bob@example.com>\r\n"
            "Call-ID: m1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(request, Request)
    return request


def test_our_stream_flow_names_the_worker_holding_it() -> None:
    worker1 = node(NODE_A, worker=1)
    flow = flow_uri(worker1, "TCP", ("10.0.0.9", 40123), NODE_A)
    for here in (node(NODE_A, worker=0), worker1):
        assert here.hop(binding(flow)) == Hop(Target("TCP", "10.0.0.9", 40123, worker=1))


def test_our_udp_flow_is_reached_as_without_one() -> None:
    a = node(NODE_A)
    flow = flow_uri(a, "UDP", ("10.0.0.9", 40123), NODE_A)
    assert a.hop(binding(flow, "udp:10.0.0.9:40123")) == Hop(Target("UDP", "10.0.0.9", 40123))
    assert a.hop(binding(flow)) is None  # the Contact, then


def test_another_nodes_flow_goes_through_that_node_with_a_signed_route() -> None:
    a, b = node(NODE_A), node(NODE_B)
    flow = flow_uri(a, "TCP", ("10.0.0.9", 40123), NODE_A)
    request = message()
    hop = b.hop(binding(flow), request)
    assert hop is not None and hop.target == Target("TCP", *NODE_A)
    assert hop.route is not None and f";{NODE_PARAM}=" in hop.route
    request.headers.add("Route", hop.route, first=True)
    assert a.from_node(request)  # node A: routed by a node sharing our secret
    assert not b.from_node(request)  # not a Route to B
    # The signature binds the Request-URI (and Call-ID, From tag): not reusable.
    other = message("sip:mallory@10.0.0.66:5060")
    other.headers.add("Route", hop.route, first=True)
    assert not a.from_node(other)
    assert not a.from_node(message())  # no Route at all
    forged = message()
    forged.headers.add("Route", f"<{flow}>", first=True)  # the flow, unsigned
    assert not a.from_node(forged)


def test_no_flow_or_a_foreign_token_falls_back_to_the_received_address() -> None:
    a = node(NODE_A)
    assert a.hop(binding(None, "tcp:10.0.0.9:40123")) == Hop(Target("TCP", "10.0.0.9", 40123))
    stranger = Flows(Endpoint(), os.urandom(32), 0, a.is_me)
    forged = flow_uri(stranger, "TCP", ("10.0.0.66", 1), NODE_A)
    assert a.hop(binding(forged, "tcp:10.0.0.9:40123")) == Hop(Target("TCP", "10.0.0.9", 40123))


def test_a_route_flow_is_taken_toward_the_ua_and_not_from_it() -> None:
    a = node(NODE_A, worker=1)
    remote = ("10.0.0.9", 40123)
    token = a.token_for(Source("TCP", remote, NODE_A))
    assert a.token_for(Source("UDP", remote, NODE_A)) is None
    uri = SipUri("sip", token, None, NODE_A[0])
    uri.port = NODE_A[1]
    assert a.route_flow(uri, Source("TCP", remote, NODE_A)) is None  # the UA's own request
    assert a.route_flow(uri, Source("UDP", ("10.0.0.7", 5060), NODE_A)) == Target(
        "TCP", *remote, worker=1
    )
