"""Who answered a call we placed, from its 2xx: the call may have been forwarded.

- `P-Asserted-Identity` (RFC 3325 §9.1) names the answering user when a trusted
  proxy asserted it;
- else `History-Info` (RFC 7044 §10) ends with the address the call was retargeted to
  (the entry before the registered contact, which is tagged `rc`), and its first entry
  is the address first called; the RFC 4458 `cause` of a retargeted entry says why;
- else `Diversion` (RFC 5806 §3), newest first: the oldest entry is the address first
  called, the newest entry's `reason` why the call left it;
- else, for a forwarded call, the Contact (the device that answered); else the To URI,
  which is the address we called (§8.2.6.2 keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Response
from sipline.core.uri import SipUri, parse_uri
from sipline.core.views import NameAddr, parse_name_addr_list

__all__ = ["Answerer", "who_answered"]

# RFC 4458 §3 cause codes and RFC 5806 §3 diversion reasons, as people say them.
_CAUSES = {"302": "unconditional", "486": "busy", "408": "no answer", "480": "unavailable",
           "404": "unavailable", "487": "no answer", "503": "unavailable"}  # fmt: skip
_DIVERSION = {"user-busy": "busy", "no-answer": "no answer", "unavailable": "unavailable",
              "unconditional": "unconditional", "do-not-disturb": "do not disturb",
              "time-of-day": "time of day", "follow-me": "follow me"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Answerer:
    identity: str  # who answered (a URI)
    contact: str | None = None  # the device that answered (the 2xx's Contact)
    forwarded_from: str | None = None  # the address first called, when the call moved
    forward_reason: str | None = None  # why it moved (busy, no answer, ...), when said


def _plain(text: str) -> str:
    """A URI without its headers and parameters: sip:carol@example.com."""
    try:
        uri = parse_uri(text)
    except RemoteProtocolError:
        return text.split("?", 1)[0]
    if isinstance(uri, SipUri) and uri.user:
        return f"{uri.scheme}:{uri.aor}"
    return str(uri).split("?", 1)[0].split(";", 1)[0]


def _entries(response: Response, name: str) -> list[NameAddr]:
    try:
        return parse_name_addr_list(response.headers.get_all(name), name)
    except RemoteProtocolError:
        return []  # a malformed field says nothing we can trust


def _cause(entry: NameAddr) -> str | None:
    try:
        uri = parse_uri(entry.uri_text)
    except RemoteProtocolError:
        return None
    cause = uri.params.get("cause") if isinstance(uri, SipUri) else None
    return _CAUSES.get(cause or "", f"cause {cause}" if cause else None)


def who_answered(response: Response) -> Answerer:
    contacts = _entries(response, "Contact")
    contact = contacts[0].uri_text if contacts else None
    asserted = [e for e in _entries(response, "P-Asserted-Identity") if e.uri_text]
    identity = _plain(asserted[0].uri_text) if asserted else None
    history = [e for e in _entries(response, "History-Info") if e.params.get("index")]
    if history:
        targets = [e for e in history if "rc" not in e.params] or history
        first, last = _plain(targets[0].uri_text), _plain(targets[-1].uri_text)
        if identity is None:
            identity = last
        if len(targets) > 1 and first != last:
            return Answerer(identity, contact, first, _cause(targets[-1]))
    diverted = _entries(response, "Diversion")
    to = _plain(response.to.uri_text)
    if diverted:
        reason = diverted[0].params.get("reason")
        origin = _plain(diverted[-1].uri_text)
        # Forwarded, and no one named the new callee: the device that answered says most.
        who = identity or (contact if contact is not None else to)
        return Answerer(who, contact, origin, _DIVERSION.get(reason or "", reason))
    return Answerer(identity or to, contact)
