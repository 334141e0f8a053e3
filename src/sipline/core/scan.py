"""The byte scanners under message parsing and stream framing: the pure-Python reference.

Small pure functions on raw bytes, each the whole of one hot loop: `split_head` (a
header block into its start line, header lines and canonical keys), `find_head_end`
(where a stream's header block ends), `content_length_of` (a header block's
Content-Length on a stream), `via_line_parts` (a plain Via line's parts) and
`sip_uri_parts` (a plain SIP URI's parts). `sipline._speedups` implements the same functions
in C; `sipline.core.scanners` picks one of the two. These are the reference: the C
ones must give the same result, or raise `RemoteProtocolError` with the same reason
and status, for every input (tests/core/test_speedups.py holds them to it).
"""

from __future__ import annotations

import re

from sipline.core.abnf import (
    HOSTNAME_QUICK,
    IPV4_OCTETS,
    LINE_HEAD,
    LINE_TAIL,
    TOKEN_CHARS,
    UNRESERVED,
)
from sipline.core.errors import RemoteProtocolError
from sipline.core.headers import _NAME_CACHE, key_from_raw
from sipline.core.params import QUICK_PARAMS

__all__ = [
    "content_length_of",
    "find_head_end",
    "sip_uri_parts",
    "split_head",
    "via_line_parts",
]

CRLF = b"\r\n"

# The name part of every header line: the text between a line's CRLF and its first
# colon. Folded continuation lines and lines without a colon make the fast key scan
# come up short or miss the name cache, and go the careful way.
_NAME_RE = re.compile(rb"\r\n([^:\r\n]*+):")
_CACHED_KEY = _NAME_CACHE.__getitem__

# The empty line closing the header block. RFC 3261 §7 wants CRLF; a bare LF is
# tolerated as many stacks do, so the message parser gets to reject it with a 400.
_END_OF_HEADERS = re.compile(rb"\r?\n\r?\n")

# RFC 3261 §20.14 and §7.3.3:
#   Content-Length = ( "Content-Length" / "l" ) HCOLON 1*DIGIT
#   HCOLON = *( SP / HTAB ) ":" SWS;  SWS = [LWS];  LWS = [*WSP CRLF] 1*WSP
# The value is captured with any folded continuation lines and checked afterwards,
# so a present but malformed value is an error rather than "missing".
_CONTENT_LENGTH = re.compile(
    rb"^(?:content-length|l)[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)",
    re.IGNORECASE | re.MULTILINE,
)

# A whole Via line holding one via-parm as almost every sender writes it (§20.42): no
# LWS, SIP/2.0, a host name or IPv4 address, token parameters (views._VIA_LINE_QUICK).
_VIA_LINE_QUICK = re.compile(
    rb"%s"
    % (
        LINE_HEAD + rf"SIP/2\.0/([{TOKEN_CHARS}]++) (?:({IPV4_OCTETS})|({HOSTNAME_QUICK}))"
        rf"(?::([0-9]{{1,5}}))?({QUICK_PARAMS})" + LINE_TAIL
    ).encode()
)

# A sip/sips URI as almost every sender writes it (§19.1.1): lower-case scheme, a plain
# user part without password or escapes, an IPv4 address or a host name, plain
# parameters, no headers.
_PCHARS = rf"{UNRESERVED}\[\]/:&+$"
_SIP_QUICK_RE = re.compile(
    rf"(sips?):(?:([{UNRESERVED}&=+$,]++)@)?(?:({IPV4_OCTETS})|({HOSTNAME_QUICK}))"
    rf"(?::([0-9]{{1,5}}))?((?:;[{_PCHARS}]++(?:=[{_PCHARS}]++)?)*+)"
)

# Longest Content-Length value accepted on a stream: anything past this is beyond any limit.
_MAX_LENGTH_DIGITS = 12


def split_head(
    head: bytes, max_headers: int, max_line_bytes: int
) -> tuple[bytes, list[bytes], list[str]]:
    """Split a header block (start line and header lines, without the empty line that
    ends it) into the start line, the header lines and each line's canonical key.

    Continuation lines (a line starting with SP or HTAB) are merged into the line
    above, keeping the CRLF (§7.3.1), so each line is the field's raw bytes. Before
    unfolding: more than `max_headers` header lines, or (in a block longer than
    `max_line_bytes`) a line longer than that, is 513; then a line without a name
    before its colon, or a name that is not a token, is 400.
    """
    lines = head.split(CRLF)
    if len(lines) > max_headers + 1:
        raise RemoteProtocolError("Too many header fields", 513)
    if len(head) > max_line_bytes and max(map(len, lines)) > max_line_bytes:
        raise RemoteProtocolError("Header line too long", 513)
    # Every line's name, known from earlier messages (the usual case): no folding
    # (a continuation line's "name" starts with whitespace, never cached), every
    # line has a colon and a well-formed name.
    try:
        keys = list(map(_CACHED_KEY, _NAME_RE.findall(head)))
    except KeyError:
        keys = []
    if len(keys) != len(lines) - 1:
        lines, keys = _lines_and_keys(head, lines)
    start = lines[0]
    del lines[0]
    return start, lines, keys


def _lines_and_keys(head: bytes, lines: list[bytes]) -> tuple[list[bytes], list[str]]:
    """Unfold continuation lines (§7.3.1) and learn each field's name, or raise.

    `lines` starts with the start line; so does the list returned."""
    if b"\r\n " in head or b"\r\n\t" in head:
        lines = _unfold(lines)
    keys: list[str] = []
    cache = _NAME_CACHE
    for ln in lines[1:]:
        c = ln.find(b":")
        if c <= 0:
            raise RemoteProtocolError("Malformed header line (no colon)")
        name = ln[:c]
        k = cache.get(name)
        keys.append(k if k is not None else key_from_raw(name))
    return lines, keys


def _unfold(lines: list[bytes]) -> list[bytes]:
    """Merge continuation lines into the field above, keeping the raw CRLF (§7.3.1)."""
    out: list[bytes] = []
    for ln in lines:
        if ln[:1] in (b" ", b"\t") and out:
            out[-1] = out[-1] + CRLF + ln
        else:
            out.append(ln)
    return out


def find_head_end(buf: bytes | bytearray, pos: int) -> int:
    """The end of the first empty line (CRLF CRLF, or with bare LFs) at or after `pos`,
    just past it; -1 when there is none yet."""
    match = _END_OF_HEADERS.search(buf, pos)
    return -1 if match is None else match.end()


def content_length_of(header: bytes) -> int:
    """The Content-Length of a stream message's header block (RFC 3261 §18.3: it is
    mandatory on streams): missing, malformed, longer than 12 digits or given twice
    with different values is a 400."""
    first_line_end = header.find(b"\n") + 1
    value: int | None = None
    for match in _CONTENT_LENGTH.finditer(header, first_line_end):
        text = match.group(1).strip()
        if not text.isdigit() or len(text) > _MAX_LENGTH_DIGITS:
            raise RemoteProtocolError("Invalid Content-Length")
        number = int(text)
        if value is not None and number != value:
            raise RemoteProtocolError("Conflicting Content-Length")
        value = number
    if value is None:
        raise RemoteProtocolError("Missing Content-Length")
    return value


def via_line_parts(line: bytes) -> tuple[str, str, bool, int | None, str] | None:
    """(transport, host, host is an IPv4 address, port, parameter text) of a raw Via line
    holding one plain via-parm, as written; None for any other line (folded, LWS, IPv6,
    quoted or odd parameters, several values), which the general parser then reads."""
    m = _VIA_LINE_QUICK.fullmatch(line)
    if m is None:
        return None
    transport, ipv4, host, port, params = m.groups()
    return (
        transport.decode("ascii"),
        (ipv4 if ipv4 is not None else host).decode("ascii"),
        ipv4 is not None,
        None if port is None else int(port),
        params.decode("ascii"),
    )


def sip_uri_parts(text: str) -> tuple[str, str | None, str, bool, int | None, str] | None:
    """(scheme, user, host, host is an IPv4 address, port, parameter text) of a plain
    sip/sips URI, as written; None for any other text, which the general parser reads."""
    m = _SIP_QUICK_RE.fullmatch(text)
    if m is None:
        return None
    scheme, user, ipv4, host, port, params = m.groups()
    return (
        scheme,
        user,
        ipv4 if ipv4 is not None else host,
        ipv4 is not None,
        None if port is None else int(port),
        params,
    )
