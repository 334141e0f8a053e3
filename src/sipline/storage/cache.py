"""The in-memory copy of the location service that `AsyncStore` keeps per process.

A proxy looks bindings up by AOR on every request it routes, and by Contact for
in-dialog targets, so every binding is held in memory, often 100,000 of them in
each worker process: the form they are held in is what that costs. A `Binding`
dataclass with its own strings and floats, in tuples per AOR and per Contact, came
to some 730 bytes of the process's memory; here each binding is one string packing
its fields but the AOR (the dict key), unpacked into a `Binding` when looked up (a
few microseconds, once or twice per routed request): some 440 bytes, the AOR and
Contact keys and both index entries included.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace

from sipline.storage.base import Binding

__all__ = ["BindingCache", "pack", "unpack"]

_SEP = "\x00"  # between fields
_ITEM = "\x01"  # between the entries of `path`
_NONE = "\x02"  # an optional string field that is None
_RESERVED = (_SEP, _ITEM, _NONE)

# What one AOR or one Contact maps to: nearly always a single entry, kept bare (a
# 1-tuple would add 56 bytes each), else a tuple.
_Entry = str | Binding


def _plain(value: str | None) -> bool:
    return value is None or not any(c in value for c in _RESERVED)


def pack(b: Binding) -> _Entry:
    """`b` as one string (its AOR left out): expires_at, contact, call_id, cseq, q,
    path, instance, reg_id, received, user_agent, params, updated_at, flow. A binding whose
    strings hold a separator, or whose numbers are not of their declared types (so
    that a round trip through text would change them), is kept as it is."""
    strings = (b.contact, b.call_id, b.instance, b.received, b.user_agent, b.params, b.flow)
    if (
        type(b.expires_at) is not float
        or type(b.updated_at) is not float
        or type(b.cseq) is not int
        or (b.q is not None and type(b.q) is not float)
        or (b.reg_id is not None and type(b.reg_id) is not int)
        or not all(_plain(s) for s in strings)
        or not all(_plain(p) for p in b.path)
    ):
        if b.user_agent is not None:
            # Thousands of devices share a handful of User-Agent strings: keep one copy.
            b = replace(b, user_agent=sys.intern(b.user_agent))
        return b
    return _SEP.join(
        (
            repr(b.expires_at),
            b.contact,
            b.call_id,
            str(b.cseq),
            "" if b.q is None else repr(b.q),
            _ITEM + _ITEM.join(b.path) if b.path else "",
            _NONE if b.instance is None else b.instance,
            "" if b.reg_id is None else str(b.reg_id),
            _NONE if b.received is None else b.received,
            _NONE if b.user_agent is None else b.user_agent,
            b.params,
            repr(b.updated_at),
            _NONE if b.flow is None else b.flow,
        )
    )


def unpack(aor: str, entry: _Entry) -> Binding:
    if isinstance(entry, Binding):
        return entry
    (expires, contact, call_id, cseq, q, path, instance, reg_id, received, ua, params, up, flow) = (
        entry.split(_SEP)
    )
    return Binding(
        aor=aor,
        contact=contact,
        expires_at=float(expires),
        call_id=call_id,
        cseq=int(cseq),
        q=float(q) if q else None,
        path=tuple(path[1:].split(_ITEM)) if path else (),
        instance=None if instance == _NONE else instance,
        reg_id=int(reg_id) if reg_id else None,
        received=None if received == _NONE else received,
        user_agent=None if ua == _NONE else ua,
        params=params,
        updated_at=float(up),
        flow=None if flow == _NONE else flow,
    )


def _contact(entry: _Entry) -> str:
    if isinstance(entry, Binding):
        return entry.contact
    return entry.split(_SEP, 2)[1]


def _many(value: _Entry | tuple[_Entry, ...] | None) -> tuple[_Entry, ...]:
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def _aors(value: str | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


class BindingCache:
    """Bindings by AOR (in insertion order within an AOR, as the store lists them)
    and, for in-dialog targets, the AORs that have a binding with a given Contact."""

    __slots__ = ("_by_aor", "_by_contact")

    def __init__(self, bindings: Iterable[Binding] = ()) -> None:
        self._by_aor: dict[str, _Entry | tuple[_Entry, ...]] = {}
        self._by_contact: dict[str, str | tuple[str, ...]] = {}
        for b in bindings:
            self.put(b)

    def __len__(self) -> int:
        """How many AORs have bindings."""
        return len(self._by_aor)

    def aors(self) -> list[str]:
        return list(self._by_aor)

    def bindings(self, aor: str, *, now: float | None = None) -> list[Binding]:
        """The bindings of `aor` (unexpired at `now` when given)."""
        found = [unpack(aor, e) for e in _many(self._by_aor.get(aor))]
        return found if now is None else [b for b in found if b.expires_at > now]

    def __iter__(self) -> Iterator[Binding]:
        for aor, value in self._by_aor.items():
            for e in _many(value):
                yield unpack(aor, e)

    def for_contact(self, contact: str, *, now: float) -> Binding | None:
        """An unexpired binding whose Contact is `contact` (any AOR)."""
        for aor in _aors(self._by_contact.get(contact)):
            for e in _many(self._by_aor.get(aor)):
                if _contact(e) == contact:
                    b = unpack(aor, e)
                    if b.expires_at > now:
                        return b
        return None

    def put(self, b: Binding) -> None:
        """Insert `b`, or replace the binding of the same AOR and Contact in place."""
        aor, contact, entry = b.aor, b.contact, pack(b)
        entries = _many(self._by_aor.get(aor))
        for i, e in enumerate(entries):
            if _contact(e) == contact:
                entries = (*entries[:i], entry, *entries[i + 1 :])
                break
        else:
            entries = (*entries, entry)
        self._by_aor[aor] = entries[0] if len(entries) == 1 else entries
        aors = _aors(self._by_contact.get(contact))
        if aor not in aors:
            # For a new AOR this is the very string of the key above: one copy, not two.
            aors = (*aors, aor)
            self._by_contact[contact] = aors[0] if len(aors) == 1 else aors

    def drop(self, aor: str, contact: str) -> None:
        """Remove the binding of `aor` with `contact`, if cached."""
        mine = tuple(e for e in _many(self._by_aor.get(aor)) if _contact(e) != contact)
        if not mine:
            self._by_aor.pop(aor, None)
        else:
            self._by_aor[aor] = mine[0] if len(mine) == 1 else mine
        same = tuple(a for a in _aors(self._by_contact.get(contact)) if a != aor)
        if not same:
            self._by_contact.pop(contact, None)
        else:
            self._by_contact[contact] = same[0] if len(same) == 1 else same

    def replace(self, aor: str, bindings: Iterable[Binding]) -> None:
        """Make `bindings` the bindings of `aor`."""
        for e in _many(self._by_aor.get(aor)):
            self.drop(aor, _contact(e))
        for b in bindings:
            self.put(b)
