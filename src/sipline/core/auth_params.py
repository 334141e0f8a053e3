"""The auth-param syntax of the authentication headers (RFC 3261 §25.1, RFC 7235 §2.1,
RFC 8187 ext-values): a header value split into its scheme and parameters, and the
quoting that writes them back. `sipline.core.auth_header` builds the typed values on
it.

Parsing is tolerant where the RFCs allow it (LWS and folding around every
separator, token and quoted-string forms accepted for every parameter) and raises
only `RemoteProtocolError` on malformed input; the writers raise
`LocalProtocolError` for a value that cannot be written.
"""

from __future__ import annotations

import re

from sipline.core.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "NC_RE",
    "TOKEN68_RE",
    "TOKEN_RE",
    "Params",
    "bare",
    "check_name",
    "decode_ext_value",
    "either",
    "ext_value",
    "flag",
    "join_params",
    "parse_value",
    "quote",
    "scan_value",
]

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")  §25.1
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="  (RFC 7235 §2.1),
# accepted for schemes we do not know (Basic, Bearer, ...) so they still parse.
TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# A whole value of auth-params with plain quoted strings (no backslash): the common
# case `parse_value` takes without its scanner. One param: name, then the quoted
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
NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
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
        match = _WS_RE.match(self.text, start)
        assert match is not None  # it matches the empty string
        self.pos = match.end()
        return self.pos > start

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self, what: str) -> str:
        match = TOKEN_RE.match(self.text, self.pos)
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


def parse_value(text: str | bytes, what: str) -> tuple[str, Params | str]:
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
    return scan_value(text, what)


def scan_value(text: str, what: str) -> tuple[str, Params | str]:
    """`parse_value` for any value, a character at a time (unfolded `text`)."""
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
    if TOKEN68_RE.fullmatch(rest):
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


def quote(value: str, name: str) -> str:
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


def bare(value: str, name: str) -> str:
    if TOKEN_RE.fullmatch(value) is None:
        raise LocalProtocolError(f"{name}={value!r} is not a token")
    return value


def either(value: str, name: str) -> str:
    return value if TOKEN_RE.fullmatch(value) else quote(value, name)


def check_name(name: str) -> str:
    if TOKEN_RE.fullmatch(name) is None:
        raise LocalProtocolError(f"auth-param name {name!r} is not a token")
    return name


def flag(value: str) -> bool:
    # RFC 7616 §3.3: anything other than a case-insensitive "true" means false.
    return value.lower() == "true"


def join_params(scheme: str, parts: list[str]) -> str:
    return f"{scheme} {', '.join(parts)}" if parts else scheme


# --- RFC 8187 ext-values (username*, RFC 7616 §3.4.4) -------------------------------------


def ext_value(value: str) -> str:
    encoded = "".join(
        chr(b) if chr(b) in _EXT_PLAIN else f"%{b:02X}" for b in value.encode("utf-8")
    )
    return f"UTF-8''{encoded}"


def decode_ext_value(value: str, what: str) -> str:
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
