"""Why a ringing call was cancelled, from the CANCEL's Reason header (RFC 3326).

A proxy that forked the call cancels the other branches once one answers or declines,
and says so: `Reason: SIP;cause=200;text="Call completed elsewhere"` (RFC 3326 §2,
the example of RFC 3261 §16.7 step 10 in practice). Without a Reason the caller gave up.
"""

from __future__ import annotations

import re

__all__ = ["cancel_text"]

# reason-value = protocol *(SEMI reason-params); reason-params = cause / text / extension
_PARAM = re.compile(r';\s*(cause|text)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)', re.IGNORECASE)

# What a SIP cause in a CANCEL means to the device being cancelled (RFC 3326 §2,
# RFC 3261 §16.7 step 10: a 2xx or 6xx on another branch ends this one).
_SIP_CAUSES = {
    200: "answered elsewhere",
    600: "busy everywhere",
    603: "declined elsewhere",
    604: "does not exist anywhere",
    606: "not acceptable anywhere",
}


def cancel_text(reasons: list[str]) -> str:
    """A short phrase for why we were cancelled, given the CANCEL's Reason values."""
    for value in reasons:
        for item in _split(value):
            protocol = item.split(";", 1)[0].strip().upper()
            params = {m.group(1).lower(): m.group(2) for m in _PARAM.finditer(item)}
            cause = params.get("cause", "")
            text = params.get("text", "").strip('"').replace('\\"', '"')
            if protocol == "SIP" and cause.isdigit() and int(cause) in _SIP_CAUSES:
                return _SIP_CAUSES[int(cause)]
            if text:
                return f"cancelled: {text[:100]}"
    return "cancelled by the caller"


def _split(value: str) -> list[str]:
    """A header value may list several reasons separated by commas outside quotes."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [i for i in (s.strip() for s in items) if i]
