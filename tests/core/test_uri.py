"""URIs: parsing, serialisation, RFC 3261 §19.1.4 and RFC 3966 §4 equivalence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.core.errors import RemoteProtocolError
from sipline.core.params import Params
from sipline.core.uri import AbsoluteUri, SipUri, TelUri, parse_uri, unescape


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def test_components() -> None:
    u = sip("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&priority=urgent")
    assert (u.scheme, u.user, u.password, u.host, u.port) == (
        "sips",
        "alice",
        "secret",
        "2001:db8::1",
        5061,
    )
    assert u.transport == "TCP" and u.lr and u.secure
    assert u.headers == [("subject", "hi"), ("priority", "urgent")]
    assert (
        str(u) == "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&priority=urgent"
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # RFC 3261 §19.1.4 examples of equivalent URIs
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
    ],
)
def test_equivalent(a: str, b: str) -> None:
    assert parse_uri(a) == parse_uri(b)
    assert hash(parse_uri(a)) == hash(parse_uri(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # RFC 3261 §19.1.4 examples of URIs that are not equivalent
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp;user=phone"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:alice@example.com", "sips:alice@example.com"),
        ("sip:alice@example.com", "sip:alice@example.com;maddr=192.0.2.1"),
    ],
)
def test_not_equivalent(a: str, b: str) -> None:
    assert parse_uri(a) != parse_uri(b)


def test_tel() -> None:
    t = parse_uri("tel:+1-201-555-0123;ext=1234")
    assert isinstance(t, TelUri)
    assert t.is_global and t.digits == "+12015550123"
    assert t == parse_uri("tel:+1.201.555.0123;EXT=1234")
    assert t != parse_uri("tel:+1-201-555-0124;ext=1234")
    local = parse_uri("tel:7042;phone-context=example.com")
    assert isinstance(local, TelUri) and not local.is_global


def test_opaque_schemes() -> None:
    u = parse_uri("urn:service:sos")
    assert isinstance(u, AbsoluteUri) and str(u) == "urn:service:sos"
    assert parse_uri("nobodyKnowsThisScheme:totallyopaquecontent").scheme == "nobodyKnowsThisScheme"


def test_unescape_once() -> None:
    assert unescape("value%25%34%31") == "value%41"
    assert sip("sip:%00@example.com").aor == "\x00@example.com"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:user@",
        "sip:2001:db8::10",
        "sip:[2001:db8::10",
        "sip:host:99999",
        "sip:host:5x",
        "sip:us er@host",
        "sip:host;=x",
        "sip:host;a=",
        "sip:host?x",
        "noscheme",
        ":nothing",
        "tel:xyz",
        "sip:256.1.1.1",
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_uri(text)


_user = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_.!~*'()&=+$,", min_size=1)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_host = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
_pname = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
_pvalue = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9.\-_]{1,12}", fullmatch=True))


@given(
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.one_of(st.none(), _user),
    password=st.one_of(st.none(), st.text(alphabet="abc123&=+$,", max_size=8)),
    host=_host,
    port=st.one_of(st.none(), st.integers(0, 65535)),
    params=st.lists(st.tuples(_pname, _pvalue), max_size=4),
    headers=st.lists(
        st.tuples(
            _pname,
            st.from_regex(r"[A-Za-z0-9%]{0,8}", fullmatch=True).filter(lambda v: "%" not in v),
        ),
        max_size=3,
    ),
)
def test_sip_uri_round_trip(
    scheme: str,
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    params: list[tuple[str, str | None]],
    headers: list[tuple[str, str]],
) -> None:
    if user is None:
        password = None
    uri = SipUri(scheme, user, password, host, port, Params(params), headers)
    text = str(uri)
    back = sip(text)
    assert str(back) == text
    assert back == uri
    assert (back.user, back.password, back.host, back.port) == (user, password, host, port)
    assert back.params.items() == params
    assert back.headers == headers


@given(st.text(max_size=60))
def test_random_text_parses_or_raises_our_error(text: str) -> None:
    try:
        uri = parse_uri(text)
    except RemoteProtocolError:
        return
    assert str(uri) == text
