"""Telling the called party who forwarded the call: History-Info (RFC 7044) and
Diversion (RFC 5806).

A call's retargeting history is a chain of hops: the address first called, then
every address it was forwarded to, each with the reason it was left. For a branch
we write, per RFC 7044 §9.1 and §10.1:

    History-Info: <sip:alice@example.com?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%20Here%22>;index=1,
        <sip:bob@example.com;cause=486>;index=1.1;mp=1,
        <sip:bob@192.0.2.7:5060>;index=1.1.1;rc=1.1

(the Reason a hop was left rides in its entry's URI headers, RFC 7044 §4.3.1; the
new target carries the RFC 4458 `cause`; a registered contact is marked `rc`, any
other new target `mp`), and, newest first, RFC 5806 §3:

    Diversion: <sip:alice@example.com>;reason=user-busy;counter=1;privacy=off
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from sipline.core.builders import REASON_PHRASES

__all__ = ["DiversionReason", "Hop", "branch_history", "cause_for"]

# RFC 5806 §3 diversion-reason values we produce, with the RFC 4458 §3 cause codes.
DiversionReason = str
_CAUSES: dict[DiversionReason, int] = {
    "unconditional": 302,
    "time-of-day": 302,
    "follow-me": 302,
    "user-busy": 486,
    "do-not-disturb": 486,
    "no-answer": 408,
    "unavailable": 404,
}
# RFC 3261 §20.35 / RFC 3326 header-value characters that may stay unescaped in a
# URI header (RFC 3261 §25.1 hnv-unreserved and unreserved).
_HVALUE_SAFE = "-_.!~*'()[]/?:+$"


def cause_for(reason: DiversionReason) -> int:
    return _CAUSES.get(reason, 302)


@dataclass(frozen=True, slots=True)
class Hop:
    """An address in the chain; `left_for` says why the call moved on from it."""

    uri: str  # a SIP URI without angle brackets
    left_for: DiversionReason | None = None


def branch_history(
    hops: Sequence[Hop],
    contact: str,
    *,
    registered: bool,
    fork: int,
    history_info: bool,
    diversion: bool,
) -> tuple[tuple[str, str], ...]:
    """The History-Info and Diversion fields for one branch to `contact`, reached
    through `hops` (the last hop is the address being rung now). `fork` numbers the
    branch among its step's siblings, from 1. Nothing is written for a call that was
    never forwarded."""
    if len(hops) < 2:
        return ()
    out: list[tuple[str, str]] = []
    if history_info:
        entries = []
        index = "1"
        previous: str | None = None
        for i, hop in enumerate(hops):
            uri = hop.uri
            if i > 0:
                why = hops[i - 1].left_for or "unconditional"
                uri = _with_param(uri, f"cause={cause_for(why)}")  # RFC 4458 §3
            if hop.left_for is not None:
                uri = _with_header(uri, "Reason", _reason_value(cause_for(hop.left_for)))
            entry = f"<{uri}>;index={index}"
            if previous is not None:
                entry += f";mp={previous}"
            entries.append(entry)
            previous, index = index, f"{index}.1"
        branch_index = f"{previous}.{fork}"
        tag = "rc" if registered else "mp"
        entries.append(f"<{contact}>;index={branch_index};{tag}={previous}")
        out.append(("History-Info", ", ".join(entries)))
    if diversion:
        # One entry per diversion, so each counts one (RFC 5806 §3, diversion-counter).
        values = [
            f"<{hop.uri}>;reason={hop.left_for or 'unconditional'};counter=1;privacy=off"
            for hop in hops[:-1]
        ]
        out.extend(("Diversion", v) for v in reversed(values))  # RFC 5806 §4: newest on top
    return tuple(out)


def _reason_value(cause: int) -> str:
    """RFC 3326 §2: `SIP;cause=486;text="Busy Here"`."""
    text = REASON_PHRASES.get(cause, "Redirected")
    return f'SIP;cause={cause};text="{text}"'


def _with_param(uri: str, param: str) -> str:
    base, q, headers = uri.partition("?")
    return f"{base};{param}" + (q + headers if q else "")


def _with_header(uri: str, name: str, value: str) -> str:
    sep = "&" if "?" in uri else "?"
    return f"{uri}{sep}{name}={quote(value, safe=_HVALUE_SAFE)}"
