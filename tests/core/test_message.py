"""Message parsing, typed views, serialisation and builders (RFC 3261 §7, §8, §20)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.core.auth import Challenge, Credentials, OtherAuth
from sipline.core.builders import build_request, build_response, new_branch, new_call_id, new_tag
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Limits, Request, Response, parse_message
from sipline.core.uri import SipUri, parse_uri
from sipline.core.validate import validate
from sipline.core.views import NameAddr
from sipline.testing import SeededEntropy

DATA = Path(__file__).parents[1] / "data"

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:ss1.atlanta.example.com;lr>, <sip:ss2.biloxi.example.com;lr>\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n'
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@client.atlanta.example.com;transport=udp>;expires=60;q=0.5\r\n"
    b"X-Custom:   kept   exactly  \r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_views() -> None:
    m = parse_message(INVITE)
    assert isinstance(m, Request)
    assert m.method == "INVITE" and str(m.uri) == "sip:bob@biloxi.example.com"
    v = m.top_via
    assert (v.transport, v.host, v.port, v.branch, v.has_rport, v.rport) == (
        "UDP",
        "client.atlanta.example.com",
        5060,
        "z9hG4bK74bf9",
        True,
        None,
    )
    assert m.from_.tag == "9fxced76sl" and m.from_.display == "Alice"
    assert m.to.tag is None and m.to.display == "Bob"
    assert m.call_id == "3848276298220188511@atlanta.example.com"
    assert (m.cseq.seq, m.cseq.method) == (1, "INVITE")
    assert m.max_forwards == 70
    assert [str(r.uri) for r in m.routes] == [
        "sip:ss1.atlanta.example.com;lr",
        "sip:ss2.biloxi.example.com;lr",
    ]
    (c,) = m.contacts
    assert c.expires == 60 and c.q == 0.5
    assert m.content_type == "application/sdp" and m.body == b"v=0\n"
    assert m.headers.get("x-custom") == "kept   exactly"
    validate(m)


def test_untouched_headers_serialise_byte_identically_after_proxy_edits() -> None:
    m = parse_message(INVITE)
    m.headers.add("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnew", first=True)
    m.headers.set("Max-Forwards", str((m.max_forwards or 70) - 1))
    assert m.headers.pop_first_value("Route") == "<sip:ss1.atlanta.example.com;lr>"
    out = m.to_bytes()
    assert out.startswith(
        b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnew\r\n"
        b"Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n"
        b"Max-Forwards: 69\r\n"
        b"Route: <sip:ss2.biloxi.example.com;lr>\r\n"
    )
    assert b"X-Custom:   kept   exactly  \r\n" in out
    again = parse_message(out)
    assert [v.branch for v in again.vias] == ["z9hG4bKnew", "z9hG4bK74bf9"]
    assert m.top_via.branch == "z9hG4bKnew"  # the cached view was invalidated


def test_compact_forms_and_case_insensitive_names() -> None:
    raw = (
        b"OPTIONS sip:a@b.example SIP/2.0\r\nv: SIP/2.0/TCP h.example;branch=z9hG4bK1\r\n"
        b"f: <sip:x@y.example>;tag=1\r\nt: <sip:a@b.example>\r\ni: abc\r\ncSeQ: 2 OPTIONS\r\n"
        b"m: <sip:x@10.0.0.1>\r\nk: path, outbound\r\nl: 0\r\n\r\n"
    )
    m = parse_message(raw)
    assert m.headers.get("Via") == m.headers.get("v") == "SIP/2.0/TCP h.example;branch=z9hG4bK1"
    assert m.call_id == "abc" and m.cseq.seq == 2
    assert m.option_tags("Supported") == ["path", "outbound"]
    assert "CONTENT-LENGTH" in m.headers
    assert m.to_bytes() == raw


def test_contact_star() -> None:
    raw = (
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n"
        b"CSeq: 3 REGISTER\r\nContact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n"
    )
    m = parse_message(raw)
    assert m.contact_is_star and m.contacts == [] and m.expires == 0


def test_stream_and_datagram_bodies() -> None:
    no_cl = INVITE.replace(b"Content-Length: 4\r\n", b"")
    assert parse_message(no_cl).body == b"v=0\n"  # a datagram: the rest is the body
    assert parse_message(no_cl, stream=True).body == b""
    with pytest.raises(RemoteProtocolError, match="Content-Length"):
        parse_message(INVITE.replace(b"Content-Length: 4", b"Content-Length: 40"))


@pytest.mark.parametrize(
    ("limits", "status"),
    [
        (Limits(max_message_bytes=100), 513),
        (Limits(max_headers=5), 513),
        (Limits(max_line_bytes=40), 513),
    ],
)
def test_limits(limits: Limits, status: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(INVITE, limits=limits)
    assert info.value.status == status


def test_via_depth_limit() -> None:
    m = parse_message(INVITE)
    for i in range(10):
        m.headers.add("Via", f"SIP/2.0/UDP h{i}.example;branch=z9hG4bK{i}", first=True)
    with pytest.raises(RemoteProtocolError, match="Too many Via"):
        validate(m, Limits(max_via=5))


def test_builders_follow_8_1_1_and_8_2_6() -> None:
    ent = SeededEntropy(1)
    branch = new_branch(ent)
    assert branch.startswith("z9hG4bK") and len(branch) > 16
    assert new_tag(ent) != new_tag(ent)
    req = build_request(
        "INVITE",
        parse_uri("sip:bob@biloxi.example.com"),
        from_=NameAddr.of(parse_uri("sip:alice@atlanta.example.com"), "Alice", tag=new_tag(ent)),
        to=NameAddr.of(parse_uri("sip:bob@biloxi.example.com")),
        call_id=new_call_id(ent, "atlanta.example.com"),
        cseq=1,
        via=f"SIP/2.0/UDP 192.0.2.1:5060;branch={branch}",
        contact=NameAddr.of(parse_uri("sip:alice@192.0.2.1")),
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    parsed = parse_message(req.to_bytes())
    validate(parsed)
    assert parsed.max_forwards == 70 and parsed.content_length == 5
    assert parsed.from_.display == "Alice"
    resp = build_response(parsed, 180, to_tag="totag")
    assert isinstance(resp, Response) and resp.reason == "Ringing"
    r = parse_message(resp.to_bytes())
    validate(r)
    assert r.to.tag == "totag" and r.call_id == parsed.call_id and r.cseq == parsed.cseq
    assert r.headers.raw("via") == parsed.headers.raw("via")
    trying = parse_message(build_response(parsed, 100, to_tag="x").to_bytes())
    assert trying.to.tag is None  # §8.2.6.1: no To tag on 100 Trying


def test_body_setter_keeps_content_length_true() -> None:
    m = parse_message(INVITE)
    m.set_body(b"hello", "text/plain")
    again = parse_message(m.to_bytes())
    assert again.body == b"hello" and again.content_length == 5
    assert again.content_type == "text/plain"


def test_uri_setter_rewrites_start_line() -> None:
    m = parse_message(INVITE)
    assert isinstance(m, Request)
    m.uri = parse_uri("sip:bob@192.0.2.9:5062")
    assert m.to_bytes().startswith(b"INVITE sip:bob@192.0.2.9:5062 SIP/2.0\r\n")


# --- properties -------------------------------------------------------------------------
_token = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,10}", fullmatch=True)
_value = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters=","),
    min_size=1,
    max_size=20,
)


@given(
    method=st.sampled_from(["INVITE", "OPTIONS", "REGISTER", "BYE", "MESSAGE", "X-FOO"]),
    user=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,10}", fullmatch=True),
    extra=st.lists(
        st.tuples(st.sampled_from(["X-A", "Subject", "P-B", "Foo"]), _value), max_size=5
    ),
    body=st.binary(max_size=64),
    cseq=st.integers(0, 2**31 - 1),
)
def test_serialize_then_parse_is_identity(
    method: str, user: str, extra: list[tuple[str, str]], body: bytes, cseq: int
) -> None:
    ent = SeededEntropy(cseq)
    req = build_request(
        method,
        SipUri(user=user, host="example.com"),
        from_=NameAddr.of(SipUri(user="a", host="example.com"), tag=new_tag(ent)),
        to=NameAddr.of(SipUri(user=user, host="example.com")),
        call_id=new_call_id(ent),
        cseq=cseq,
        via=f"SIP/2.0/UDP 192.0.2.1;branch={new_branch(ent)}",
        extra=extra,
        body=body,
        content_type="application/octet-stream" if body else None,
    )
    data = req.to_bytes()
    back = parse_message(data)
    validate(back)
    assert isinstance(back, Request)
    assert back.method == method and back.uri == req.uri
    assert list(back.headers.items()) == list(req.headers.items())
    assert back.body == body
    assert back.to_bytes() == data


def _corpus() -> list[bytes]:
    files = sorted((DATA / "rfc4475").glob("*.dat")) + sorted(
        (DATA / "rfc5118" / "wire").glob("*.dat")
    )
    return [f.read_bytes() for f in files] + [INVITE]


CORPUS = _corpus()


@given(
    seed=st.sampled_from(CORPUS),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["replace", "insert", "delete"]),
            st.integers(0, 4000),
            st.binary(min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_messages_raise_only_our_error(
    seed: bytes, edits: list[tuple[str, int, bytes]]
) -> None:
    data = bytearray(seed)
    for op, pos, chunk in edits:
        pos %= max(len(data), 1)
        if op == "replace":
            data[pos : pos + len(chunk)] = chunk
        elif op == "insert":
            data[pos:pos] = chunk
        else:
            del data[pos : pos + len(chunk)]
    try:
        msg = parse_message(bytes(data))
        validate(msg)
        msg.to_bytes()
    except RemoteProtocolError as e:
        assert 400 <= e.status < 600


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_our_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        validate(parse_message(data))


@pytest.mark.parametrize(
    "via",
    [
        "SIP/2.0/UDP host.example.com:\u0665\u0660\u0666\u0660;branch=z9hG4bK1",
        "SIP/2.0/UDP \u0661.2.3.4;branch=z9hG4bK1",
        "SIP/2.0/UDP host.example.com;branch=z9hG4bK1;rport=\u0665\u0660",
    ],
)
def test_via_numbers_are_ascii_digits(via: str) -> None:
    # DIGIT is %x30-39 (RFC 5234 B.1): other Unicode digits are not numbers here.
    raw = INVITE.replace(
        b"SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport", via.encode()
    )
    with pytest.raises(RemoteProtocolError, match="Via"):
        parse_message(raw).top_via  # noqa: B018


def test_uri_ipv4_is_ascii_digits() -> None:
    with pytest.raises(RemoteProtocolError, match="host"):
        parse_uri("sip:alice@\u0661.2.3.4")


# --- issue checklist: compact forms, folding, lists, bodies, views, limits ---------------
def test_every_compact_form_of_rfc3261_and_its_extensions() -> None:
    # §7.3.3 (v f t i m l c k s e) and the registered o u r b.
    names = {
        "v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
        "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
        "e": "content-encoding", "o": "event", "u": "allow-events", "r": "refer-to",
        "b": "referred-by",
    }  # fmt: skip
    raw = (
        b"REFER sip:b@example.com SIP/2.0\r\nv: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
        b"f: <sip:a@example.com>;tag=1\r\nt: <sip:b@example.com>\r\ni: cid1\r\nCSeq: 1 REFER\r\n"
        b"m: <sip:a@192.0.2.1>\r\nc: text/plain\r\nk: norefersub\r\ns: hello\r\ne: gzip\r\n"
        b"o: refer\r\nu: refer\r\nr: <sip:c@example.com>\r\nb: <sip:a@example.com>\r\n"
        b"l: 2\r\n\r\nhi"
    )
    m = parse_message(raw)
    for short, long in names.items():
        assert m.headers.get(short) == m.headers.get(long) is not None, short
        assert m.headers.count(long) == 1
    assert m.headers.get("Refer-To") == "<sip:c@example.com>" and m.body == b"hi"
    assert m.content_type == "text/plain" and m.option_tags("k") == ["norefersub"]
    validate(m)
    assert m.to_bytes() == raw


def test_folded_fields_unfold_for_reading_and_stay_as_sent() -> None:
    raw = (
        b"OPTIONS sip:b@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP h.example.com\r\n ;branch=z9hG4bK1\r\n"
        b'To: "Bob"\r\n\t<sip:b@example.com>\r\n  ;tag=77\r\n'
        b"From: <sip:a@example.com>;tag=1\r\nCall-ID: c\r\n"
        b"CSeq: 1\r\n OPTIONS\r\nSubject: one\r\n two\r\nContent-Length: 0\r\n\r\n"
    )
    m = parse_message(raw)
    assert m.headers.get("subject") == "one two"  # §7.3.1: CRLF + WSP reads as SP
    assert m.top_via.branch == "z9hG4bK1"
    assert (m.to.display, m.to.tag) == ("Bob", "77")
    assert (m.cseq.seq, m.cseq.method) == (1, "OPTIONS")
    validate(m)
    assert m.to_bytes() == raw  # forwarded as it came, folds included


def test_list_values_split_only_at_top_level_commas() -> None:
    raw = (
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b'Contact: "Doe, John" <sip:j,k@192.0.2.1>;q=0.7, <sip:j@192.0.2.2>;expires=30\r\n'
        b'Contact: sip:j@192.0.2.3;p="x,y"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    m = parse_message(raw)
    assert m.headers.values("contact") == [
        '"Doe, John" <sip:j,k@192.0.2.1>;q=0.7',
        "<sip:j@192.0.2.2>;expires=30",
        'sip:j@192.0.2.3;p="x,y"',
    ]
    first, second, third = m.contacts
    assert first.display == "Doe, John" and first.q == 0.7 and first.uri.user == "j,k"  # type: ignore[union-attr]
    assert second.expires == 30 and second.q is None
    assert not third.angle and third.params.get("p") == '"x,y"'
    validate(m)


def test_content_length_on_streams_and_datagrams() -> None:
    extra = INVITE + b"OPTIONS sip:x SIP/2.0\r\n"
    # A datagram: octets past Content-Length are dropped (§18.3).
    assert parse_message(extra).body == b"v=0\n"
    # A stream: the framer hands over one message; Content-Length still rules.
    assert parse_message(INVITE, stream=True).body == b"v=0\n"
    short = INVITE.replace(b"Content-Length: 4", b"Content-Length: 2")
    assert parse_message(short, stream=True).body == b"v="
    assert parse_message(short).to_bytes().endswith(b"\r\n\r\nv=")


def test_via_parameters() -> None:
    raw = INVITE.replace(
        b"Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport",
        b"Via: SIP/2.0/UDP 239.255.0.1;maddr=239.255.0.1;ttl=16;received=192.0.2.9;"
        b"rport=5062;branch=z9hG4bKm",
    )
    v = parse_message(raw).top_via
    assert (v.host, v.maddr, v.ttl, v.received, v.rport, v.has_rport, v.branch) == (
        "239.255.0.1",
        "239.255.0.1",
        16,
        "192.0.2.9",
        5062,
        True,
        "z9hG4bKm",
    )
    assert v.sent_by == "239.255.0.1"


def test_uri_parameters_are_not_header_parameters() -> None:
    raw = INVITE.replace(
        b"Contact: <sip:alice@client.atlanta.example.com;transport=udp>;expires=60;q=0.5",
        b"Contact: <sip:alice@client.atlanta.example.com;expires=5>;expires=60",
    )
    (c,) = parse_message(raw).contacts
    assert c.expires == 60 and c.uri.params.get("expires") == "5"  # type: ignore[union-attr]


def test_expires_is_clamped_and_contact_star_keeps_its_expires() -> None:
    m = parse_message(
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n"
        b"CSeq: 2 REGISTER\r\nContact: *\r\nExpires: 99999999999\r\nContent-Length: 0\r\n\r\n"
    )
    assert m.contact_is_star and m.contacts == []
    assert m.expires == 2**32 - 1  # §20.19: a huge value is not an error


def test_authentication_views_are_parsed_once_and_refreshed_on_change() -> None:
    raw = INVITE.replace(
        b"Content-Type",
        b'Proxy-Authorization: Digest username="alice", realm="atlanta.example.com", '
        b'nonce="n1", uri="sip:bob@biloxi.example.com", response="0123456789abcdef0123456789abcdef"'
        b"\r\nAuthorization: NoOneKnowsThisScheme opaque-data=here\r\nContent-Type",
    )
    m = parse_message(raw)
    (creds,) = m.credentials(proxy=True)
    assert isinstance(creds, Credentials) and creds.username == "alice"
    assert m.credentials(proxy=True)[0] is creds  # cached
    (other,) = m.credentials()
    assert isinstance(other, OtherAuth) and other.scheme == "NoOneKnowsThisScheme"
    m.headers.remove("Proxy-Authorization")
    assert m.credentials(proxy=True) == []
    resp = parse_message(
        b"SIP/2.0 407 Proxy Authentication Required\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b'Proxy-Authenticate: Digest realm="a.example", nonce="n", algorithm=SHA-256, qop="auth"\r\n'
        b'Proxy-Authenticate: Digest realm="a.example", nonce="n", algorithm=MD5, qop="auth"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    first, second = resp.challenges(proxy=True)
    assert isinstance(first, Challenge) and first.algorithm == "SHA-256"
    assert isinstance(second, Challenge) and second.algorithm == "MD5"
    assert resp.challenges() == []


def test_route_depth_limit() -> None:
    m = parse_message(INVITE)
    for i in range(10):
        m.headers.add("Route", f"<sip:p{i}.example.com;lr>")
    validate(m, Limits(max_route=12))
    with pytest.raises(RemoteProtocolError, match="Too many Route") as info:
        validate(m, Limits(max_route=11))
    assert info.value.status == 513
