"""An ordered, case-insensitive header multimap that keeps every field's raw bytes.

A field nobody touched serialises byte for byte as it arrived (folding, spacing,
compact names and all), so a proxy forwards what it does not understand unchanged.
Names are matched case-insensitively and compact forms are expanded (§7.3.1, §7.3.3).
Typed views (`views.py`) are parsed on first access and cached per header name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sipline.core.errors import RemoteProtocolError
from sipline.core.params import split_commas

__all__ = ["COMPACT_FORMS", "Headers", "canonical_key", "display_name"]

T = TypeVar("T")

# RFC 3261 §7.3.3 and the IANA registry's compact forms.
COMPACT_FORMS = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

_SPECIAL_NAMES = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
    "p-asserted-identity": "P-Asserted-Identity",
    "p-preferred-identity": "P-Preferred-Identity",
}

_TOKEN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~")

# Raw name bytes (as written, before the colon) -> canonical key, and the same for
# names our callers pass as text. Bounded so that a stream of invented header names
# cannot grow them without limit.
_NAME_CACHE: dict[bytes, str] = {}
_KEY_CACHE: dict[str, str] = {}
_NAME_CACHE_MAX = 2048
# Canonical key -> its display name.
_DISPLAY_CACHE: dict[str, str] = {}
# Canonical key -> b"Display-Name: ", the prefix of every line we write.
_PREFIX_CACHE: dict[str, bytes] = {}


def canonical_key(name: str) -> str:
    """The lower-case long form of a header name: 'v' -> 'via', 'CALL-ID' -> 'call-id'."""
    key = _KEY_CACHE.get(name)
    if key is not None:
        return key
    lname = name.strip(" \t").lower()
    key = COMPACT_FORMS.get(lname, lname)
    if len(_KEY_CACHE) < _NAME_CACHE_MAX:
        _KEY_CACHE[name] = key
    return key


def display_name(key: str) -> str:
    """The conventional spelling of a canonical key, for fields we create (and for the
    errors naming a field: every list value read spells its field's name)."""
    name = _DISPLAY_CACHE.get(key)
    if name is None:
        name = _SPECIAL_NAMES.get(key) or "-".join(part.capitalize() for part in key.split("-"))
        if len(_DISPLAY_CACHE) < _NAME_CACHE_MAX:
            _DISPLAY_CACHE[key] = name
    return name


def key_from_raw(raw_name: bytes) -> str:
    """Canonical key of a raw field name (the bytes before ':', possibly with trailing WSP)."""
    key = _NAME_CACHE.get(raw_name)
    if key is not None:
        return key
    name = raw_name.rstrip(b" \t").decode("latin-1")
    if not name or not all(c in _TOKEN for c in name):
        raise RemoteProtocolError("Malformed header field name")
    key = canonical_key(name)
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[raw_name] = key
    return key


def _value_of(line: bytes) -> str:
    """The field value of a raw line: text after ':', unfolded (§7.3.1), trimmed."""
    value = line.partition(b":")[2]
    if b"\n" in value:
        # Folded: each CRLF + leading whitespace becomes a single SP.
        parts = value.replace(b"\r\n", b"\n").split(b"\n")
        value = b" ".join(p.strip(b" \t") for p in parts)
    return value.strip(b" \t").decode("utf-8", "surrogateescape")


def _line(key: str, value: str) -> bytes:
    prefix = _PREFIX_CACHE.get(key)
    if prefix is None:
        prefix = f"{display_name(key)}: ".encode("utf-8", "surrogateescape")
        if len(_PREFIX_CACHE) < _NAME_CACHE_MAX:
            _PREFIX_CACHE[key] = prefix
    return prefix + value.encode("utf-8", "surrogateescape")


class Headers:
    """Header fields in order. Keys are canonical (`canonical_key`), lines raw bytes.

    `_keys[i]` is the canonical key of the raw line `_lines[i]`; `_views` caches the
    typed views by key (`"via#1"` for the top Via alone) and each write drops the
    views of the key it changed.
    """

    __slots__ = ("_keys", "_lines", "_views")

    def __init__(self, keys: list[str] | None = None, lines: list[bytes] | None = None) -> None:
        self._keys: list[str] = keys if keys is not None else []
        self._lines: list[bytes] = lines if lines is not None else []
        self._views: dict[str, Any] = {}  # parsed typed views, by field name

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> Headers:
        h = cls()
        for name, value in pairs:
            h.add(name, value)
        return h

    # -- reading ------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical_key(name) in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field's value, unfolded; `default` when absent."""
        key = canonical_key(name)
        if key not in self._keys:
            return default
        return _value_of(self._lines[self._keys.index(key)])

    def get_all(self, name: str) -> list[str]:
        """Every field's value, in order (one entry per header line)."""
        key = canonical_key(name)
        keys = self._keys
        if keys.count(key) <= 1:
            return [_value_of(self._lines[keys.index(key)])] if key in keys else []
        return [_value_of(ln) for k, ln in zip(keys, self._lines, strict=True) if k == key]

    def values(self, name: str) -> list[str]:
        """Every comma-separated element of every field named `name` (§7.3.1)."""
        out: list[str] = []
        for value in self.get_all(name):
            if value:
                out.extend(split_commas(value, display_name(canonical_key(name))))
        return out

    def count(self, name: str) -> int:
        return self._keys.count(canonical_key(name))

    def has_one_value(self, name: str) -> bool:
        """Exactly one field `name` holding one element (no comma): decided on the raw
        line, parsing nothing (a comma inside quotes makes this answer False)."""
        key = canonical_key(name)
        keys = self._keys
        return keys.count(key) == 1 and b"," not in self._lines[keys.index(key)]

    def items(self) -> Iterator[tuple[str, str]]:
        """`(name as written, value)` for every field, in order."""
        for line in self._lines:
            colon = line.index(b":")
            yield line[:colon].rstrip(b" \t").decode("latin-1"), _value_of(line)

    def keys(self) -> list[str]:
        return list(self._keys)

    def raw(self, name: str) -> list[bytes]:
        """The raw lines of `name`, exactly as received."""
        key = canonical_key(name)
        return [ln for k, ln in zip(self._keys, self._lines, strict=True) if k == key]

    def view(self, key: str, parse: Callable[[Headers], T]) -> T:
        """Parse a typed view of `key` once, cache it until that header changes."""
        try:
            view: T = self._views[key]
            return view
        except KeyError:
            result = parse(self)
            self._views[key] = result
            return result

    # -- writing ------------------------------------------------------------------
    def _touched(self, key: str) -> None:
        views = self._views
        if views:
            views.pop(key, None)
            views.pop(key + "#1", None)  # the top-value view (e.g. top Via)

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Append a field, or insert it above the existing ones with `first=True`."""
        key = canonical_key(name)
        self.add_raw(key, _line(key, value), first=first)

    def add_raw(self, key: str, line: bytes, *, first: bool = False) -> None:
        """Insert an already serialised field line (fast path for proxies)."""
        if self._views:
            self._touched(key)
        keys = self._keys
        if first and key in keys:
            i = keys.index(key)
            keys.insert(i, key)
            self._lines.insert(i, line)
        elif first:
            keys.insert(0, key)
            self._lines.insert(0, line)
        else:
            keys.append(key)
            self._lines.append(line)

    def set(self, name: str, value: str) -> None:
        """Replace all fields of `name` by one, at the position of the first."""
        key = canonical_key(name)
        if self._views:
            self._touched(key)
        line = _line(key, value)
        keys = self._keys
        if key not in keys:
            keys.append(key)
            self._lines.append(line)
            return
        i = keys.index(key)
        self._lines[i] = line
        if keys.count(key) > 1:
            self._remove_from(key, i + 1)

    def remove(self, name: str) -> None:
        key = canonical_key(name)
        self._touched(key)
        self._remove_from(key, 0)

    def _remove_from(self, key: str, start: int) -> None:
        if key not in self._keys[start:]:
            return
        keep = [
            (k, ln)
            for i, (k, ln) in enumerate(zip(self._keys, self._lines, strict=True))
            if i < start or k != key
        ]
        self._keys = [k for k, _ in keep]
        self._lines = [ln for _, ln in keep]

    def pop_first_value(self, name: str) -> str | None:
        """Remove and return the first comma element of `name` (top Via, top Route)."""
        key = canonical_key(name)
        keys = self._keys
        if key not in keys:
            return None
        i = keys.index(key)
        self._touched(key)
        line = self._lines[i]
        value = _value_of(line)
        if b"," not in line:
            # One element (split_commas would return the value itself).
            del keys[i]
            del self._lines[i]
            return value
        parts = split_commas(value, display_name(key)) if value else [""]
        if len(parts) <= 1:
            del keys[i]
            del self._lines[i]
        else:
            self._lines[i] = _line(key, ", ".join(parts[1:]))
        return parts[0]

    def replace_first_value(self, name: str, value: str) -> None:
        """Replace the first comma element of `name` (e.g. the top Via after adding
        `received`), leaving the field's other elements and other fields untouched."""
        key = canonical_key(name)
        i = self._keys.index(key)
        old = _value_of(self._lines[i])
        if "," in old:
            rest = split_commas(old, display_name(key))[1:]
            value = ", ".join([value, *rest])
        self._touched(key)
        self._lines[i] = _line(key, value)

    def copy(self) -> Headers:
        return Headers(list(self._keys), list(self._lines))

    @property
    def lines(self) -> list[bytes]:
        return self._lines

    def __repr__(self) -> str:
        return f"Headers({list(self.items())!r})"
