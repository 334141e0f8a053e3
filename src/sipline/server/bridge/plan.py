"""Which calls the media bridge anchors, and what SDP each side sees (sans-I/O).

A call is bridged when its offer and the callee are of different kinds: a WebRTC
offer (`UDP/TLS/RTP/SAVPF`, or DTLS fingerprint and ICE credentials: RFC 8829 §5.1.2,
RFC 8842, RFC 8839) to a plain phone, or a plain offer (`RTP/AVP`, `RTP/SAVP`) to a
WebRTC contact (registered over WebSocket, RFC 7118 §5, or with the `+sip.ice` feature
tag, RFC 5768 §4.2). Browser to browser and phone to phone calls are never bridged:
their SDP passes untouched. The WebRTC side's SDP is text from aiortc, edited here
line by line (direction, o= version) so everything else stays as aiortc wrote it.
"""

from __future__ import annotations

import re
from enum import StrEnum

from sipline.sdp import Direction

__all__ = [
    "PHONE_CODECS",
    "Role",
    "SdpKind",
    "audio_direction",
    "plan",
    "sdp_kind",
    "webrtc_contact",
    "with_direction",
    "with_version",
]

# What the bridge offers a plain phone, best first: Opus needs no resampling to or
# from the browser's Opus; G.711 is what every phone has.
PHONE_CODECS = ("opus", "PCMU", "PCMA")

_DIRECTIONS = frozenset(d.value for d in Direction)
_TRANSPORT = re.compile(r";\s*transport=(wss?)\b", re.IGNORECASE)


class SdpKind(StrEnum):
    WEBRTC = "webrtc"
    PLAIN = "plain"


class Role(StrEnum):
    """Which side made the offer of a bridged call."""

    WEBRTC_OFFERS = "webrtc-offers"  # a browser calls a phone
    PLAIN_OFFERS = "plain-offers"  # a phone calls a browser


def _lines(body: bytes | str) -> list[str]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def _audio_section(lines: list[str]) -> tuple[int, int] | None:
    """[start, end) of the first audio m= section's lines, or None."""
    start = None
    for i, line in enumerate(lines):
        if line.startswith("m="):
            if start is not None:
                return start, i
            if line.startswith("m=audio "):
                start = i
    return (start, len(lines)) if start is not None else None


def sdp_kind(body: bytes | None) -> SdpKind | None:
    """The kind of endpoint an SDP comes from; None when there is no audio stream."""
    if not body:
        return None
    lines = _lines(body)
    section = _audio_section(lines)
    if section is None:
        return None
    m = lines[section[0]].split()
    proto = m[2].upper() if len(m) > 2 else ""
    if "DTLS" in proto or proto.endswith("SAVPF"):
        return SdpKind.WEBRTC  # RFC 5764 §8, RFC 8829 §5.1.2
    has = {line.split(":", 1)[0] for line in lines if line.startswith("a=")}
    if "a=fingerprint" in has and "a=ice-ufrag" in has:
        return SdpKind.WEBRTC
    return SdpKind.PLAIN


def webrtc_contact(contact: str, params: str = "") -> bool:
    """A registered contact that speaks WebRTC: a WebSocket transport (RFC 7118 §5) or
    the `+sip.ice` feature tag (RFC 5768 §4.2; JsSIP and SIP.js put it on their Contact)."""
    if _TRANSPORT.search(contact):
        return True
    return any(p.strip().lower().startswith("+sip.ice") for p in params.split(";"))


def plan(offer: bytes | None, *, webrtc_target: bool) -> Role | None:
    """Whether a new call's branch is bridged, and how; None: its SDP passes untouched
    (no offer, or both sides of one kind)."""
    kind = sdp_kind(offer)
    if kind is SdpKind.WEBRTC and not webrtc_target:
        return Role.WEBRTC_OFFERS
    if kind is SdpKind.PLAIN and webrtc_target:
        return Role.PLAIN_OFFERS
    return None


def audio_direction(body: bytes | str) -> Direction:
    """The audio stream's direction (media level first, then session level, RFC 8866
    §6.7); a zero port or c=0.0.0.0 (RFC 3264 §8.4, the old hold) counts as inactive."""
    lines = _lines(body)
    section = _audio_section(lines)
    if section is None:
        return Direction.INACTIVE
    start, end = section
    m = lines[start].split()
    if len(m) > 1 and m[1] == "0":
        return Direction.INACTIVE
    if any(line.startswith("c=IN IP4 0.0.0.0") for line in lines[:end]):
        return Direction.INACTIVE
    for scope in (lines[start:end], lines[:start]):
        for line in scope:
            if line.startswith("a=") and line[2:] in _DIRECTIONS:
                return Direction(line[2:])
    return Direction.SENDRECV


def with_direction(sdp: str, direction: Direction) -> str:
    """`sdp` with its audio stream's direction attribute set to `direction`."""
    lines = _lines(sdp)
    section = _audio_section(lines)
    if section is None:
        return sdp
    start, end = section
    body = [
        line
        for i, line in enumerate(lines)
        if not (start <= i < end and line.startswith("a=") and line[2:] in _DIRECTIONS)
    ]
    body.insert(end - (len(lines) - len(body)), f"a={direction.value}")
    return "\r\n".join(body) + "\r\n"


def with_version(sdp: str, version: int) -> str:
    """`sdp` with its o= line's session version set (RFC 3264 §8: one more for each
    changed description sent in the same session)."""
    out = []
    for line in _lines(sdp):
        if line.startswith("o="):
            fields = line[2:].split()
            if len(fields) >= 6:
                fields[2] = str(version)
                line = "o=" + " ".join(fields)
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def origin_version(sdp: bytes | str) -> int:
    """The o= line's session version (0 when it has none)."""
    for line in _lines(sdp):
        if line.startswith("o="):
            fields = line[2:].split()
            if len(fields) >= 6 and fields[2].isdigit():
                return int(fields[2])
    return 0
