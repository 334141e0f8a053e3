"""Presence documents: PIDF (RFC 3863) with the RPID activities (RFC 4480) and the
person element of the data model (RFC 4479) that clients use for "away", "busy".

`parse_pidf` reads what a client PUBLISHes or a server NOTIFYs; `PresenceDocument.
serialize` writes one. `compose` merges the publications of several devices into
one document (RFC 3903 §1: the compositor's job; ours keeps every tuple). Documents
with a DOCTYPE are refused: no entity expansion, no external entities.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace

__all__ = [
    "CONTENT_TYPE",
    "STATUSES",
    "PidfError",
    "PresenceDocument",
    "PresenceTuple",
    "compose",
    "parse_pidf",
    "status_document",
]

CONTENT_TYPE = "application/pidf+xml"
NS = "urn:ietf:params:xml:ns:pidf"
NS_DM = "urn:ietf:params:xml:ns:pidf:data-model"
NS_RPID = "urn:ietf:params:xml:ns:pidf:rpid"
MAX_BYTES = 64 * 1024
# What `sipline presence --set` offers: basic status and the RPID activity it adds.
STATUSES: dict[str, tuple[str, str | None]] = {
    "online": ("open", None),
    "away": ("open", "away"),
    "busy": ("open", "busy"),
    "offline": ("closed", None),
}


class PidfError(ValueError):
    """Not a PIDF document we can read; the text says why."""


@dataclass(frozen=True, slots=True)
class PresenceTuple:
    """RFC 3863 §4.1.1: one way of reaching the presentity and its status."""

    id: str
    basic: str | None = None  # "open" or "closed"
    contact: str | None = None
    note: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class PresenceDocument:
    entity: str
    tuples: tuple[PresenceTuple, ...] = ()
    notes: tuple[str, ...] = ()
    activities: tuple[str, ...] = ()  # RPID activities of the person (away, busy, ...)

    @property
    def basic(self) -> str:
        """open when any tuple is open (RFC 3863 §4.1.4), else closed."""
        return "open" if any(t.basic == "open" for t in self.tuples) else "closed"

    @property
    def note(self) -> str | None:
        return next(iter(self.notes), None) or next((t.note for t in self.tuples if t.note), None)

    @property
    def status(self) -> str:
        """One word for people: offline, online, or the first activity (away, busy)."""
        if self.basic == "closed":
            return "offline"
        return self.activities[0] if self.activities else "online"

    def describe(self) -> str:
        note = self.note
        return self.status + (f" ({note})" if note else "")

    def serialize(self) -> bytes:
        ET.register_namespace("", NS)
        ET.register_namespace("dm", NS_DM)
        ET.register_namespace("rpid", NS_RPID)
        root = ET.Element(f"{{{NS}}}presence", {"entity": self.entity})
        for t in self.tuples:
            el = ET.SubElement(root, f"{{{NS}}}tuple", {"id": t.id})
            status = ET.SubElement(el, f"{{{NS}}}status")
            if t.basic is not None:
                ET.SubElement(status, f"{{{NS}}}basic").text = t.basic
            if t.contact is not None:
                ET.SubElement(el, f"{{{NS}}}contact").text = t.contact
            if t.note is not None:
                ET.SubElement(el, f"{{{NS}}}note").text = t.note
            if t.timestamp is not None:
                ET.SubElement(el, f"{{{NS}}}timestamp").text = t.timestamp
        if self.activities:
            person = ET.SubElement(root, f"{{{NS_DM}}}person", {"id": "p1"})
            acts = ET.SubElement(person, f"{{{NS_RPID}}}activities")
            for a in self.activities:
                ET.SubElement(acts, f"{{{NS_RPID}}}{a}")
        for n in self.notes:
            ET.SubElement(root, f"{{{NS}}}note").text = n
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + bytes(
            ET.tostring(root, encoding="utf-8")
        )


def status_document(
    entity: str,
    status: str,
    *,
    note: str | None = None,
    tuple_id: str = "t1",
    contact: str | None = None,
    timestamp: str | None = None,
) -> PresenceDocument:
    """The document for a status word of `STATUSES` (ValueError for another)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    basic, activity = STATUSES[status]
    return PresenceDocument(
        entity,
        (PresenceTuple(tuple_id, basic, contact, None, timestamp),),
        (note,) if note else (),
        (activity,) if activity else (),
    )


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def parse_pidf(data: bytes) -> PresenceDocument:
    """Read a PIDF document; `PidfError` when it is not one (RFC 3863 §4)."""
    if len(data) > MAX_BYTES:
        raise PidfError("presence document too large")
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise PidfError("presence document has a DOCTYPE (not allowed)")
    try:
        root = ET.fromstring(data)  # noqa: S314 (no DOCTYPE, so no entity to expand)
    except ET.ParseError as exc:
        raise PidfError(f"presence document is not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # an XML declaration's encoding expat lacks
        raise PidfError(f"presence document in an unsupported encoding: {exc}") from None
    if root.tag != f"{{{NS}}}presence":
        raise PidfError("the root element is not a PIDF <presence>")
    entity = root.get("entity")
    if not entity:
        raise PidfError("<presence> has no entity attribute")
    tuples: list[PresenceTuple] = []
    for el in root.findall(f"{{{NS}}}tuple"):
        tid = el.get("id")
        if not tid:
            raise PidfError("a <tuple> has no id")
        status = el.find(f"{{{NS}}}status")
        if status is None:
            raise PidfError(f"tuple {tid} has no <status>")  # RFC 3863 §4.1.3: mandatory
        basic = _text(status.find(f"{{{NS}}}basic"))
        if basic is not None and basic not in ("open", "closed"):
            raise PidfError(f"tuple {tid}: <basic> must be open or closed, not {basic!r}")
        tuples.append(
            PresenceTuple(
                tid,
                basic,
                _text(el.find(f"{{{NS}}}contact")),
                _text(el.find(f"{{{NS}}}note")),
                _text(el.find(f"{{{NS}}}timestamp")),
            )
        )
    notes = [n for n in (_text(el) for el in root.findall(f"{{{NS}}}note")) if n]
    activities: list[str] = []
    for person in root.iter(f"{{{NS_DM}}}person"):
        notes.extend(n for n in (_text(el) for el in person.findall(f"{{{NS_DM}}}note")) if n)
        for acts in person.iter(f"{{{NS_RPID}}}activities"):
            for act in acts:
                name = act.tag.rpartition("}")[2]
                if name not in ("note", "other") and name not in activities:
                    activities.append(name)
    return PresenceDocument(entity, tuple(tuples), tuple(notes), tuple(activities))


def compose(entity: str, documents: list[PresenceDocument]) -> PresenceDocument:
    """One document from several publications: every tuple (ids made unique), the
    notes and activities of all, newest publication last so its words come first."""
    tuples: list[PresenceTuple] = []
    seen: set[str] = set()
    notes: list[str] = []
    activities: list[str] = []
    for doc in reversed(documents):
        for t in doc.tuples:
            tid, n = t.id, 1
            while tid in seen:
                n += 1
                tid = f"{t.id}-{n}"
            seen.add(tid)
            tuples.append(replace(t, id=tid))
        notes.extend(x for x in doc.notes if x not in notes)
        activities.extend(a for a in doc.activities if a not in activities)
    return PresenceDocument(entity, tuple(tuples), tuple(notes), tuple(activities))
