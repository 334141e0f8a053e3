"""The lookups behind `Message`'s typed views: find the field, parse its value.

Each function takes a `Headers` and returns one view (or raises
`RemoteProtocolError` naming the defect). The fields every proxy and transaction
reads (top Via, To, From, Call-ID, CSeq, Max-Forwards, a lone Route,
Content-Length) are matched whole-line by the views' quick patterns or read from
the raw bytes when plain; anything else takes the general parser on the unfolded
value, which gives the same view or names the defect (tests/core/test_fast_paths.py
holds the two to each other). `Message` caches what these return.
"""

from __future__ import annotations

import re

from sipline.core.abnf import CALLID_BYTES_RE, TOKEN
from sipline.core.auth_header import (
    Challenge,
    Credentials,
    OtherAuth,
    parse_challenge,
    parse_credentials,
)
from sipline.core.errors import RemoteProtocolError
from sipline.core.headers import Headers, _value_of
from sipline.core.params import Params, split_commas
from sipline.core.views import (
    MAX_UINT32,
    NA_LINE_QUICK,
    CSeq,
    NameAddr,
    Via,
    name_addr_of_line,
    parse_call_id,
    parse_cseq,
    parse_name_addr,
    parse_name_addr_list,
    parse_token_list,
    parse_uint,
    parse_via,
    via_of_raw_line,
)

__all__ = [
    "METHOD_BY_OCTETS",
    "call_id",
    "challenges",
    "contacts",
    "content_length",
    "credentials",
    "cseq",
    "expires",
    "max_forwards",
    "name_addr_field",
    "option_tags",
    "record_routes",
    "required_value",
    "routes",
    "single_value",
    "top_via",
    "vias",
]

# 1#token as almost every sender writes it: `parse_token_list` gives its elements.
_TOKEN_LIST = re.compile(rf"{TOKEN}(?:[ \t]*,[ \t]*{TOKEN})*").fullmatch

# Request-Line method octets -> method, for the methods every proxy sees (all tokens).
METHOD_BY_OCTETS = {
    m.encode(): m
    for m in (
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    )
}  # fmt: skip


def single_value(h: Headers, key: str, what: str) -> str | None:
    """The value of a header that may appear once (identical repeats tolerated)."""
    keys = h._keys
    if key not in keys:
        return None
    value = _value_of(h._lines[keys.index(key)])
    if keys.count(key) > 1:
        values = h.get_all(key)
        if any(v != value for v in values[1:]):
            raise RemoteProtocolError(f"Multiple {what} header values")
    return value


def required_value(h: Headers, key: str, what: str) -> str:
    v = single_value(h, key, what)
    if v is None:
        raise RemoteProtocolError(f"Missing {what} header")
    return v


def vias(h: Headers) -> list[Via]:
    out: list[Via] = []
    for key, line in zip(h._keys, h._lines, strict=True):
        if key != "via":
            continue
        if b"," not in line:  # one via-parm: the line's quick pattern, as `top_via`
            via = via_of_raw_line(line)
            if via is not None:
                out.append(via)
                continue
        value = _value_of(line)
        if value:
            out.extend(parse_via(v) for v in split_commas(value, "Via"))
    if not out:
        raise RemoteProtocolError("Missing Via header")
    return out


def top_via(h: Headers) -> Via:
    try:
        line = h._lines[h._keys.index("via")]
    except ValueError:
        raise RemoteProtocolError("Missing Via header") from None
    via = via_of_raw_line(line)
    if via is not None:
        return via
    first = _value_of(line)
    if "," in first:
        first = split_commas(first, "Via")[0]
    return parse_via(first)


def name_addr_field(h: Headers, key: str, what: str) -> NameAddr:
    """To or From: exactly one name-addr (identical repeats tolerated)."""
    keys = h._keys
    if keys.count(key) == 1:
        # name_addr_of_line, inlined: To and From are read for every message.
        line = h._lines[keys.index(key)].decode("utf-8", "surrogateescape")
        m = NA_LINE_QUICK.fullmatch(line)
        if m is not None:
            display, tokens, uri_text, ptext = m.groups()
            if tokens:
                display = " ".join(tokens.split()) or None
            return NameAddr(uri_text, display, Params.of_text(ptext), True)
    return parse_name_addr(required_value(h, key, what), what)


def call_id(h: Headers) -> str:
    keys = h._keys
    if keys.count("call-id") == 1:
        value = h._lines[keys.index("call-id")].partition(b":")[2].strip(b" \t")
        if CALLID_BYTES_RE.fullmatch(value):
            return value.decode("ascii")
    return parse_call_id(required_value(h, "call-id", "Call-ID"))


def cseq(h: Headers) -> CSeq:
    keys = h._keys
    if keys.count("cseq") == 1:
        value = h._lines[keys.index("cseq")].partition(b":")[2].strip(b" \t")
        seq, _, method_b = value.partition(b" ")
        method = METHOD_BY_OCTETS.get(method_b)
        if method is not None and seq.isdigit() and len(seq) <= 9:
            return CSeq(int(seq), method)  # under 10**9: fits 32 bits
    return parse_cseq(required_value(h, "cseq", "CSeq"))


def max_forwards(h: Headers) -> int | None:
    keys = h._keys
    if keys.count("max-forwards") == 1:
        value = h._lines[keys.index("max-forwards")].partition(b":")[2].strip(b" \t")
        if value.isdigit() and len(value) <= 3 and int(value) <= 255:
            return int(value)
    v = single_value(h, "max-forwards", "Max-Forwards")
    return None if v is None else parse_uint(v, "Max-Forwards", 255)


def expires(h: Headers) -> int | None:
    v = single_value(h, "expires", "Expires")
    # §20.19: a malformed or huge value is not fatal; clamp to 32 bits.
    return None if v is None else parse_uint(v, "Expires", MAX_UINT32, clamp=True)


def contacts(h: Headers) -> list[NameAddr]:
    values = h.get_all("contact")
    if any(v == "*" for v in values):
        if len(values) > 1:
            raise RemoteProtocolError("Contact '*' mixed with other contacts")
        return []
    return parse_name_addr_list(values, "Contact")


def routes(h: Headers) -> list[NameAddr]:
    keys = h._keys
    if keys.count("route") == 1:
        na = name_addr_of_line(h._lines[keys.index("route")].decode("utf-8", "surrogateescape"))
        if na is not None:
            return [na]
    return parse_name_addr_list(h.get_all("route"), "Route")


def option_tags(h: Headers, name: str) -> list[str]:
    """Require / Proxy-Require / Supported / Unsupported / Allow: the tokens of every
    field, in order. A plain token list is checked whole by one pattern; anything else
    takes `parse_token_list` (which names the defect)."""
    values = h.get_all(name)
    out: list[str] = []
    for value in values:
        if not value:
            continue  # an empty list is allowed (e.g. Supported, §20.37)
        if _TOKEN_LIST(value) is None:
            return parse_token_list(h.values(name), name)
        if "," in value:
            out.extend(t.strip(" \t") for t in value.split(","))
        else:
            out.append(value)
    return out


def record_routes(h: Headers) -> list[NameAddr]:
    return parse_name_addr_list(h.get_all("record-route"), "Record-Route")


def content_length(h: Headers) -> int | None:
    keys = h._keys
    if keys.count("content-length") == 1:
        value = h._lines[keys.index("content-length")].partition(b":")[2].strip(b" \t")
        if value.isdigit() and len(value) <= 9:
            return int(value)  # under 10**9: fits 32 bits
    v = single_value(h, "content-length", "Content-Length")
    return None if v is None else parse_uint(v, "Content-Length", MAX_UINT32)


def credentials(h: Headers, key: str) -> list[Credentials | OtherAuth]:
    """Authorization or Proxy-Authorization: one credentials value per field
    (RFC 3261 §20.7, §20.28; a UAC may send one per realm, §22.4)."""
    return [parse_credentials(v) for v in h.get_all(key)]


def challenges(h: Headers, key: str) -> list[Challenge | OtherAuth]:
    """WWW-Authenticate or Proxy-Authenticate: one challenge per field (RFC 3261
    §20.44, §20.27; a proxy forking a request may return several, §22.3)."""
    return [parse_challenge(v) for v in h.get_all(key)]
