"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966) and §19.1.4 equivalence.

Every component is kept as written (escapes included) so `str(parse_uri(s)) == s`;
comparison unescapes first, as §19.1.4 requires. Other schemes are kept opaque as
`AbsoluteUri` so a proxy can still answer 416 (RFC 4475 §3.3.2).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from sipline.core.abnf import (
    ABSOLUTE_REST_RE,
    HNAME_RE,
    HOSTNAME_RE,
    HVALUE_RE,
    IPV4_RE,
    IPV6_BODY_RE,
    PARAMCHARS_RE,
    PASSWORD_RE,
    SCHEME_RE,
    USER_RE,
)
from sipline.core.errors import RemoteProtocolError
from sipline.core.params import Params
from sipline.core.scanners import sip_uri_parts

__all__ = [
    "AbsoluteUri",
    "SipUri",
    "TelUri",
    "Uri",
    "format_host",
    "parse_uri",
    "unescape",
]

_ESC_RE = re.compile(r"%([0-9A-Fa-f]{2})")

# §19.1.4: these parameters, present in one URI only, make the URIs differ.
_MUST_MATCH_PARAMS = ("user", "ttl", "method", "maddr")


def unescape(s: str) -> str:
    """Decode %HH escapes once (never recursively, RFC 4475 §3.1.1.3)."""
    if "%" not in s:
        return s
    raw = _ESC_RE.sub(lambda m: chr(int(m.group(1), 16)), s)
    # Escapes name octets: re-read the octets as UTF-8 where they form it.
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def format_host(host: str) -> str:
    """Bracket an IPv6 address for use in a URI or a Via sent-by."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _check_host(host: str, what: str) -> str:
    """Validate `host` as written (IPv6 in brackets) and return it without brackets."""
    if host.startswith("["):
        body = host[1:-1] if host.endswith("]") else ""
        if not body or not IPV6_BODY_RE.fullmatch(body):
            raise RemoteProtocolError(f"Malformed IPv6 reference in {what}")
        try:
            ipaddress.IPv6Address(body)
        except ValueError:
            # RFC 5118 §4.10: tolerate the RFC 3261 ABNF's extra colon ("::" + ":").
            try:
                ipaddress.IPv6Address(body.replace(":::", "::"))
            except ValueError:
                raise RemoteProtocolError(f"Malformed IPv6 address in {what}") from None
        return body
    if IPV4_RE.fullmatch(host):
        if max(map(int, host.split("."))) > 255:
            raise RemoteProtocolError(f"Malformed IPv4 address in {what}")
        return host
    if not HOSTNAME_RE.fullmatch(host):
        raise RemoteProtocolError(f"Malformed host in {what}")
    return host


def _split_hostport(hostport: str, what: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise RemoteProtocolError(f"Malformed IPv6 reference in {what}")
        host, rest = hostport[: end + 1], hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise RemoteProtocolError(f"Malformed host in {what}")
        port_s = rest[1:] if rest else None
    else:
        host, colon, port_s_ = hostport.partition(":")
        port_s = port_s_ if colon else None
    port: int | None = None
    if port_s is not None:
        if not port_s.isdigit() or not port_s.isascii() or len(port_s) > 5:
            raise RemoteProtocolError(f"Malformed port in {what}")
        port = int(port_s)
        if port > 65535:
            raise RemoteProtocolError(f"Port out of range in {what}")
    return _check_host(host, what), port


def _parse_uri_params(text: str, what: str) -> Params:
    items: list[tuple[str, str | None]] = []
    if not text:
        return Params(items)
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if not name or not PARAMCHARS_RE.fullmatch(name):
            raise RemoteProtocolError(f"Malformed URI parameter in {what}")
        if eq:
            if not value or not PARAMCHARS_RE.fullmatch(value):
                raise RemoteProtocolError(f"Malformed URI parameter value in {what}")
            items.append((name, value))
        else:
            items.append((name, None))
    return Params(items)


def _parse_uri_headers(text: str, what: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not eq or not HNAME_RE.fullmatch(name) or not HVALUE_RE.fullmatch(value):
            raise RemoteProtocolError(f"Malformed URI header in {what}")
        out.append((name, value))
    return out


@dataclass(slots=True, eq=False)
class SipUri:
    """`sip:` / `sips:` URI. `host` is stored without IPv6 brackets."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = field(default_factory=Params)
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        t = self.params.get("transport")
        return t.upper() if t else None

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def lr(self) -> bool:
        return "lr" in self.params

    @property
    def host_port(self) -> str:
        h = format_host(self.host)
        return h if self.port is None else f"{h}:{self.port}"

    @property
    def aor(self) -> str:
        """`user@host` with escapes decoded, host lower-cased: the key a registrar stores."""
        host = self.host.lower()
        return f"{unescape(self.user)}@{host}" if self.user is not None else host

    def copy(self) -> SipUri:
        return SipUri(
            self.scheme,
            self.user,
            self.password,
            self.host,
            self.port,
            self.params.copy(),
            list(self.headers),
        )

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host_port)
        out.append(str(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(out)

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def _key(self) -> tuple[object, ...]:
        user = unescape(self.user) if self.user is not None else None
        pw = unescape(self.password) if self.password is not None else None
        return (self.scheme, user, pw, self.host.lower(), self.port)

    def __eq__(self, other: object) -> bool:
        """RFC 3261 §19.1.4 equivalence."""
        if not isinstance(other, SipUri):
            return NotImplemented
        if self._key() != other._key():
            return False
        mine = {n.lower(): v for n, v in self.params}
        theirs = {n.lower(): v for n, v in other.params}
        for name in mine.keys() & theirs.keys():
            a, b = mine[name], theirs[name]
            if (a is None) != (b is None):
                return False
            if a is not None and b is not None and unescape(a).lower() != unescape(b).lower():
                return False
        for name in _MUST_MATCH_PARAMS:
            if (name in mine) != (name in theirs):
                return False
        # Header components are never ignored (§19.1.4).
        hs = {(n.lower(), unescape(v)) for n, v in self.headers}
        ho = {(n.lower(), unescape(v)) for n, v in other.headers}
        return hs == ho

    def __hash__(self) -> int:
        return hash(self._key())


@dataclass(slots=True, eq=False)
class TelUri:
    """`tel:` URI (RFC 3966): a global (`+...`) or local number with parameters."""

    number: str
    params: Params = field(default_factory=Params)

    scheme = "tel"

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without visual separators (RFC 3966 §5.1.1)."""
        return "".join(c for c in self.number if c not in "-.()")

    def copy(self) -> TelUri:
        return TelUri(self.number, self.params.copy())

    def __str__(self) -> str:
        return f"tel:{self.number}{self.params}"

    def __repr__(self) -> str:
        return f"TelUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        """RFC 3966 §4: same digits, same parameters in any order, case-insensitive."""
        if not isinstance(other, TelUri):
            return NotImplemented
        mine = {(n.lower(), (v or "").lower()) for n, v in self.params}
        theirs = {(n.lower(), (v or "").lower()) for n, v in other.params}
        return self.digits.lower() == other.digits.lower() and mine == theirs

    def __hash__(self) -> int:
        return hash(self.digits.lower())


@dataclass(slots=True, eq=False)
class AbsoluteUri:
    """A URI of any other scheme, kept opaque (e.g. `urn:service:sos`, `http:`)."""

    scheme: str
    rest: str

    def copy(self) -> AbsoluteUri:
        return AbsoluteUri(self.scheme, self.rest)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"

    def __repr__(self) -> str:
        return f"AbsoluteUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.rest == other.rest

    def __hash__(self) -> int:
        return hash((self.scheme.lower(), self.rest))


Uri = SipUri | TelUri | AbsoluteUri

_TEL_NUMBER_RE = re.compile(r"\+?[0-9A-Fa-f*#\-.()]+")


def _parse_sip(scheme: str, rest: str, what: str) -> SipUri:
    # '@' appears only as the userinfo separator (params and headers cannot hold it),
    # while '?' and ';' may appear inside the user part (RFC 4475 §3.1.1.2, §3.1.1.9).
    at = rest.rfind("@")
    user = password = None
    if at >= 0:
        userinfo, hostpart = rest[:at], rest[at + 1 :]
        u, colon, pw = userinfo.partition(":")
        if not u or not USER_RE.fullmatch(u):
            raise RemoteProtocolError(f"Malformed user part in {what}")
        if colon and not PASSWORD_RE.fullmatch(pw):
            raise RemoteProtocolError(f"Malformed password in {what}")
        user, password = u, (pw if colon else None)
    else:
        hostpart = rest
    hostpart, qmark, headers_s = hostpart.partition("?")
    hostport, semi, params_s = hostpart.partition(";")
    if not hostport:
        raise RemoteProtocolError(f"Missing host in {what}")
    host, port = _split_hostport(hostport, what)
    params = _parse_uri_params(params_s, what) if semi else Params()
    headers = _parse_uri_headers(headers_s, what) if qmark else []
    return SipUri(scheme, user, password, host, port, params, headers)


def _parse_tel(rest: str, what: str) -> TelUri:
    number, semi, params_s = rest.partition(";")
    if not _TEL_NUMBER_RE.fullmatch(number):
        raise RemoteProtocolError(f"Malformed telephone number in {what}")
    return TelUri(number, _parse_uri_params(params_s, what) if semi else Params())


def parse_uri(text: str, what: str = "URI") -> Uri:
    """Parse a URI; raise `RemoteProtocolError` (400) naming `what` when malformed."""
    # A plain sip/sips URI (scanners.sip_uri_parts): built here as `_parse_sip` would
    # (it checks a host name ending in a digit the same way).
    parts = sip_uri_parts(text)
    if parts is not None:
        scheme, user, host, is_ipv4, port, ptext = parts
        if port is None or port <= 65535:
            if not is_ipv4 and host[-1].isdigit():
                host = _check_host(host, what)  # e.g. an IPv4 address with a bad octet
            return SipUri(scheme, user, None, host, port, Params.of_text(ptext), [])
    return _parse_uri_general(text, what)


def _parse_uri_general(text: str, what: str) -> Uri:
    colon = text.find(":")
    if colon <= 0:
        raise RemoteProtocolError(f"Malformed {what}: no scheme")
    scheme, rest = text[:colon], text[colon + 1 :]
    lscheme = scheme.lower()
    if lscheme in ("sip", "sips"):
        return _parse_sip(lscheme, rest, what)
    if not SCHEME_RE.fullmatch(scheme):
        raise RemoteProtocolError(f"Malformed {what}: bad scheme")
    if lscheme == "tel":
        return _parse_tel(rest, what)
    if not rest or not ABSOLUTE_REST_RE.fullmatch(rest):
        raise RemoteProtocolError(f"Malformed {what}")
    return AbsoluteUri(scheme, rest)
