"""Parameters (`;name=value`) and the low-level scanners shared by the header views.

RFC 3261 §7.3.1: parameter names and most values are case-insensitive; values are a
token, a host, or a quoted-string. A `Params` keeps names and values as written so a
re-serialised header is byte-faithful, and looks names up case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sipline.core.abnf import TOKEN_CHARS
from sipline.core.errors import RemoteProtocolError

__all__ = [
    "QUICK_PARAMS",
    "Params",
    "parse_params",
    "quote",
    "split_commas",
    "unquote",
]

# abnf.TOKEN as a set, for the hand scanners below.
_TOKEN_SET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~")
# A generic-param value is token / host / quoted-string (§25.1); hosts add ":" "[" "]".
_VALUE_SET = _TOKEN_SET | frozenset(":[]")

# `*( SEMI generic-param )` as almost every sender writes it: no LWS, no quoted
# values. `Params.of_text` of text this matches is what `parse_params` gives.
QUICK_PARAMS = rf"(?:;[{TOKEN_CHARS}]++(?:=[{TOKEN_CHARS}:\[\]]++)?)*+"


class Params:
    """An ordered list of `(name, value)`; `value` is None for a flag parameter.

    The parsers hand over well-formed parameter text as it is (`Params.of_text`):
    it is split into items on first use, and a lookup by name before that is one
    regex search. Either way the answers are those of the item list.
    """

    __slots__ = ("_items", "_text")

    def __init__(self, items: list[tuple[str, str | None]] | None = None) -> None:
        self._items: list[tuple[str, str | None]] | None = items if items is not None else []
        self._text = ""

    @classmethod
    def of_text(cls, text: str) -> Params:
        """Parameters from text the caller matched against `QUICK_PARAMS` (or a like
        pattern): `*( ";" name [ "=" value ] )`, names and values holding neither ';'
        nor '=', values not empty."""
        p = cls.__new__(cls)
        p._items = None
        p._text = text
        return p

    def _list(self) -> list[tuple[str, str | None]]:
        items = self._items
        if items is None:
            items = self._items = _split_quick(self._text)
        return items

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of `name` (case-insensitive); `default` if absent or a flag."""
        if self._items is None:
            m = (_LOOKUP_RES.get(name) or _lookup_re(name)).search(self._text)
            if m is not None and (value := m[1]) is not None:
                return value
            return default
        lname = name.lower()
        for n, v in self._items:
            if n.lower() == lname:
                return v if v is not None else default
        return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if self._items is None:  # one regex search, as in `get` (profiled: the Via's
            # rport check split every request's parameters into a list first)
            return (_LOOKUP_RES.get(name) or _lookup_re(name)).search(self._text) is not None
        lname = name.lower()
        return any(n.lower() == lname for n, _ in self._items)

    def set(self, name: str, value: str | None = None) -> None:
        """Replace `name` in place (keeping its position), or append it."""
        items = self._list()
        lname = name.lower()
        for i, (n, _) in enumerate(items):
            if n.lower() == lname:
                items[i] = (n, value)
                return
        items.append((name, value))

    def remove(self, name: str) -> None:
        lname = name.lower()
        self._items = [(n, v) for n, v in self._list() if n.lower() != lname]

    def items(self) -> list[tuple[str, str | None]]:
        return list(self._list())

    def copy(self) -> Params:
        if self._items is None:
            return Params.of_text(self._text)
        return Params(list(self._items))

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(self._list())

    def __len__(self) -> int:
        return len(self._list())

    def __bool__(self) -> bool:
        return bool(self._text) if self._items is None else bool(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return _folded(self._list()) == _folded(other._list())

    def __hash__(self) -> int:
        return hash(tuple(_folded(self._list())))

    def __repr__(self) -> str:
        return f"Params({self._list()!r})"

    def __str__(self) -> str:
        if self._items is None:
            return self._text  # exactly what the items would print
        return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self._items)


def _split_quick(text: str) -> list[tuple[str, str | None]]:
    """Items of `QUICK_PARAMS` text: ';' and '=' only ever separate names and values."""
    items: list[tuple[str, str | None]] = []
    if text:
        for part in text[1:].split(";"):
            name, eq, value = part.partition("=")
            items.append((name, value) if eq else (name, None))
    return items


# Parameter name as asked for -> a regex finding its first occurrence in
# `QUICK_PARAMS` text (ASCII case-insensitive, as `n.lower() == name.lower()` is
# there). Bounded: names come from our own code, but nothing stops a caller.
_LOOKUP_RES: dict[str, re.Pattern[str]] = {}


def _lookup_re(name: str) -> re.Pattern[str]:
    pattern = _LOOKUP_RES.get(name)
    if pattern is None:
        escaped = re.escape(name.lower())
        pattern = re.compile(rf";{escaped}(?:=([^;]*))?(?=;|\Z)", re.IGNORECASE | re.ASCII)
        if len(_LOOKUP_RES) < 256:
            _LOOKUP_RES[name] = pattern
    return pattern


def _folded(items: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    return [(n.lower(), v) for n, v in items]


def skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in " \t":
        i += 1
    return i


def scan_quoted(s: str, i: int) -> int:
    """`s[i]` is a DQUOTE: return the index just past the closing quote.

    quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE (§25.1)
    """
    n = len(s)
    j = i + 1
    while j < n:
        c = s[j]
        if c == '"':
            return j + 1
        if c == "\\":
            j += 2
            continue
        j += 1
    raise RemoteProtocolError("Unterminated quoted string")


def scan_token(s: str, i: int, chars: frozenset[str] = _TOKEN_SET) -> int:
    n = len(s)
    j = i
    while j < n and s[j] in chars:
        j += 1
    return j


def parse_params(s: str, i: int, what: str) -> tuple[Params, int]:
    """Parse `*( SEMI generic-param )` from `s[i:]`.

    Stops at a comma or the end; returns the params and the index where it stopped.
    LWS is allowed around ";" and "=" (SEMI and EQUAL carry SWS, §25.1).
    """
    items: list[tuple[str, str | None]] = []
    n = len(s)
    i = skip_ws(s, i)
    while i < n and s[i] == ";":
        i = skip_ws(s, i + 1)
        j = scan_token(s, i)
        if j == i:
            raise RemoteProtocolError(f"Empty or malformed parameter in {what}")
        name = s[i:j]
        i = skip_ws(s, j)
        value: str | None = None
        if i < n and s[i] == "=":
            i = skip_ws(s, i + 1)
            if i < n and s[i] == '"':
                j = scan_quoted(s, i)
            else:
                j = scan_token(s, i, _VALUE_SET)
                if j == i:
                    raise RemoteProtocolError(f"Missing value for parameter {name!r} in {what}")
            value = s[i:j]
            i = skip_ws(s, j)
        items.append((name, value))
    return Params(items), i


def split_commas(value: str, what: str) -> list[str]:
    """Split a header value at the commas that separate list elements.

    Commas inside quoted strings and angle brackets do not count (§7.3.1). Empty
    elements are malformed (RFC 4475 §3.1.2.1 'badinv01').
    """
    if "," not in value:
        return [value.strip(" \t")]
    if '"' not in value and "<" not in value:
        # Nothing can hide a comma (a Via list, a Supported list): split in C.
        parts = [p.strip(" \t") for p in value.split(",")]
    else:
        parts = []
        start = 0
        i = 0
        search = _LIST_SPECIAL.search
        while (m := search(value, i)) is not None:
            j = m.start()
            c = value[j]
            if c == '"':
                i = scan_quoted(value, j)
            elif c == "<":
                k = value.find(">", j)
                if k < 0:
                    raise RemoteProtocolError(f"Unterminated '<' in {what}")
                i = k + 1
            else:
                parts.append(value[start:j].strip(" \t"))
                start = i = j + 1
        parts.append(value[start:].strip(" \t"))
    if not all(parts):
        raise RemoteProtocolError(f"Empty element in {what} list")
    return parts


# What split_commas must look at: a comma, or the start of a quoted string or of a
# bracketed URI (whose commas do not separate elements).
_LIST_SPECIAL = re.compile(r'[",<]')


def unquote(value: str) -> str:
    """Remove the quotes and quoted-pair escapes of a quoted-string; tokens pass through."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        if "\\" not in inner:
            return inner
        out = []
        i = 0
        while i < len(inner):
            if inner[i] == "\\" and i + 1 < len(inner):
                i += 1
            out.append(inner[i])
            i += 1
        return "".join(out)
    return value


def quote(value: str) -> str:
    """Render `value` as a quoted-string, escaping `"` and `\\`."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
