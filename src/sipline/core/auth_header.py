"""Values of the authentication headers: challenges and credentials.

WWW-Authenticate / Proxy-Authenticate carry a challenge, Authorization /
Proxy-Authorization carry credentials (RFC 3261 §20.7, §20.27, §20.28, §20.44,
grammar in §25.1, extended by RFC 7616 §3.3-§3.4 and RFC 8760 §2).  Digest values
become the typed `Challenge` and `Credentials`; any other scheme is kept as an
`OtherAuth` (scheme plus its raw parameters), so a proxy can forward it untouched.

Parsing is tolerant where the RFCs allow it (LWS and folding around every
separator, parameter names in any case, token and quoted-string forms accepted for
every parameter) and raises only `RemoteProtocolError` on malformed input.
Serialization writes the canonical form: exactly the parameters §25.1 and RFC 8760
quote are quoted (realm, nonce, opaque, domain, qop-options, username, uri,
response, cnonce), the others are bare tokens (algorithm, stale, message qop, nc,
userhash, charset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sipline.core.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Challenge",
    "Credentials",
    "OtherAuth",
    "parse_challenge",
    "parse_credentials",
]

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")  §25.1
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="  (RFC 7235 §2.1),
# accepted for schemes we do not know (Basic, Bearer, ...) so they still parse.
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# A whole value of auth-params with plain quoted strings (no backslash): the common
# case `_parse_value` takes without its scanner. One param: name, then the quoted
# value or the token value.
_QUICK_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_QUICK_QDTEXT = r"[^\"\\\x00-\x08\x0a-\x1f\x7f]*"  # as _QDTEXT_RE, empty allowed
_QUICK_PARAM = rf'[ \t]*({_QUICK_TOKEN})[ \t]*=[ \t]*(?:"({_QUICK_QDTEXT})"|({_QUICK_TOKEN}))[ \t]*'
_QUICK_PARAM_NC = rf'[ \t]*{_QUICK_TOKEN}[ \t]*=[ \t]*(?:"{_QUICK_QDTEXT}"|{_QUICK_TOKEN})[ \t]*'
_QUICK_VALUE_RE = re.compile(
    rf"[ \t]*({_QUICK_TOKEN})[ \t]+{_QUICK_PARAM_NC}(?:,{_QUICK_PARAM_NC})*"
)
_QUICK_PARAM_RE = re.compile(_QUICK_PARAM)
# LWS = [*WSP CRLF] 1*WSP, so a fold is CRLF followed by WSP (§25.1).
_FOLD_RE = re.compile(r"\r\n(?=[ \t])")
# qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII: everything except DQUOTE,
# backslash and the control characters other than HTAB.
_QDTEXT_RE = re.compile(r"[^\"\\\x00-\x08\x0a-\x1f\x7f]+")
_WS_RE = re.compile(r"[ \t]*")
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
_QUOTED_PAIR_CHARS = frozenset(chr(c) for c in range(0x80)) - {"\n", "\r"}
# nc-value = 8LHEX (§25.1); upper-case hex is tolerated on receipt.
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
# ext-value = charset "'" [ language ] "'" value-chars   (RFC 8187 §3.2, RFC 7616 §3.4.4)
_EXT_VALUE_RE = re.compile(
    r"(UTF-8|ISO-8859-1)'[A-Za-z0-9\-]*'((?:%[0-9A-Fa-f]{2}|[A-Za-z0-9!#$&+\-.^_`|~])*)",
    re.IGNORECASE,
)
# Characters username* sends unescaped: attr-char (RFC 8187 §3.2.1) that are also
# SIP token characters, so the ext-value travels as a bare token.
_EXT_PLAIN = frozenset("!+-.`_~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

Params = tuple[tuple[str, str], ...]


# --- scanning ---------------------------------------------------------------------------


def _to_text(value: str | bytes, what: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError(f"{what} is not valid UTF-8") from None
    # Unfold first: a fold is equivalent to a single SP (§7.3.1).
    return _FOLD_RE.sub("", value)


class _Scanner:
    """A cursor over one header value."""

    __slots__ = ("pos", "text", "what")

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self.what = what

    def error(self, defect: str) -> RemoteProtocolError:
        return RemoteProtocolError(f"Malformed {self.what}: {defect}")

    def skip_ws(self) -> bool:
        start = self.pos
        # [ \t]* always matches (perhaps nothing): one C call, not a loop per character
        self.pos = _WS_RE.match(self.text, start).end()  # type: ignore[union-attr]
        return self.pos > start

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self, what: str) -> str:
        match = _TOKEN_RE.match(self.text, self.pos)
        if match is None:
            raise self.error(f"expected {what} at offset {self.pos}")
        self.pos = match.end()
        return match.group()

    def quoted_string(self) -> str:
        text = self.text
        pos = self.pos + 1  # past the opening DQUOTE
        out: list[str] = []
        while pos < len(text):
            char = text[pos]
            if char == '"':
                self.pos = pos + 1
                return "".join(out)
            if char == "\\":
                if pos + 1 >= len(text) or text[pos + 1] not in _QUOTED_PAIR_CHARS:
                    raise self.error(f"bad quoted-pair at offset {pos}")
                out.append(text[pos + 1])
                pos += 2
                continue
            match = _QDTEXT_RE.match(text, pos)
            if match is None:
                raise self.error(f"control character in quoted-string at offset {pos}")
            out.append(match.group())
            pos = match.end()
        raise self.error("unterminated quoted-string")


def _parse_value(text: str | bytes, what: str) -> tuple[str, Params | str]:
    """Split a value into its scheme and either its auth-params or a token68.

    challenge = auth-scheme LWS auth-param *(COMMA auth-param)        (§25.1)
    auth-param = auth-param-name EQUAL ( token / quoted-string )
    EQUAL = SWS "=" SWS ; COMMA = SWS "," SWS
    """
    text = _to_text(text, what)
    quick = _QUICK_VALUE_RE.fullmatch(text)
    if quick is not None:
        # What nearly every peer sends: no escapes, each name once. Same answer as the
        # scanner below, without a Python step per character (profiled: 7% of a
        # REGISTER's time went to scanning its Authorization).
        quick_params = tuple(
            (m[1], m[2] if m[2] is not None else m[3])
            for m in _QUICK_PARAM_RE.finditer(text, quick.end(1))
        )
        names = {name.lower() for name, _ in quick_params}
        if len(names) == len(quick_params):
            return quick[1], quick_params
    return _scan_value(text, what)


def _scan_value(text: str, what: str) -> tuple[str, Params | str]:
    """`_parse_value` for any value, a character at a time (unfolded `text`)."""
    scanner = _Scanner(text, what)
    scanner.skip_ws()
    scheme = scanner.token("an auth-scheme")
    params: list[tuple[str, str]] = []
    if not scanner.skip_ws() and not scanner.at_end():
        raise scanner.error("no whitespace after the auth-scheme")
    if scanner.at_end():
        return scheme, ()
    # A lone token68 ("Basic dXNlcg==") cannot be mistaken for "name=value": a token68
    # has "=" only as trailing padding, and an auth-param value is never empty.
    rest = scanner.text[scanner.pos :].rstrip(" \t")
    if _TOKEN68_RE.fullmatch(rest):
        return scheme, rest
    seen: set[str] = set()
    while True:
        name = scanner.token("an auth-param name")
        scanner.skip_ws()
        if scanner.peek() != "=":
            raise scanner.error(f"expected '=' after {name!r}")
        scanner.pos += 1
        scanner.skip_ws()
        if scanner.peek() == '"':
            value = scanner.quoted_string()
        else:
            value = scanner.token(f"a value for {name!r}")
        # RFC 7235 §2.1: each parameter name occurs only once per challenge.
        if name.lower() in seen:
            raise scanner.error(f"duplicate parameter {name!r}")
        seen.add(name.lower())
        params.append((name, value))
        scanner.skip_ws()
        if scanner.at_end():
            return scheme, tuple(params)
        if scanner.peek() != ",":
            raise scanner.error(f"expected ',' at offset {scanner.pos}")
        scanner.pos += 1
        scanner.skip_ws()


# --- serialization helpers ----------------------------------------------------------------


def _quote(value: str, name: str) -> str:
    if _QDTEXT_RE.fullmatch(value):  # nothing to escape (nonces, realms, digests)
        return f'"{value}"'
    out = ['"']
    for char in value:
        if char in "\r\n":
            raise LocalProtocolError(f"{name} cannot carry CR or LF")
        # What qdtext cannot hold goes in a quoted-pair (DQUOTE, "\\", controls).
        out.append(char if _QDTEXT_RE.fullmatch(char) else "\\" + char)
    out.append('"')
    return "".join(out)


def _bare(value: str, name: str) -> str:
    if _TOKEN_RE.fullmatch(value) is None:
        raise LocalProtocolError(f"{name}={value!r} is not a token")
    return value


def _either(value: str, name: str) -> str:
    return value if _TOKEN_RE.fullmatch(value) else _quote(value, name)


def _check_name(name: str) -> str:
    if _TOKEN_RE.fullmatch(name) is None:
        raise LocalProtocolError(f"auth-param name {name!r} is not a token")
    return name


def _flag(value: str) -> bool:
    # RFC 7616 §3.3: anything other than a case-insensitive "true" means false.
    return value.lower() == "true"


def _join(scheme: str, parts: list[str]) -> str:
    return f"{scheme} {', '.join(parts)}" if parts else scheme


# --- unknown schemes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OtherAuth:
    """A challenge or credentials in a scheme other than Digest, kept opaque.

    `params` holds the auth-params in order with their values unquoted; `token68`
    the single token68 some HTTP schemes use instead (never both).
    """

    scheme: str
    params: Params = ()
    token68: str | None = None

    def serialize(self) -> str:
        scheme = _bare(self.scheme, "auth-scheme")
        if self.token68 is not None:
            if self.params or _TOKEN68_RE.fullmatch(self.token68) is None:
                raise LocalProtocolError("token68 must be alone and well formed")
            return f"{scheme} {self.token68}"
        return _join(scheme, [f"{_check_name(n)}={_either(v, n)}" for n, v in self.params])


# --- Digest challenge -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """A Digest challenge (RFC 3261 §25.1 digest-cln, RFC 7616 §3.3).

    `algorithm` is as sent (None means MD5); `qop` lists the offered options
    (empty when the parameter is absent, the RFC 2069 form); `extra` keeps
    parameters we do not interpret, in order.
    """

    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str | None = None
    qop: tuple[str, ...] = ()
    stale: bool = False
    domain: tuple[str, ...] = ()
    userhash: bool = False
    charset: str | None = None
    extra: Params = ()

    @classmethod
    def parse(cls, value: str | bytes) -> Challenge:
        """Parse a Digest challenge; any other scheme is a `RemoteProtocolError`."""
        parsed = parse_challenge(value)
        if isinstance(parsed, OtherAuth):
            raise RemoteProtocolError(f"Unsupported authentication scheme {parsed.scheme!r}")
        return parsed

    def serialize(self) -> str:
        """The header value, starting with the "Digest" scheme."""
        parts = [f"realm={_quote(self.realm, 'realm')}"]
        if self.domain:
            for uri in self.domain:
                if not uri or any(c in uri for c in ' \t\r\n"\\'):
                    raise LocalProtocolError(f"domain URI {uri!r} cannot be listed")
            parts.append(f'domain="{" ".join(self.domain)}"')
        parts.append(f"nonce={_quote(self.nonce, 'nonce')}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque, 'opaque')}")
        if self.stale:
            parts.append("stale=true")
        if self.algorithm is not None:
            parts.append(f"algorithm={_bare(self.algorithm, 'algorithm')}")
        if self.qop:
            # qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT
            parts.append(f'qop="{",".join(_bare(q, "qop") for q in self.qop)}"')
        if self.charset is not None:
            parts.append(f"charset={_bare(self.charset, 'charset')}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{_check_name(n)}={_either(v, n)}" for n, v in self.extra)
        return _join("Digest", parts)


def _challenge_from(params: Params, what: str) -> Challenge:
    fields: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for name, value in params:
        key = name.lower()
        if key in _CHALLENGE_KEYS:
            fields[key] = value
        else:
            extra.append((name, value))
    for required in ("realm", "nonce"):
        if required not in fields:
            raise RemoteProtocolError(f"Malformed {what}: Digest challenge without {required}")
    qop = tuple(q for q in (p.strip(" \t") for p in fields.get("qop", "").split(",")) if q)
    if "qop" in fields and (not qop or any(_TOKEN_RE.fullmatch(q) is None for q in qop)):
        raise RemoteProtocolError(f"Malformed {what}: bad qop-options")
    return Challenge(
        realm=fields["realm"],
        nonce=fields["nonce"],
        opaque=fields.get("opaque"),
        algorithm=fields.get("algorithm"),
        qop=qop,
        stale=_flag(fields.get("stale", "")),
        domain=tuple(fields.get("domain", "").split()),
        userhash=_flag(fields.get("userhash", "")),
        charset=fields.get("charset"),
        extra=tuple(extra),
    )


_CHALLENGE_KEYS = frozenset(
    {"realm", "nonce", "opaque", "algorithm", "qop", "stale", "domain", "userhash", "charset"}
)


def parse_challenge(value: str | bytes) -> Challenge | OtherAuth:
    """Parse a WWW-Authenticate or Proxy-Authenticate value."""
    what = "challenge"
    scheme, params = _parse_value(value, what)
    if scheme.lower() != "digest":
        return _other(scheme, params)
    if isinstance(params, str) or not params:
        raise RemoteProtocolError(f"Malformed {what}: Digest needs auth-params")
    return _challenge_from(params, what)


# --- Digest credentials -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """Digest credentials (RFC 3261 §25.1 digest-response, RFC 7616 §3.4).

    Every field may be absent on receipt (a verifier reports what is missing);
    `username` is the decoded value whether it came as `username` or as RFC 7616
    `username*`. `nc` is the 8 hex digits as sent, since it is hashed as sent.
    """

    username: str | None = None
    realm: str | None = None
    nonce: str | None = None
    uri: str | None = None
    response: str | None = None
    algorithm: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None
    userhash: bool = False
    extra: Params = ()

    @classmethod
    def parse(cls, value: str | bytes) -> Credentials:
        """Parse Digest credentials; any other scheme is a `RemoteProtocolError`."""
        parsed = parse_credentials(value)
        if isinstance(parsed, OtherAuth):
            raise RemoteProtocolError(f"Unsupported authorization scheme {parsed.scheme!r}")
        return parsed

    def serialize(self) -> str:
        """The header value, starting with the "Digest" scheme."""
        parts: list[str] = []
        if self.username is not None:
            if any(c in self.username for c in "\r\n"):
                # RFC 7616 §3.4.4: what a quoted-string cannot carry goes in username*.
                parts.append(f"username*={_ext_value(self.username)}")
            else:
                parts.append(f"username={_quote(self.username, 'username')}")
        for name in ("realm", "nonce", "uri", "response"):
            field = getattr(self, name)
            if field is not None:
                parts.append(f"{name}={_quote(field, name)}")
        if self.algorithm is not None:
            parts.append(f"algorithm={_bare(self.algorithm, 'algorithm')}")
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce, 'cnonce')}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque, 'opaque')}")
        # message-qop = "qop" EQUAL qop-value ; nonce-count = "nc" EQUAL nc-value (unquoted)
        if self.qop is not None:
            parts.append(f"qop={_bare(self.qop, 'qop')}")
        if self.nc is not None:
            if _NC_RE.fullmatch(self.nc) is None:
                raise LocalProtocolError(f"nc={self.nc!r} is not 8 hex digits")
            parts.append(f"nc={self.nc}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{_check_name(n)}={_either(v, n)}" for n, v in self.extra)
        return _join("Digest", parts)


_CREDENTIAL_KEYS = frozenset(
    {
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "algorithm",
        "cnonce",
        "opaque",
        "qop",
        "nc",
    }
)


def _ext_value(value: str) -> str:
    encoded = "".join(
        chr(b) if chr(b) in _EXT_PLAIN else f"%{b:02X}" for b in value.encode("utf-8")
    )
    return f"UTF-8''{encoded}"


def _decode_ext_value(value: str, what: str) -> str:
    match = _EXT_VALUE_RE.fullmatch(value)
    if match is None:
        raise RemoteProtocolError(f"Malformed {what}: bad username* ext-value")
    raw = bytearray()
    chars = match.group(2)
    i = 0
    while i < len(chars):
        if chars[i] == "%":
            raw.append(int(chars[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.append(ord(chars[i]))
            i += 1
    charset = "utf-8" if match.group(1).upper() == "UTF-8" else "latin-1"
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"Malformed {what}: username* is not {charset}") from None


def parse_credentials(value: str | bytes) -> Credentials | OtherAuth:
    """Parse an Authorization or Proxy-Authorization value."""
    what = "credentials"
    scheme, params = _parse_value(value, what)
    if scheme.lower() != "digest":
        return _other(scheme, params)
    if isinstance(params, str) or not params:
        raise RemoteProtocolError(f"Malformed {what}: Digest needs auth-params")
    fields: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    username_star: str | None = None
    userhash = False
    for name, raw in params:
        key = name.lower()
        if key in _CREDENTIAL_KEYS:
            fields[key] = raw
        elif key == "username*":
            username_star = _decode_ext_value(raw, what)
        elif key == "userhash":
            userhash = _flag(raw)
        else:
            extra.append((name, raw))
    if username_star is not None:
        # RFC 7616 §3.4.4: username and username* are mutually exclusive.
        if "username" in fields:
            raise RemoteProtocolError(f"Malformed {what}: both username and username*")
        fields["username"] = username_star
    nc = fields.get("nc")
    if nc is not None and _NC_RE.fullmatch(nc) is None:
        raise RemoteProtocolError(f"Malformed {what}: nc is not 8 hex digits")
    qop = fields.get("qop")
    if qop is not None and _TOKEN_RE.fullmatch(qop) is None:
        raise RemoteProtocolError(f"Malformed {what}: qop is not a token")
    return Credentials(
        username=fields.get("username"),
        realm=fields.get("realm"),
        nonce=fields.get("nonce"),
        uri=fields.get("uri"),
        response=fields.get("response"),
        algorithm=fields.get("algorithm"),
        cnonce=fields.get("cnonce"),
        opaque=fields.get("opaque"),
        qop=qop,
        nc=nc,
        userhash=userhash,
        extra=tuple(extra),
    )


def _other(scheme: str, params: Params | str) -> OtherAuth:
    if isinstance(params, str):
        return OtherAuth(scheme, token68=params)
    return OtherAuth(scheme, params)
