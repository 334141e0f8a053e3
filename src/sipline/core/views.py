"""Typed views of the header fields routing needs (RFC 3261 §20, §25.1).

Each `parse_*` function reads a value as text and returns a small typed object, or
raises `RemoteProtocolError` naming the header. The common shapes go through one
regex (the hot path); anything unusual (LWS around separators, folding leftovers)
falls back to the general scanner, which accepts everything the grammar allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sipline.core.abnf import (
    CALLID_RE,
    HOSTNAME_QUICK,
    IPV4_OCTETS,
    LINE_HEAD,
    LINE_TAIL,
    TOKEN_CHARS,
    TOKEN_RE,
)
from sipline.core.errors import RemoteProtocolError
from sipline.core.params import (
    QUICK_PARAMS,
    Params,
    parse_params,
    quote,
    scan_quoted,
    skip_ws,
    split_commas,
    unquote,
)
from sipline.core.scanners import via_line_parts
from sipline.core.uri import Uri, _check_host, format_host, parse_uri

__all__ = [
    "CSeq",
    "NameAddr",
    "Via",
    "parse_call_id",
    "parse_cseq",
    "parse_name_addr",
    "parse_token_list",
    "parse_uint",
    "parse_via",
]

MAX_UINT32 = 2**32 - 1
_TOKEN_FULL = TOKEN_RE.fullmatch

# Methods of RFC 3261 and its extensions (all tokens): the CSeq fast path's set.
_METHODS = frozenset(
    {
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    }
)  # fmt: skip


# --- Via (§20.42) ----------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=Params)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        r = self.params.get("received")
        # RFC 5118 §4.5: accept a bracketed IPv6 received= although senders must not add one.
        return r[1:-1] if r and r.startswith("[") and r.endswith("]") else r

    @property
    def rport(self) -> int | None:
        """The rport value; None when absent or present without a value (RFC 3581)."""
        r = self.params.get("rport")
        return int(r) if r is not None and r.isdigit() else None

    @property
    def has_rport(self) -> bool:
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        t = self.params.get("ttl")
        return int(t) if t is not None and t.isdigit() else None

    @property
    def sent_by(self) -> str:
        h = format_host(self.host)
        return h if self.port is None else f"{h}:{self.port}"

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{self.params}"


_VIA_FAST = re.compile(
    r"SIP/2\.0/([A-Za-z0-9\-.!%*_+`'~]+) (\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?::([0-9]{1,5}))?"
)
_VIA_SLOW = re.compile(
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)"
    r"(?:[ \t]*:[ \t]*([0-9]{1,5}))?"
)
# The whole via-parm as almost every sender writes it: no LWS, a host name or IPv4
# address, token parameters. Anything else goes through `_parse_via_general`, which
# also gives the precise error; on what this matches, both give the same Via.
_VIA_QUICK_VALUE = (
    rf"SIP/2\.0/([{TOKEN_CHARS}]++) (?:({IPV4_OCTETS})|({HOSTNAME_QUICK}))"
    rf"(?::([0-9]{{1,5}}))?({QUICK_PARAMS})"
)
_VIA_QUICK = re.compile(_VIA_QUICK_VALUE)
_VIA_LINE_QUICK = re.compile(LINE_HEAD + _VIA_QUICK_VALUE + LINE_TAIL)
# A ttl or rport value that is not 1-5 digits (in quick parameter text), found in one
# search where two parameter lookups were.
_VIA_NUMBER_SUSPECT = re.compile(
    r";(?:ttl|rport)=(?![0-9]{1,5}(?:;|\Z))", re.IGNORECASE | re.ASCII
).search


def parse_via(value: str) -> Via:
    """One via-parm: sent-protocol LWS sent-by *( SEMI via-params )."""
    m = _VIA_QUICK.fullmatch(value)
    if m is not None:
        via = _via_of_match(m)
        if via is not None:
            return via
    return _parse_via_general(value)


def via_of_line(line: str) -> Via | None:
    """The Via of a decoded header line holding a single plain via-parm, or None
    (then `parse_via` of the line's value gives the Via or the error). A plain
    via-parm with a bad IPv4 address raises the error `parse_via` would."""
    m = _VIA_LINE_QUICK.fullmatch(line)
    return None if m is None else _via_of_match(m)


def via_of_raw_line(line: bytes) -> Via | None:
    """`via_of_line` of a raw header line, read by `scanners.via_line_parts` (in C when
    the accelerator is built)."""
    parts = via_line_parts(line)
    return None if parts is None else _via_of_parts(*parts)


def _via_of_match(m: re.Match[str]) -> Via | None:
    transport, ipv4, host, port_s, ptext = m.groups()
    port = None if port_s is None else int(port_s)
    if ipv4 is not None:
        return _via_of_parts(transport, ipv4, True, port, ptext)
    return _via_of_parts(transport, host, False, port, ptext)


def _via_of_parts(
    transport: str, host: str, is_ipv4: bool, port: int | None, ptext: str
) -> Via | None:
    if port is not None and port > 65535:
        return None
    if not is_ipv4 and host[-1].isdigit():
        host = _check_host(host, "Via")  # e.g. an IPv4 address with a bad octet
    if ptext and _VIA_NUMBER_SUSPECT(ptext) is not None:
        # ttl and rport must be numbers: a bad one is reported by the general path
        # (which also takes a good value this pattern cannot tell from a bad one).
        return None
    return Via(transport.upper(), host, port, Params.of_text(ptext), "SIP/2.0")


def _parse_via_general(value: str) -> Via:
    m = _VIA_FAST.match(value)
    if m is not None:
        transport, host_s, port_s = m.group(1), m.group(2), m.group(3)
        protocol = "SIP/2.0"
    else:
        m = _VIA_SLOW.match(value)
        if m is None:
            raise RemoteProtocolError("Malformed Via header")
        protocol = f"{m.group(1)}/{m.group(2)}"
        transport, host_s, port_s = m.group(3), m.group(4), m.group(5)
    params, end = parse_params(value, m.end(), "Via")
    if end != len(value):
        raise RemoteProtocolError("Malformed Via header")
    port = int(port_s) if port_s is not None else None
    if port is not None and port > 65535:
        raise RemoteProtocolError("Via port out of range")
    host = _check_host(host_s, "Via")
    for name in ("ttl", "rport"):
        v = params.get(name)
        if v is not None and not (v.isdigit() and v.isascii() and len(v) <= 5):
            raise RemoteProtocolError(f"Malformed Via {name}")
    return Via(transport.upper(), host, port, params, protocol.upper())


# --- name-addr / addr-spec (§20.10, §20.20, §20.39, §25.1) -----------------------------
@dataclass(slots=True, eq=False)
class NameAddr:
    """A display name, a URI and header parameters (To, From, Contact, Route, ...).

    `uri_text` is kept as written; `uri` parses it on first use. `display_name` is as
    written (a quoted-string keeps its quotes); `display` gives the plain text.
    """

    uri_text: str
    display_name: str | None = None
    params: Params = field(default_factory=Params)
    angle: bool = True
    _uri: Uri | None = None

    @classmethod
    def of(cls, uri: Uri | str, display: str | None = None, **params: str | None) -> NameAddr:
        na = cls(str(uri), quote(display) if display else None)
        if not isinstance(uri, str):
            na._uri = uri
        for k, v in params.items():
            na.params.set(k, v)
        return na

    @property
    def uri(self) -> Uri:
        if self._uri is None:
            self._uri = parse_uri(self.uri_text)
        return self._uri

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value
        self.uri_text = str(value)

    @property
    def display(self) -> str | None:
        return unquote(self.display_name) if self.display_name is not None else None

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        v = self.params.get("expires")
        if v is None:
            return None
        if not v.isdigit():
            raise RemoteProtocolError("Malformed Contact expires parameter")
        return min(int(v), MAX_UINT32)

    @property
    def q(self) -> float | None:
        """q-value (§20.10): "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ]."""
        v = self.params.get("q")
        if v is None:
            return None
        if not re.fullmatch(r"0(?:\.\d{0,3})?|1(?:\.0{0,3})?", v):
            raise RemoteProtocolError("Malformed Contact q parameter")
        return float(v)

    def copy(self) -> NameAddr:
        uri = self._uri.copy() if self._uri is not None else None
        return NameAddr(self.uri_text, self.display_name, self.params.copy(), self.angle, uri)

    def __str__(self) -> str:
        uri = str(self._uri) if self._uri is not None else self.uri_text
        if self.display_name:
            return f"{self.display_name} <{uri}>{self.params}"
        if self.angle:
            return f"<{uri}>{self.params}"
        return f"{uri}{self.params}"

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"


_NA_FAST = re.compile(r'(?:"([^"\\]*)" ?|([A-Za-z0-9\-.!%*_+`\'~ ]+?) ?)?<([^<>\s"]+)>')
# `_NA_FAST` followed by token parameters only: a plain name-addr, whole.
_NA_QUICK_VALUE = (
    r'(?:("[^"\\\r\n]*+") ?+|([A-Za-z0-9\-.!%*_+`\'~ ]+?) ?)?<([^<>\s"]++)>' + f"({QUICK_PARAMS})"
)
_NA_QUICK = re.compile(_NA_QUICK_VALUE)
# Groups: display name (quoted, with its quotes), display tokens, URI, parameters.
NA_LINE_QUICK = re.compile(LINE_HEAD + _NA_QUICK_VALUE + LINE_TAIL)


def name_addr_of_line(line: str) -> NameAddr | None:
    """The NameAddr of a decoded header line holding one plain name-addr, or None
    (then `parse_name_addr` of the line's value gives it or the error)."""
    m = NA_LINE_QUICK.fullmatch(line)
    return None if m is None else _name_addr_of_match(m)


def _name_addr_of_match(m: re.Match[str]) -> NameAddr:
    quoted, tokens, uri_text, ptext = m.groups()
    if tokens:
        quoted = " ".join(tokens.split()) or None
    return NameAddr(uri_text, quoted, Params.of_text(ptext), True)


def parse_name_addr(value: str, what: str) -> NameAddr:
    """Parse `( name-addr / addr-spec ) *( SEMI param )` from a single list element."""
    s = value.strip(" \t")
    m = _NA_QUICK.fullmatch(s)
    if m is not None:
        return _name_addr_of_match(m)
    return _parse_name_addr_general(s, what)


def _parse_name_addr_general(s: str, what: str) -> NameAddr:
    """Every form the grammar allows (LWS, quoted parameters, addr-spec); `s` is
    trimmed. Gives what `_NA_QUICK` does on what that matches, and names each defect."""
    display: str | None
    m = _NA_FAST.match(s)
    if m is not None:
        quoted, tokens, uri_text = m.group(1), m.group(2), m.group(3)
        if quoted is not None:
            display = f'"{quoted}"'
        else:
            display = " ".join(tokens.split()) or None if tokens else None
        i = m.end()
    elif s.startswith('"') or "<" in s:
        display, uri_text, i = _parse_general_name_addr(s, what)
    else:
        # addr-spec: the URI ends at the first ';' and may not hold ',', '?' or ';'
        # (§20: such URIs must be enclosed in <>; RFC 4475 §3.1.2.13 'regbadct').
        j = 0
        while j < len(s) and s[j] not in "; \t":
            j += 1
        uri_text = s[:j]
        if not uri_text:
            raise RemoteProtocolError(f"Missing URI in {what}")
        if "?" in uri_text or "," in uri_text:
            raise RemoteProtocolError(f"URI with headers must be enclosed in <> in {what}")
        na = NameAddr(uri_text, None, Params(), False)
        params, end = parse_params(s, j, what)
        if end != len(s):
            raise RemoteProtocolError(f"Malformed {what} header")
        na.params = params
        return na
    params, end = parse_params(s, i, what)
    if end != len(s):
        raise RemoteProtocolError(f"Malformed {what} header")
    return NameAddr(uri_text, display, params, True)


def _parse_general_name_addr(s: str, what: str) -> tuple[str | None, str, int]:
    i = 0
    display: str | None
    if s.startswith('"'):
        j = scan_quoted(s, 0)
        display = s[:j]
        i = skip_ws(s, j)
    else:
        lt = s.find("<")
        text = s[:lt].strip(" \t")
        # display-name = *(token LWS): every word must be a token (RFC 4475 'baddn').
        for word in text.split():
            if not TOKEN_RE.fullmatch(word):
                raise RemoteProtocolError(f"Display name in {what} must be quoted")
        display = " ".join(text.split()) if text else None
        i = lt
    if i >= len(s) or s[i] != "<":
        raise RemoteProtocolError(f"Malformed {what} header")
    gt = s.find(">", i)
    if gt < 0:
        raise RemoteProtocolError(f"Unterminated '<' in {what}")
    uri_text = s[i + 1 : gt]
    if not uri_text or uri_text != uri_text.strip(" \t") or " " in uri_text:
        # RFC 4475 §3.1.2.14 'badaspec': no LWS inside the addr-spec.
        raise RemoteProtocolError(f"Whitespace inside the URI of {what}")
    return display, uri_text, gt + 1


def parse_name_addr_list(values: list[str], what: str) -> list[NameAddr]:
    return [parse_name_addr(e, what) for value in values for e in split_commas(value, what)]


# --- CSeq, Call-ID, numbers, token lists ------------------------------------------------
@dataclass(slots=True, frozen=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(value: str) -> CSeq:
    """CSeq = 1*DIGIT LWS Method; the number must fit 32 bits (§8.1.1.5)."""
    seq, _, method = value.partition(" ")
    if (
        method in _METHODS
        and seq.isdigit()
        and seq.isascii()
        and len(seq) <= 10
        and int(seq) <= MAX_UINT32
    ):
        return CSeq(int(seq), method)
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
        raise RemoteProtocolError("Malformed CSeq header")
    if len(parts[0]) > 10 or int(parts[0]) > MAX_UINT32:
        raise RemoteProtocolError("CSeq number out of range")
    if not TOKEN_RE.fullmatch(parts[1]):
        raise RemoteProtocolError("Malformed CSeq method")
    return CSeq(int(parts[0]), parts[1])


def parse_call_id(value: str) -> str:
    if not CALLID_RE.fullmatch(value):
        raise RemoteProtocolError("Malformed Call-ID header")
    return value


def parse_uint(value: str, what: str, maximum: int | None = None, clamp: bool = False) -> int:
    """1*DIGIT. Past `maximum`: clamp (e.g. Expires, §20.19) or reject."""
    if not value.isdigit() or not value.isascii():
        raise RemoteProtocolError(f"Malformed {what} header")
    if maximum is not None and (len(value) > 12 or int(value) > maximum):
        if clamp:
            return maximum
        raise RemoteProtocolError(f"{what} value out of range")
    return int(value)


def parse_token_list(values: list[str], what: str) -> list[str]:
    """1#token (Require, Supported, Allow, ...): returns the tokens as written."""
    out: list[str] = []
    for value in values:
        for element in split_commas(value, what):
            if _TOKEN_FULL(element) is None:
                raise RemoteProtocolError(f"Malformed {what} header")
            out.append(element)
    return out
