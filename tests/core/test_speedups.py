"""The C accelerator (`sipline._speedups`) agrees with the pure-Python reference
(`sipline.core.scan`): the same result, or `RemoteProtocolError` with the same reason
and status, on random input, on every torture and call-flow message and on every
truncation of them (no read past a buffer: scripts/asan-speedups.sh runs these on an
ASan build). Skipped where the extension was not built (test_accel_selection.py fails
then if a compiler was there to build it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sipline.core import auth_params, scan
from sipline.core.errors import RemoteProtocolError

speedups = pytest.importorskip("sipline._speedups")

DATA = Path(__file__).parents[1] / "data"
CORPUS = sorted(
    p
    for folder in ("rfc4475", "rfc5118", "rfc3665-callflows", "sipp")
    for p in (DATA / folder).rglob("*")
    if p.is_file() and p.suffix in (".dat", ".sip", ".txt", ".xml", "")
)


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", call())
    except RemoteProtocolError as exc:
        return ("error", exc.reason, exc.status)


def agree_split_head(head: bytes, max_headers: int = 200, max_line: int = 8192) -> None:
    assert outcome(lambda: speedups.split_head(head, max_headers, max_line)) == outcome(
        lambda: scan.split_head(head, max_headers, max_line)
    )


def agree_framing(data: bytes, pos: int = 0) -> None:
    assert speedups.find_head_end(data, pos) == scan.find_head_end(data, pos)
    assert speedups.find_head_end(bytearray(data), pos) == scan.find_head_end(data, pos)
    assert outcome(lambda: speedups.content_length_of(data)) == outcome(
        lambda: scan.content_length_of(data)
    )


# Bytes rich in what the scanners look at: line ends, folding, colons, name characters.
_pieces = st.sampled_from(
    [
        b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b"\r\n ", b"\r\n\t", b"\r\n\r\n", b"\n\n",
        b"Via", b"v", b"l", b"L", b"Content-Length", b"content-LENGTH", b"To", b"x-Y_z",
        b"0", b"12", b"007", b"9999999999999", b"\x0b", b"\x0c", b"\x00", b"\xff", b"\xc3\xa9",
        b";", b",", b"@", b"[", b"INVITE sip:a@b SIP/2.0", b"SIP/2.0 200 OK", b"CSeq: 1 INVITE",
    ]
)  # fmt: skip
_noise = st.lists(st.one_of(_pieces, st.binary(max_size=4)), max_size=40).map(b"".join)
# Header blocks that are nearly right: names, separators, values, line ends and folds.
_names = st.sampled_from(
    [b"Via", b"v", b"l", b"L", b"Content-Length", b"cONTENT-length", b"To", b"t", b"Call-ID",
     b"X-Unknown-Header", b"P-Asserted-Identity", b"", b" Via", b"Via ", b"V\xe9a", b"a b", b"q"]
)  # fmt: skip
_seps = st.sampled_from([b": ", b":", b" : ", b"\t:\t", b"", b":\r\n ", b"::"])
_values = st.sampled_from(
    [b"0", b"5", b" 12 ", b"0012", b"1234567890123", b"x", b"", b"5\r\n 6", b"\r\n 7",
     b"SIP/2.0/UDP h;branch=z9hG4bK1", b"<sip:a@b>;tag=1", b"5\x0b", b"\xd9\xa3"]
)  # fmt: skip
_ends = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"\r\n\t", b"\r\n\r\n"])
_fields = st.tuples(_names, _seps, _values, _ends).map(b"".join)
_blocks = st.tuples(
    st.sampled_from([b"INVITE sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\n", b"", b" x\r\n"]),
    st.lists(_fields, max_size=12).map(b"".join),
).map(b"".join)
# Well-formed blocks (some folded), so that agreement on success is tested as often as on errors.
_good_fields = st.tuples(
    st.sampled_from(
        [b"Via", b"v", b"l", b"Content-Length", b"To", b"X-New", b"CALL-ID", b"Route "]
    ),
    st.sampled_from([b": ", b":", b" :\t", b":\r\n "]),
    st.sampled_from(
        [b"0", b" 12", b"5\r\n 5", b"SIP/2.0/UDP h;branch=z9hG4bK1", b"<sip:a@b>", b""]
    ),
).map(lambda parts: b"".join(parts) + b"\r\n")
_good_blocks = st.lists(_good_fields, max_size=10).map(
    lambda fields: b"INVITE sip:a@b SIP/2.0\r\n" + b"".join(fields) + b"\r\nbody"
)
_inputs = st.one_of(
    _noise, _blocks, _good_blocks, _good_blocks.map(lambda b: b[: b.find(b"\r\n\r\n")])
)


@given(_inputs, st.integers(0, 12), st.integers(0, 40))
@example(b"", 0, 0)
@example(b"A\r\n b: c", 200, 8192)
@example(b"A\r\n\r\nB: c", 200, 8192)
@example(b"A\r\nB : c\r\n", 200, 8192)
@example(b"A\r\nB\r\n : c", 200, 8192)
@example(b"A\r\n:c", 200, 8192)
@settings(max_examples=1500)
def test_split_head_agrees(head: bytes, max_headers: int, max_line: int) -> None:
    agree_split_head(head)
    agree_split_head(head, max_headers, max_line)


@given(_inputs, st.integers(-3, 50))
@example(b"A\r\nl: 5\r\nl:5\r\n\r\n", 0)
@example(b"A\r\nl: 5\r\nContent-Length : 6\r\n\r\n", 0)
@example(b"A\r\nl:\r\n 5\r\n\r\n", 0)
@example(b"A\r\nl: 1\r\r\n 5\r\n\r\n", 0)
@example(b"l: 5\r\n", 0)
@example(b"A\nl: 5\n\n", 0)
@example(b"A\r\ncontent-lengthl: 5\r\n\r\n", 0)
@example(b"A\r\nl: 0000000000005\r\n\r\n", 0)
@example(b"A\r\nl: \xd9\xa3\r\n\r\n", 0)
@settings(max_examples=1500)
def test_framing_scanners_agree(data: bytes, pos: int) -> None:
    agree_framing(data, pos)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scanners_agree_on_the_corpus_and_its_truncations(path: Path) -> None:
    data = path.read_bytes()
    end = data.find(b"\r\n\r\n")
    heads = [data[:end] if end >= 0 else data, data]
    for head in heads:
        agree_split_head(head)
        agree_split_head(head, 5, 40)
    agree_framing(data)
    # Every prefix of the header block (a truncated read), with and without a final CRLF.
    for n in range(min(len(data), 2048)):
        cut = data[:n]
        agree_split_head(cut)
        agree_framing(cut, max(0, n - 5))
        agree_framing(cut + b"\r\n")


# Digest header values: schemes, auth-params, quoting, escapes, folds, token68, junk.
_auth_pieces = st.sampled_from(
    [
        "Digest", "Basic", "digest", " ", "\t", ",", "=", '"', "\\", "\r\n ", "\r\n", "\r\n\t",
        "realm", "nonce", "Realm", "uri", "a'b", "response", 'realm="example.com"',
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"', "algorithm=MD5", "qop=auth",
        "nc=00000001", "dXNlcg==", "abc/+", "==", 'x="a\\"b"', 'x="\\\r"', "\x01", "\x7f",
        "é", "\udcff", "€", 'x=""', "x=", ";",
    ]
)  # fmt: skip
_auth_text = st.lists(st.one_of(_auth_pieces, st.text(max_size=3)), max_size=25).map("".join)
_auth_values = st.builds(
    lambda scheme, params, sep: scheme + " " + sep.join(params),
    st.sampled_from(["Digest", "Basic", "Bearer"]),
    st.lists(
        st.builds(
            lambda n, eq, v: n + eq + v,
            st.sampled_from(["realm", "nonce", "uri", "REALM", "cnonce", "a-b", "x'y"]),
            st.sampled_from(["=", " = ", "=\r\n ", " "]),
            st.sampled_from(['"x"', '"a\\"b"', '""', "tok", '"é,"', '"\x02"', "MD5", "/"]),
        ),
        max_size=6,
    ),
    st.sampled_from([", ", ",", " ,\t", ",\r\n ", " "]),
)


@given(st.one_of(_auth_text, _auth_values), st.booleans())
@example("Digest a=b, A=c", False)
@example("Basic dXNlcg== ", False)
@example('Digest a="\\', False)
@example("Digest", False)
@example("Digest,a=b", False)
@settings(max_examples=2000)
def test_auth_param_scanner_agrees(text: str, as_bytes: bool) -> None:
    value: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert outcome(lambda: speedups.parse_value(value, "Authorization")) == outcome(
        lambda: auth_params.parse_value(value, "Authorization")
    )


# RFC 2617 §3.5 and RFC 7616 §3.9.1 examples (one folded as a SIP header may be), and odd ones.
_RFC_AUTH_VALUES = [
    b'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    b'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    b'Digest username="Mufasa",\r\n realm="testrealm@host.com",\r\n '
    b'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    b'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    b'opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    b'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    b'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    b'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
    b"Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, userhash=false, "
    b'realm="api@example.org", uri="/doe.json", algorithm=SHA-512-256, qop=auth, '
    b'nc=00000001, cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", '
    b'response="ae66e67d6b427bd3f120414a82e4acff38e8ecd9101d6c861229025f607a79dd", '
    b'nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", '
    b'opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS"',
    b'Digest username="b\\"ob", realm="\xc3\xa9", nonce="", response="x"',
]


def _auth_lines() -> list[bytes]:
    names = (
        b"authorization:",
        b"proxy-authorization:",
        b"www-authenticate:",
        b"proxy-authenticate:",
    )
    return _RFC_AUTH_VALUES + [
        line.partition(b":")[2]
        for path in CORPUS
        for line in path.read_bytes().split(b"\r\n")
        if line.lower().startswith(names)
    ]


def test_auth_param_scanner_agrees_on_the_corpus_and_its_truncations() -> None:
    lines = _auth_lines()
    assert len(lines) > len(_RFC_AUTH_VALUES)
    for line in lines:
        for n in range(len(line) + 1):
            for value in (line[:n], line[:n].decode("utf-8", "surrogateescape")):
                assert outcome(lambda v=value: speedups.parse_value(v, "WWW-Authenticate")) == (
                    outcome(lambda v=value: auth_params.parse_value(v, "WWW-Authenticate"))
                )


# Via lines: plain ones and near misses (IPv4 octets, host names, ports, parameters).
_via_host = st.one_of(
    st.sampled_from(
        ["1.2.3.4", "255.255.255.255", "256.1.1.1", "1.2.3.256", "01.002.3.4", "1.2.3.4.5",
         "1.2.3", "1.2.3.4.", "h", "a-b.c--d.e", "a-", "-a", "a..b", "host.", "[::1]", "1.2.3.4a",
         "1234.1.1.1", "x.example.com", ""]
    ),
    st.text("0123456789.-ab", max_size=12),
)  # fmt: skip
_via_lines = st.builds(
    lambda head, proto, transport, sp, host, port, params, tail: (
        head + proto + transport + sp + host + port + params + tail
    ).encode("utf-8", "surrogatepass"),
    st.sampled_from(["Via: ", "v:", "Via :\t", "VIA:  ", "Vía: ", "Via", "Via: x"]),
    st.sampled_from(["SIP/2.0/", "SIP/2.0/", "sip/2.0/", "SIP / 2.0 / ", "SIP/2.0"]),
    st.sampled_from(["UDP", "tcp", "TLS-SCTP", "", "U D P", "UDP."]),
    st.sampled_from([" ", " ", "  ", "\t", ""]),
    _via_host,
    st.sampled_from(["", ":5060", ":0", ":65535", ":65536", ":123456", ":", ":5060x", ":05"]),
    st.lists(
        st.sampled_from(
            [";branch=z9hG4bK1", ";rport", ";rport=5", ";rport=x", ";ttl=1", ";TTL=999999",
             ";received=[::1]", ";maddr=1.2.3.4", ";x=a:b", ";=", ";a=", ";", ",v", " ;lr",
             ';x="q"', ";é"]
        ),
        max_size=3,
    ).map("".join),
    st.sampled_from(["", " ", "\t ", "\r\n", " x"]),
)  # fmt: skip


_good_via_lines = st.builds(
    lambda head, host, port, params: f"{head}SIP/2.0/UDP {host}{port}{params}".encode(),
    st.sampled_from(["Via: ", "v:", "Via :\t"]),
    _via_host,
    st.sampled_from(["", ":5060", ":65536", ":123456", ":05"]),
    st.lists(st.sampled_from([";branch=z9hG4bK1", ";rport", ";x=a:b", ";=", " "]), max_size=3).map(
        "".join
    ),
)


@given(st.one_of(_via_lines, _good_via_lines, _noise))
@example(b"Via: SIP/2.0/UDP 1.2.3.4.:5060")
@example(b"Via: SIP/2.0/UDP 1.2.3.4.;branch=z")
@example(b"Via: SIP/2.0/UDP a.-b")
@settings(max_examples=3000)
def test_via_line_parts_agree(line: bytes) -> None:
    assert speedups.via_line_parts(line) == scan.via_line_parts(line)


def test_via_line_parts_agree_on_the_corpus_and_its_truncations() -> None:
    lines = [
        line
        for path in CORPUS
        for line in path.read_bytes().split(b"\r\n")
        if line.lower().startswith((b"via", b"v:", b"v "))
    ]
    assert len(lines) > 50
    for line in lines:
        for n in range(len(line) + 1):
            assert speedups.via_line_parts(line[:n]) == scan.via_line_parts(line[:n])


# SIP URIs: plain ones and near misses (user parts, hosts, ports, parameters, headers).
_uris = st.builds(
    lambda scheme, user, host, port, params: scheme + user + host + port + params,
    st.sampled_from(["sip:", "sips:", "SIP:", "tel:", "sip", "sip:sip:"]),
    st.sampled_from(["", "alice@", "a.b-c_!~*'()&=+$,@", "@", "a:pw@", "%41@", "é@", "a@b@"]),
    _via_host,
    st.sampled_from(["", ":5060", ":65536", ":123456", ":", ":5x"]),
    st.lists(
        st.sampled_from(
            [";lr", ";transport=tcp", ";maddr=[::1]", ";x=a:b/c", ";=", ";a=", ";", "?h=v",
             ";%41", " ", ";é"]
        ),
        max_size=3,
    ).map("".join),
)  # fmt: skip


_good_uris = st.builds(
    lambda scheme, user, host, port, params: scheme + user + host + port + params,
    st.sampled_from(["sip:", "sips:"]),
    st.sampled_from(["", "alice@", "a.b-c_!~*'()&=+$,@", "@"]),
    _via_host,
    st.sampled_from(["", ":5060", ":65536", ":123456"]),
    st.lists(st.sampled_from([";lr", ";x=a:b/c", ";=", ";a="]), max_size=3).map("".join),
)


@given(
    st.one_of(_uris, _good_uris, st.text(max_size=20), _noise.map(lambda b: b.decode("latin-1")))
)
@example("sip:1.2.3.4.:5060")
@example("sip:a@1.2.3.4.;lr")
@example("sips:[::1]")
@settings(max_examples=3000)
def test_sip_uri_parts_agree(text: str) -> None:
    assert speedups.sip_uri_parts(text) == scan.sip_uri_parts(text)


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) > 60
