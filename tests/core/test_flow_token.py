"""Flow tokens (RFC 5626 §5.2): what one names comes back out whole, a changed or
foreign token names nothing, and a token is a plain SIP user part."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.core.abnf import USER_RE
from sipline.core.flow_token import MAX_WORKER, Flow, FlowCodec

SECRET = b"s" * 32
CODEC = FlowCodec(SECRET)

hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: ipaddress.ip_address(a).compressed),
)
flows = st.builds(
    Flow,
    worker=st.integers(0, MAX_WORKER),
    transport=st.sampled_from(["UDP", "TCP", "TLS", "WS", "WSS"]),
    host=hosts,
    port=st.integers(0, 65535),
)


@given(flows)
def test_a_token_names_its_flow(flow: Flow) -> None:
    token = CODEC.encode(flow)
    assert CODEC.decode(token) == flow
    assert USER_RE.fullmatch(token)  # fits the user part of a SIP URI unescaped
    assert len(token) <= 44


@given(flows, st.data())
def test_a_changed_token_names_nothing(flow: Flow, data: st.DataObject) -> None:
    raw = bytearray(base64.urlsafe_b64decode(CODEC.encode(flow) + "=="))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert CODEC.decode(forged) is None


@given(flows)
def test_another_secret_does_not_accept_it(flow: Flow) -> None:
    assert FlowCodec(b"t" * 32).decode(CODEC.encode(flow)) is None


@pytest.mark.parametrize("token", ["", "alice", "a" * 100, "!!!!", "AAAA"])
def test_junk_names_nothing(token: str) -> None:
    assert CODEC.decode(token) is None


def test_out_of_range_flows_are_refused() -> None:
    with pytest.raises(ValueError):
        CODEC.encode(Flow(MAX_WORKER + 1, "TCP", "127.0.0.1", 5060))
    with pytest.raises(ValueError):
        CODEC.encode(Flow(0, "SCTP", "127.0.0.1", 5060))
    with pytest.raises(ValueError):
        FlowCodec(b"short")
