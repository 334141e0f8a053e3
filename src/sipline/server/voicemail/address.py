"""Voicemail addresses: the deposit address `voicemail@domain` (an RFC 4458 §3
voicemail URI names whose mailbox), the retrieval feature code `*98@domain`, and
finding the mailbox of an incoming call. Light: the proxy's router imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from sipline.core.errors import RemoteProtocolError
from sipline.core.uri import SipUri, parse_uri

if TYPE_CHECKING:
    from sipline.core.message import Request

__all__ = [
    "DEPOSIT_USER",
    "RETRIEVAL_USER",
    "TARGET",
    "is_service_user",
    "mailbox_of",
    "voicemail_uri",
]

TARGET = "voicemail"  # the word in routing rules: forward.no_answer = "voicemail"
DEPOSIT_USER = "voicemail"
RETRIEVAL_USER = "*98"
_SAMPLE_RATE = 8000


def voicemail_uri(aor: str, cause: int) -> str:
    """RFC 4458 §3: the voicemail URI for `aor`'s mailbox, with why the call came."""
    domain = aor.rpartition("@")[2]
    target = f"sip:{aor}".replace("@", "%40")
    return f"sip:{DEPOSIT_USER}@{domain};target={target};cause={cause}"


def mailbox_of(request: Request) -> str | None:
    """The AOR whose mailbox a call to the voicemail address is for (None: unknown)."""
    uri = request.uri
    if isinstance(uri, SipUri):
        target = uri.params.get("target")
        if target:
            aor = _aor(unquote(target))
            if aor is not None:
                return aor
    # RFC 7044 §10.3: the entry before the one that reached us is who was called.
    entries = [e for v in request.headers.get_all("History-Info") for e in _split(v)]
    for entry in reversed(entries[:-1]):
        aor = _aor(entry.strip().split(">", 1)[0].lstrip("<"))
        if aor is not None and not aor.startswith(f"{DEPOSIT_USER}@"):
            return aor
    # RFC 5806 §4: the top Diversion entry is the latest diversion.
    for value in request.headers.get_all("Diversion"):
        first = _split(value)[0].strip()
        aor = _aor(first.split(">", 1)[0].lstrip("<"))
        if aor is not None:
            return aor
    return None


def _split(value: str) -> list[str]:
    """Entries of a comma-separated name-addr list (commas inside <...> kept)."""
    out, depth, start = [], 0, 0
    for i, c in enumerate(value):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(value[start:i])
            start = i + 1
    out.append(value[start:])
    return out


def _aor(text: str) -> str | None:
    try:
        uri = parse_uri(text.split("?", 1)[0])
    except RemoteProtocolError:
        return None
    return uri.aor if isinstance(uri, SipUri) and uri.user else None


def is_service_user(user: str) -> bool:
    """The user part of a voicemail address (answered by the media host, not a user)."""
    return user.lower() in (DEPOSIT_USER, RETRIEVAL_USER)
