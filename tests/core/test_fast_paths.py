"""The parser's fast paths give exactly what the general parsers give.

Every typed view has a quick path for the shape almost every sender writes and a
general path for everything the grammar allows. These tests generate values of
both shapes (and broken ones) and check that the two paths agree: the same object
field for field, or the same error with the same status and reason.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st

from sipline.core.abnf import HOSTNAME, HOSTNAME_QUICK, IPV4, IPV4_OCTETS
from sipline.core.errors import RemoteProtocolError
from sipline.core.headers import Headers
from sipline.core.lookup import call_id as _call_id
from sipline.core.lookup import content_length as _content_length
from sipline.core.lookup import cseq as _cseq
from sipline.core.lookup import max_forwards as _max_forwards
from sipline.core.lookup import name_addr_field as _name_addr_field
from sipline.core.lookup import option_tags as _option_tags
from sipline.core.lookup import required_value as _required
from sipline.core.lookup import routes as _routes
from sipline.core.lookup import single_value as _single
from sipline.core.lookup import top_via as _top_via
from sipline.core.lookup import vias as _vias
from sipline.core.message import Request, _parse_start_line, parse_message
from sipline.core.params import QUICK_PARAMS, Params, parse_params, split_commas
from sipline.core.scan import _lines_and_keys
from sipline.core.uri import SipUri, _parse_uri_general, parse_uri
from sipline.core.views import (
    NameAddr,
    Via,
    _parse_name_addr_general,
    _parse_via_general,
    name_addr_of_line,
    parse_call_id,
    parse_cseq,
    parse_name_addr,
    parse_name_addr_list,
    parse_token_list,
    parse_uint,
    parse_via,
    via_of_line,
)


def outcome(parse: Callable[[], object]) -> tuple[object, ...]:
    try:
        value = parse()
    except RemoteProtocolError as e:
        return ("error", e.status, e.reason)
    return ("ok", *_fields(value))


def _fields(value: object) -> tuple[object, ...]:
    if isinstance(value, Via):
        return (
            value.protocol,
            value.transport,
            value.host,
            value.port,
            value.params.items(),
            str(value),
        )
    if isinstance(value, NameAddr):
        return (
            value.display_name,
            value.uri_text,
            value.angle,
            value.params.items(),
            str(value),
        )
    if isinstance(value, SipUri):
        return (
            value.scheme,
            value.user,
            value.password,
            value.host,
            value.port,
            value.params.items(),
            value.headers,
            str(value),
        )
    if isinstance(value, list):
        return tuple(_fields(v) for v in value)
    return (type(value).__name__, str(value), value)


# --- grammar pieces, well-formed and not ---------------------------------------------
# Each piece has plain forms (what the fast paths take) and odd ones (what they leave
# to the general parsers: LWS, quoting, escapes, defects). A generated value is all
# plain half of the time, so both paths are well exercised.
_HOSTS = (
    [
        *(
            "atlanta.example.com",
            "edge.atlanta.example.com.",
            "a",
            "a-b.c",
            "xn--bcher-kva.example",
        ),
        *("1.2.3.4", "192.0.2.255", "010.001.0.99", "1.2.3", "1.2.3.4.5"),
    ],
    [
        *("256.1.1.1", "a..b", "-a.b", "a-.b", "a.-b", "[2001:db8::1]", "[2001:db8:::192.0.2.1]"),
        *("[::g]", "", "h_st", "\u0661.2.3.4"),
    ],
)
_PORTS = (["", ":5060", ":0", ":65535", ":65536", ":99999"], [":", ":5x", ": 5060", ":\u0665"])
_PNAMES = (
    ["branch", "Branch", "ttl", "TTL", "rport", "RPort", "received", "maddr", "tag", "lr", "x"],
    ["a%", "b.c", "~"],
)
_PVALUES = (
    [None, "z9hG4bK74bf9", "5060", "65536", "abc", "1.2.3.4", "[2001:db8::9]", "a:b", "99999999"],
    ["", '"quoted"', '"a;b"', "\u0665", "a b"],
)
_SEPS = ([";"], [" ;", "; ", " ; "])
_EQS = (["="], [" = ", "= "])
_PTAILS = ([""], [";", " ", "\t", ",x", ";="])


def _piece(draw: st.DrawFn, plain: bool, options: tuple[list[str], list[str]]) -> str:
    return draw(st.sampled_from(options[0] if plain else options[0] + options[1]))


def _opt(draw: st.DrawFn, plain: bool, options: tuple[list[str | None], list[str]]) -> str | None:
    values: list[str | None] = list(options[0]) if plain else [*options[0], *options[1]]
    return draw(st.sampled_from(values))


def _params(draw: st.DrawFn, plain: bool) -> str:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        name, value = _piece(draw, plain, _PNAMES), _opt(draw, plain, _PVALUES)
        eq = _piece(draw, plain, _EQS)
        out.append(_piece(draw, plain, _SEPS) + name + ("" if value is None else eq + value))
    return "".join(out) + _piece(draw, plain, _PTAILS)


@st.composite
def _param_text(draw: st.DrawFn) -> str:
    return _params(draw, draw(st.booleans()))


@st.composite
def via_values(draw: st.DrawFn) -> str:
    plain = draw(st.booleans())
    protocol = _piece(draw, plain, (["SIP/2.0"], ["sip/2.0", "SIP / 2.0", "SIP/3.0"]))
    transport = _piece(draw, plain, (["UDP", "TCP", "tls", "SCTP", "X-Y"], ["", "U DP"]))
    sp = _piece(draw, plain, ([" "], ["  ", "\t", ""]))
    host, port = _piece(draw, plain, _HOSTS), _piece(draw, plain, _PORTS)
    return f"{protocol}/{transport}{sp}{host}{port}{_params(draw, plain)}"


_URI_PARAMS = (
    [";lr", ";transport=udp", ";maddr=[::1]", ";x=[a]/:&+$", ";a(b)=c'd"],
    [";a=", ";=b", ";a=b=c", ";a%20=b", "; lr"],
)


def _uri(draw: st.DrawFn, plain: bool) -> str:
    scheme = _piece(draw, plain, (["sip", "sips"], ["SIP", "tel", "http", ""]))
    user = _piece(
        draw, plain, (["", "alice@", "a.b-c_d!~*'()&=+$,@"], ["a;b@", "a%20b@", "a:pw@", "@"])
    )
    host, port = _piece(draw, plain, _HOSTS), _piece(draw, plain, _PORTS)
    params = "".join(_piece(draw, plain, _URI_PARAMS) for _ in range(draw(st.integers(0, 3))))
    headers = _piece(draw, plain, ([""], ["?subject=hi", "?a=b&c=d", "?x"]))
    return f"{scheme}:{user}{host}{port}{params}{headers}"


@st.composite
def sip_uris(draw: st.DrawFn) -> str:
    return _uri(draw, draw(st.booleans()))


@st.composite
def name_addr_values(draw: st.DrawFn) -> str:
    plain = draw(st.booleans())
    display = _piece(
        draw,
        plain,
        (
            ["", '"Alice Liddell" ', '"Alice"', '"\u00e9" ', '"" ', "Bob ", "Bob", "Bob  Smith "],
            ['"A \\"q\\"" ', "B@d ", '"unterminated ', '"a\\\\" '],
        ),
    )
    uri = _uri(draw, plain)
    angle = plain or draw(st.booleans())
    lead = _piece(draw, plain, ([""], [" ", "\t"]))
    body = f"{display}<{uri}>" if angle else f"{display}{uri}"
    return f"{lead}{body}{_params(draw, plain)}{lead}"


# --- the regex languages --------------------------------------------------------------
def test_quick_hostname_is_the_same_language_as_hostname() -> None:
    slow, quick = re.compile(HOSTNAME), re.compile(HOSTNAME_QUICK)
    for n in range(1, 7):
        for chars in itertools.product("a1.-", repeat=n):
            s = "".join(chars)
            assert (slow.fullmatch(s) is None) == (quick.fullmatch(s) is None), s


def test_ipv4_octets_accepts_exactly_the_addresses_with_octets_up_to_255() -> None:
    loose, strict = re.compile(IPV4), re.compile(IPV4_OCTETS)
    octets = [str(i) for i in range(300)] + [f"{i:02d}" for i in range(100)]
    octets += [f"{i:03d}" for i in range(1000)] + ["", "1234"]
    for o in octets:
        s = f"10.{o}.0.1"
        expected = loose.fullmatch(s) is not None and int(o) <= 255
        assert (strict.fullmatch(s) is not None) == expected, s


# --- views -----------------------------------------------------------------------------
@given(via_values())
def test_via_fast_path_matches_the_general_parser(value: str) -> None:
    assert outcome(lambda: parse_via(value)) == outcome(lambda: _parse_via_general(value))


@given(
    via_values(), st.sampled_from(["Via:", "v: ", "VIA :\t", "Via:  "]), st.sampled_from(["", " "])
)
def test_via_line_fast_path_matches_parsing_the_value(value: str, head: str, tail: str) -> None:
    fast = outcome(lambda: via_of_line(head + value + tail))
    if fast != ("ok", "NoneType", "None", None):  # None: left to the general parser
        assert fast == outcome(lambda: parse_via(value.strip(" \t")))


@given(sip_uris())
def test_uri_fast_path_matches_the_general_parser(text: str) -> None:
    assert outcome(lambda: parse_uri(text, "Request-URI")) == outcome(
        lambda: _parse_uri_general(text, "Request-URI")
    )


@given(name_addr_values())
def test_name_addr_fast_path_matches_the_general_parser(value: str) -> None:
    assert outcome(lambda: parse_name_addr(value, "To")) == outcome(
        lambda: _parse_name_addr_general(value.strip(" \t"), "To")
    )


@given(name_addr_values(), st.sampled_from(["To:", "t: ", "FROM :\t", "Route:"]))
def test_name_addr_line_fast_path_matches_parsing_the_value(value: str, head: str) -> None:
    fast = outcome(lambda: name_addr_of_line(head + value))
    if fast != ("ok", "NoneType", "None", None):  # None: left to the general parser
        assert fast == outcome(lambda: parse_name_addr(value, "To"))


_quick_params_re = re.compile(QUICK_PARAMS)


@given(_param_text(), st.lists(st.sampled_from(_PNAMES[0]), min_size=1, max_size=4))
def test_lazy_params_answer_as_parsed_params_do(text: str, names: list[str]) -> None:
    if _quick_params_re.fullmatch(text) is None:
        return
    lazy = Params.of_text(text)
    parsed, end = parse_params(text, 0, "X")
    assert end == len(text)
    for name in [*names, "BRANCH", "nothere"]:
        assert lazy.get(name, "dflt") == parsed.get(name, "dflt")
        assert (name in lazy) == (name in parsed)
    assert str(lazy) == str(parsed) == text
    assert bool(lazy) == bool(parsed)
    assert lazy == parsed and hash(lazy) == hash(parsed)
    assert Params.of_text(text).items() == parsed.items()
    copy = lazy.copy()
    copy.set("received", "192.0.2.1")
    parsed.set("received", "192.0.2.1")
    assert copy.items() == parsed.items() and str(copy) == str(parsed)


# --- header lookups behind Message's views -------------------------------------------
_field_values = st.sampled_from(
    [
        "70",
        "0070",
        "255",
        "256",
        "",
        "7 0",
        "\u0667",
        "1 INVITE",
        "4294967295 REGISTER",
        "4294967296 BYE",
        "12345678901 ACK",
        "1 X-EXT",
        "1  INVITE",
        "1 INV ITE",
        "a84b4c76e66710@pc33.atlanta.com",
        "abc@def@ghi",
        "\u00e9t\u00e9@x",
        '"bob" <sip:bob@biloxi.example.com>;tag=a6c85cf',
        "<sip:ss1.example.com;lr>, <sip:ss2.example.com;lr>",
        "sip:bob@biloxi.example.com;tag=1",
    ]
)


def _reference(h: Headers, key: str) -> object:
    """What each view was before it had a fast path: parse the unfolded value."""
    if key == "call-id":
        return parse_call_id(_required(h, key, "Call-ID"))
    if key == "cseq":
        return parse_cseq(_required(h, key, "CSeq"))
    if key == "max-forwards":
        v = _single(h, key, "Max-Forwards")
        return None if v is None else parse_uint(v, "Max-Forwards", 255)
    if key == "content-length":
        v = _single(h, key, "Content-Length")
        return None if v is None else parse_uint(v, "Content-Length", 2**32 - 1)
    if key == "route":
        return parse_name_addr_list(h.get_all("route"), "Route")
    if key == "vias":
        values = h.values("via")
        if not values:
            raise RemoteProtocolError("Missing Via header")
        return [parse_via(v) for v in values]
    if key == "via":
        first = h.get("via")
        if first is None:
            raise RemoteProtocolError("Missing Via header")
        return parse_via(split_commas(first, "Via")[0] if "," in first else first)
    what = {"to": "To", "from": "From"}[key]
    return parse_name_addr(_required(h, key, what), what)


_FAST: dict[str, Callable[[Headers], object]] = {
    "call-id": _call_id,
    "cseq": _cseq,
    "max-forwards": _max_forwards,
    "content-length": _content_length,
    "route": _routes,
    "via": _top_via,
    "vias": _vias,
    "to": lambda h: _name_addr_field(h, "to", "To"),
    "from": lambda h: _name_addr_field(h, "from", "From"),
}


@given(
    st.sampled_from(sorted(_FAST)),
    st.lists(
        st.tuples(_field_values | via_values(), st.sampled_from([": ", ":", " :  ", ":\r\n "])),
        max_size=3,
    ),
)
def test_header_views_match_parsing_the_unfolded_values(
    key: str, fields: list[tuple[str, str]]
) -> None:
    h = Headers()
    name = "via" if key == "vias" else key
    for value, sep in fields:
        h.add_raw(name, f"{name}{sep}{value}".encode())
    assert outcome(lambda: _FAST[key](h)) == outcome(lambda: _reference(h, key))


_TAG_LISTS = st.lists(
    st.sampled_from(
        ["timer", "100rel", "x.y-z!", "", " ", ",", ", ", " ,", '"q"', "a b", "\u00e9"]
    ),
    max_size=6,
).map("".join)


@given(st.lists(st.tuples(_TAG_LISTS, st.sampled_from([": ", ":", ":\r\n "])), max_size=3))
@example([("timer, replaces,norefersub", ": ")])
@example([("", ": "), ("timer", ":")])
def test_option_tags_fast_path_matches_the_token_list_parser(fields: list[tuple[str, str]]) -> None:
    h = Headers()
    for value, sep in fields:
        h.add_raw("supported", f"Supported{sep}{value}".encode())
    reference = outcome(lambda: parse_token_list(h.values("supported"), "supported"))
    assert outcome(lambda: _option_tags(h, "supported")) == reference


def test_fast_name_scan_agrees_with_the_line_by_line_scan() -> None:
    data = (
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nv : SIP/2.0/UDP g\r\n"
        b"To: <sip:a@b>\r\nFrom: <sip:c@d>;tag=1\r\ni: x\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n"
    )
    msg = parse_message(data)  # fills the name cache
    again = parse_message(data)  # the fast scan now
    head = data[: data.find(b"\r\n\r\n")]
    lines, keys = _lines_and_keys(head, head.split(b"\r\n"))
    assert again.headers.keys() == msg.headers.keys() == keys
    assert again.headers.lines == lines[1:]


_start_lines = st.builds(
    lambda a, sp1, b, sp2, c: f"{a}{sp1}{b}{sp2}{c}".encode(),
    st.sampled_from(["INVITE", "OPTIONS", "X-NEW", "inv!te", "INV ITE", "", "SIP/2.0", "sip/2.0"]),
    st.sampled_from([" ", " ", "  ", ""]),
    st.sampled_from(["sip:a@b", "<sip:a@b>", "200", "099", "700", "20", "2000", "180", "\u00e9"]),
    st.sampled_from([" ", " ", ""]),
    st.sampled_from(["SIP/2.0", "SIP/2.0", "SIP/2.1", "sip/2.0", "OK", "", "Ringing \u00e9"]),
)


@given(_start_lines)
@example(b"SIP/2.0 20")
@example(b"SIP/2.0 200")
def test_start_line_fast_paths_match_the_general_parser(start: bytes) -> None:
    def fast() -> object:
        msg = parse_message(start + b"\r\nContent-Length: 0\r\n\r\n")
        if isinstance(msg, Request):
            return (True, msg.method, msg.uri_text, msg.version)
        return (False, str(msg.status), msg.reason, msg.version)

    assert outcome(fast) == outcome(lambda: _parse_start_line(start))


def _split_commas_by_character(value: str, what: str) -> list[str]:
    """The character-by-character split that split_commas's fast paths replace."""
    if "," not in value:
        return [value.strip(" \t")]
    parts: list[str] = []
    start = i = 0
    while i < len(value):
        c = value[i]
        if c == '"':
            j = i + 1
            while j < len(value) and value[j] != '"':
                j += 2 if value[j] == "\\" else 1
            if j >= len(value):
                raise RemoteProtocolError("Unterminated quoted string")
            i = j + 1
            continue
        if c == "<":
            j = value.find(">", i)
            if j < 0:
                raise RemoteProtocolError(f"Unterminated '<' in {what}")
            i = j + 1
            continue
        if c == ",":
            parts.append(value[start:i].strip(" \t"))
            start = i + 1
        i += 1
    parts.append(value[start:].strip(" \t"))
    if any(not p for p in parts):
        raise RemoteProtocolError(f"Empty element in {what} list")
    return parts


@given(st.text(alphabet=st.sampled_from(list('ab ,;=<>"\\\t:@')), max_size=40))
@example('<sip:a,b>;x, "q,\\"r", z')
@example("SIP/2.0/UDP h1;branch=z9hG4bK1, SIP/2.0/UDP h2:5060;rport")
@example("a,,b")
@example('"a,b')
def test_split_commas_agrees_with_the_character_loop(value: str) -> None:
    def ours() -> object:
        return tuple(split_commas(value, "Via"))

    def reference() -> object:
        return tuple(_split_commas_by_character(value, "Via"))

    assert _outcome_plain(ours) == _outcome_plain(reference)


def _outcome_plain(parse: Callable[[], object]) -> tuple[object, ...]:
    try:
        return ("ok", parse())
    except RemoteProtocolError as e:
        return ("error", e.status, e.reason)
