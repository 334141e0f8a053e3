"""RFC 3264 offer/answer: build an offer or an answer from what the local side can do.

The capability objects are policy (which codecs, in which order, which ports, which
direction); this module applies the RFC's mechanism to them. Identifiers such as the
o= session id come in from the caller: nothing here draws randomness. Pass what these
functions build through `versioning.next_version` before sending it again in a dialog.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import SdpError
from .model import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
)
from .payload import STATIC_PAYLOAD_TYPES, TELEPHONE_EVENT, RtpMap, codec_key

__all__ = [
    "Capabilities",
    "Codec",
    "MediaCapability",
    "create_answer",
    "create_offer",
    "is_hold",
]

_DYNAMIC_PAYLOAD_TYPES = range(96, 128)  # RFC 3551 §3
_TELEPHONE_EVENT_FMTP = "0-16"  # DTMF digits and flash (RFC 4733 §3.2)


@dataclass(frozen=True, slots=True)
class Codec:
    """A codec we can use. `channels` None means one channel (audio) or not applicable.

    `payload_type` is the number to offer it under; unset, a static codec gets its RFC
    3551 number and a dynamic one the next free number from 96. `fmtp` is sent verbatim.
    """

    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None
    payload_type: int | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        return codec_key(self.name, self.clock_rate, self.channels)

    @property
    def is_telephone_event(self) -> bool:
        return self.name.lower() == TELEPHONE_EVENT


@dataclass(frozen=True, slots=True)
class MediaCapability:
    """What we do for one media type: codecs in our order of preference, port, direction.

    A second accepted stream of the same type uses `port + 2` (RTP on even ports, RTCP
    on the next odd one, RFC 3550 §11), unless a second capability of that type is given.
    `address` puts a media-level c= line in when it differs from the session address.
    `telephone_event` adds (to offers) or accepts (in answers) RFC 4733 events.
    """

    media: str
    port: int
    codecs: Sequence[Codec]
    proto: str = "RTP/AVP"
    direction: Direction = Direction.SENDRECV
    telephone_event: bool = False
    ptime_ms: int | None = None
    address: str | None = None

    @property
    def accepts_telephone_event(self) -> bool:
        return self.telephone_event or any(c.is_telephone_event for c in self.codecs)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The local side of the session: o= fields, connection address and media.

    `prefer_own_order`: list answered codecs in our order instead of the offerer's
    (RFC 3264 §6.1 recommends the offer's order unless there is a reason).
    """

    address: str
    media: Sequence[MediaCapability]
    username: str = "-"
    session_id: str = "0"
    session_version: int = 0
    session_name: str = "-"
    prefer_own_order: bool = False


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _session(caps: Capabilities) -> SessionDescription:
    addrtype = _addrtype(caps.address)
    origin = Origin(
        caps.username, caps.session_id, caps.session_version, caps.address, addrtype=addrtype
    )
    return SessionDescription(
        origin=origin,
        session_name=caps.session_name,
        connection=Connection(caps.address, addrtype=addrtype),
    )


def _media_connection(cap: MediaCapability, caps: Capabilities) -> list[Connection]:
    if cap.address is None or cap.address == caps.address:
        return []
    return [Connection(cap.address, addrtype=_addrtype(cap.address))]


def _static_number(codec: Codec) -> int | None:
    for pt, static in STATIC_PAYLOAD_TYPES.items():
        if codec_key(static.encoding_name, static.clock_rate, static.channels) == codec.key:
            return pt
    return None


def _rtpmap_value(pt: int, name: str, clock_rate: int, channels: int | None) -> str:
    return RtpMap(pt, name, clock_rate, channels).value()


def _ptime_text(ptime_ms: float) -> str:
    return str(int(ptime_ms)) if ptime_ms == int(ptime_ms) else str(ptime_ms)


def _number_codecs(cap: MediaCapability) -> list[tuple[int, Codec]]:
    """Give every codec to offer a payload type: its own, its static one, or a free one."""
    codecs = list(cap.codecs)
    if cap.telephone_event and not any(c.is_telephone_event for c in codecs):
        rates = dict.fromkeys(c.clock_rate for c in codecs)  # one per clock rate, in order
        codecs += [Codec(TELEPHONE_EVENT, r, fmtp=_TELEPHONE_EVENT_FMTP) for r in rates]
    fixed = [c.payload_type if c.payload_type is not None else _static_number(c) for c in codecs]
    used = {pt for pt in fixed if pt is not None}
    free = (pt for pt in _DYNAMIC_PAYLOAD_TYPES if pt not in used)
    numbered = []
    for codec, pt in zip(codecs, fixed, strict=True):
        if pt is None:
            pt = next(free, None)
            if pt is None:
                raise SdpError(f"more {cap.media} codecs than dynamic payload types")
        numbered.append((pt, codec))
    return numbered


def _offer_media(cap: MediaCapability, caps: Capabilities) -> MediaDescription:
    numbered = _number_codecs(cap)
    attributes = [
        Attribute("rtpmap", _rtpmap_value(pt, c.name, c.clock_rate, c.channels))
        for pt, c in numbered
    ]
    attributes += [Attribute("fmtp", f"{pt} {c.fmtp}") for pt, c in numbered if c.fmtp]
    if cap.ptime_ms is not None:
        attributes.append(Attribute("ptime", _ptime_text(cap.ptime_ms)))
    if cap.direction is not Direction.SENDRECV:
        attributes.append(Attribute(cap.direction.value))
    return MediaDescription(
        media=cap.media,
        port=cap.port,
        proto=cap.proto,
        formats=[str(pt) for pt, _ in numbered],
        connections=_media_connection(cap, caps),
        attributes=attributes,
    )


def create_offer(caps: Capabilities) -> SessionDescription:
    """An offer with one m-line per media capability, codecs in our order (RFC 3264 §5)."""
    offer = _session(caps)
    offer.media = [_offer_media(cap, caps) for cap in caps.media]
    return offer


def is_hold(sd: SessionDescription, media: MediaDescription) -> bool:
    """Whether this side asks the peer not to send it media on the stream.

    True for a=sendonly or a=inactive (RFC 3264 §8.4) and for the RFC 2543 convention
    of c=0.0.0.0, which still means "send nothing to me" (RFC 3264 §8.4).
    """
    if not sd.effective_direction(media).receives:
        return True
    connection = sd.connection_for(media)
    return connection is not None and connection.address == "0.0.0.0"


def _reject(offered: MediaDescription) -> MediaDescription:
    """Port zero, with one format kept so the m-line stays valid (RFC 3264 §6)."""
    formats = offered.formats[:1] or ["0" if offered.is_rtp else "*"]
    answer = MediaDescription(offered.media, 0, offered.proto, formats)
    if offered.is_rtp:
        rtpmap = offered.rtpmaps().get(int(formats[0]))
        if rtpmap is not None:
            answer.attributes.append(Attribute("rtpmap", rtpmap.value()))
    return answer


def _pick_capability(
    caps: Capabilities, offered: MediaDescription, accepted: int
) -> tuple[MediaCapability, int] | None:
    """The capability and port for the next accepted stream of this media type."""
    matching = [
        c
        for c in caps.media
        if c.media == offered.media and c.proto.upper() == offered.proto.upper()
    ]
    if not matching:
        return None
    index = min(accepted, len(matching) - 1)
    return matching[index], matching[index].port + 2 * (accepted - index)


def _answer_media(
    offer: SessionDescription,
    offered: MediaDescription,
    cap: MediaCapability,
    port: int,
    caps: Capabilities,
) -> MediaDescription | None:
    """Answer one accepted-looking stream, or None when there is nothing in common."""
    local: dict[tuple[str, int, int], Codec] = {}
    for codec in cap.codecs:
        if not codec.is_telephone_event:
            local.setdefault(codec.key, codec)
    offered_codecs = [(pt, offered.codec(pt)) for pt in offered.payload_types()]
    # RFC 3264 §6.1: the codecs we accept, under the offerer's payload type numbers.
    chosen = [
        (pt, rtpmap, local[rtpmap.key])
        for pt, rtpmap in offered_codecs
        if rtpmap is not None and not rtpmap.is_telephone_event and rtpmap.key in local
    ]
    if caps.prefer_own_order:
        order = list(local)
        chosen.sort(key=lambda item: order.index(item[1].key))
    has_media_formats = any(r is None or not r.is_telephone_event for _, r in offered_codecs)
    if has_media_formats and not chosen:
        return None
    events: list[tuple[int, RtpMap]] = []
    if cap.accepts_telephone_event:
        rates = {rtpmap.clock_rate for _, rtpmap, _ in chosen}
        # Events ride at the clock rate of the voice codec (RFC 4733 §2.1), unless the
        # stream carries events only.
        events = [
            (pt, r)
            for pt, r in offered_codecs
            if r is not None and r.is_telephone_event and (not chosen or r.clock_rate in rates)
        ]
    if not chosen and not events:
        return None

    attributes = [Attribute("rtpmap", r.value()) for _, r, _ in chosen]
    attributes += [Attribute("rtpmap", r.value()) for _, r in events]
    for pt, _, codec in chosen:
        fmtp = codec.fmtp if codec.fmtp is not None else offered.fmtp(pt)
        if fmtp is not None:
            attributes.append(Attribute("fmtp", f"{pt} {fmtp}"))
    for pt, _ in events:
        fmtp = offered.fmtp(pt)
        if fmtp is not None:
            attributes.append(Attribute("fmtp", f"{pt} {fmtp}"))
    if cap.ptime_ms is not None:
        attributes.append(Attribute("ptime", _ptime_text(cap.ptime_ms)))
    elif (ptime := offered.attribute("ptime")) is not None:
        attributes.append(Attribute("ptime", ptime))
    # RFC 3264 §6.1: we send only if the offerer receives, and receive only if it sends.
    offered_direction = offer.effective_direction(offered)
    direction = Direction.from_flags(
        send=offered_direction.receives and cap.direction.sends,
        receive=offered_direction.sends and cap.direction.receives,
    )
    if direction is not Direction.SENDRECV:
        attributes.append(Attribute(direction.value))
    return MediaDescription(
        media=offered.media,
        port=port,
        proto=offered.proto,
        formats=[str(pt) for pt, _, _ in chosen] + [str(pt) for pt, _ in events],
        connections=_media_connection(cap, caps),
        attributes=attributes,
    )


def create_answer(offer: SessionDescription, caps: Capabilities) -> SessionDescription:
    """Answer an offer (RFC 3264 §6): one m-line per offered one, in the same order.

    A stream is rejected with port 0 when the offer disabled it, when we have no
    capability for its media type and transport, or when no codec is in common.
    """
    answer = _session(caps)
    answer.timings = copy.deepcopy(offer.timings)  # RFC 3264 §6: t= equals the offer's
    accepted: dict[str, int] = {}
    for offered in offer.media:
        media = None
        if offered.port != 0 and offered.is_rtp:  # RFC 3264 §6: port 0 stays 0
            picked = _pick_capability(caps, offered, accepted.get(offered.media, 0))
            if picked is not None:
                media = _answer_media(offer, offered, picked[0], picked[1], caps)
        if media is None:
            media = _reject(offered)
        else:
            accepted[offered.media] = accepted.get(offered.media, 0) + 1
        answer.media.append(media)
    return answer
