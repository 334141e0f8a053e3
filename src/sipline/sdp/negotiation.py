"""Reading a finished exchange: what each stream carries, and whether an answer is legal.

`negotiate` works from either end (the offerer passes offer and answer, the answerer
answer and offer). `check_answer` lists every RFC 3264 §6 rule an answer breaks.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SdpError
from .model import Direction, MediaDescription, SessionDescription
from .offer_answer import is_hold
from .payload import RtpMap

__all__ = ["NegotiatedStream", "check_answer", "negotiate", "process_answer"]


@dataclass(frozen=True, slots=True)
class NegotiatedStream:
    """One m-line after an exchange, seen from the local side.

    `codecs` are the codecs both sides support, in the remote side's order and under its
    payload type numbers: those are the numbers to send with (RFC 3264 §6.1). The first
    one is the codec to send. `direction` is what we do: SENDONLY means we only send.
    """

    index: int
    media: str
    accepted: bool
    direction: Direction
    remote_address: str | None
    remote_port: int
    remote_rtcp_address: str | None
    remote_rtcp_port: int
    codecs: tuple[RtpMap, ...]
    telephone_event: RtpMap | None
    ptime_ms: float | None
    remote_hold: bool

    @property
    def codec(self) -> RtpMap | None:
        return self.codecs[0] if self.codecs else None


def _stream(
    index: int,
    local: SessionDescription,
    lm: MediaDescription,
    remote: SessionDescription,
    rm: MediaDescription,
) -> NegotiatedStream:
    accepted = lm.port != 0 and rm.port != 0 and lm.is_rtp and rm.is_rtp
    local_codecs = lm.codecs() if accepted else []
    voice_keys = {c.key for c in local_codecs if not c.is_telephone_event}
    event_keys = {c.key for c in local_codecs if c.is_telephone_event}
    remote_codecs = rm.codecs() if accepted else []
    codecs = tuple(c for c in remote_codecs if not c.is_telephone_event and c.key in voice_keys)
    events = [c for c in remote_codecs if c.is_telephone_event and c.key in event_keys]
    # RFC 4733 §2.1: events share the voice stream's clock, so prefer the codec's rate.
    rate = codecs[0].clock_rate if codecs else None
    event = next((c for c in events if c.clock_rate == rate), events[0] if events else None)
    hold = is_hold(remote, rm)
    direction = Direction.INACTIVE
    if accepted:
        ours, theirs = local.effective_direction(lm), remote.effective_direction(rm)
        direction = Direction.from_flags(
            # RFC 3264 §8.4: c=0.0.0.0 means send nothing to that side, RTP or RTCP.
            send=ours.sends and theirs.receives and not hold,
            receive=ours.receives and theirs.sends,
        )
    connection = remote.connection_for(rm)
    address = connection.address if connection is not None else None
    rtcp = rm.rtcp if accepted else None
    return NegotiatedStream(
        index=index,
        media=rm.media,
        accepted=accepted,
        direction=direction,
        remote_address=address,
        remote_port=rm.port,
        # RFC 3605: a=rtcp overrides the RTP port + 1 default of RFC 3550 §11.
        remote_rtcp_address=rtcp.address if rtcp is not None and rtcp.address else address,
        remote_rtcp_port=rtcp.port if rtcp is not None else (rm.port + 1 if rm.port else 0),
        codecs=codecs,
        telephone_event=event,
        ptime_ms=rm.ptime_ms if accepted else None,
        remote_hold=hold,
    )


def negotiate(local: SessionDescription, remote: SessionDescription) -> list[NegotiatedStream]:
    """The streams of a completed exchange; the two sides must have matching m-lines."""
    problems = _structure_problems(local, remote)
    if problems:
        raise SdpError("; ".join(problems))
    return [
        _stream(i, local, lm, remote, rm)
        for i, (lm, rm) in enumerate(zip(local.media, remote.media, strict=True))
    ]


def process_answer(offer: SessionDescription, answer: SessionDescription) -> list[NegotiatedStream]:
    """The offerer's view of the answer to its offer (RFC 3264 §7).

    Only a broken m-line correspondence is fatal; other rule breaks (see
    `check_answer`) are tolerated, as a robust offerer must.
    """
    return negotiate(offer, answer)


def _structure_problems(offer: SessionDescription, answer: SessionDescription) -> list[str]:
    # RFC 3264 §6: exactly as many m-lines, in the same order, with the same media type.
    if len(offer.media) != len(answer.media):
        return [f"the offer has {len(offer.media)} m-lines, the answer {len(answer.media)}"]
    return [
        f"m-line {i}: the offer has media {om.media!r}, the answer {am.media!r}"
        for i, (om, am) in enumerate(zip(offer.media, answer.media, strict=True))
        if om.media != am.media
    ]


def _codec_of(media: MediaDescription, fmt: str) -> RtpMap | None:
    return media.codec(int(fmt)) if fmt.isascii() and fmt.isdigit() else None


def _format_problems(i: int, om: MediaDescription, am: MediaDescription) -> list[str]:
    """Answered formats must be among the offered ones (RFC 3264 §6.1)."""
    if not (om.is_rtp and am.is_rtp):
        return [
            f"m-line {i}: format {fmt!r} was not offered"
            for fmt in am.formats
            if fmt not in om.formats
        ]
    offered_keys = set()
    for fmt in om.formats:
        codec = _codec_of(om, fmt)
        if codec is not None:
            offered_keys.add(codec.key)
    problems = []
    for fmt in am.formats:
        codec = _codec_of(am, fmt)
        if codec is not None:
            if codec.key not in offered_keys:
                problems.append(f"m-line {i}: codec {codec.value()!r} was not offered")
        elif fmt not in om.formats:  # an unknown format can only be matched by number
            problems.append(f"m-line {i}: format {fmt!r} was not offered")
    return problems


_ALLOWED_ANSWERS = {
    # RFC 3264 §6.1: what may answer each offered direction.
    Direction.SENDONLY: (Direction.RECVONLY, Direction.INACTIVE),
    Direction.RECVONLY: (Direction.SENDONLY, Direction.INACTIVE),
    Direction.INACTIVE: (Direction.INACTIVE,),
    Direction.SENDRECV: tuple(Direction),
}


def check_answer(offer: SessionDescription, answer: SessionDescription) -> list[str]:
    """Every RFC 3264 rule the answer breaks against its offer; empty when it is legal."""
    problems = _structure_problems(offer, answer)
    if len(offer.media) != len(answer.media):
        return problems
    if offer.timings and [(t.start, t.stop) for t in offer.timings] != [
        (t.start, t.stop) for t in answer.timings
    ]:
        problems.append("the answer's t= lines differ from the offer's (RFC 3264 §6)")
    for i, (om, am) in enumerate(zip(offer.media, answer.media, strict=True)):
        if om.proto.upper() != am.proto.upper():
            problems.append(f"m-line {i}: transport {am.proto!r} answers {om.proto!r}")
        if not am.formats:
            problems.append(f"m-line {i}: no format listed (SDP needs at least one)")
        if om.port == 0 and am.port != 0:
            problems.append(f"m-line {i}: a stream offered with port 0 must be answered with 0")
        if am.port == 0:
            continue  # a rejected stream's formats are ignored (RFC 3264 §6)
        problems += _format_problems(i, om, am)
        offered = offer.effective_direction(om)
        answered = answer.effective_direction(am)
        if answered not in _ALLOWED_ANSWERS[offered]:
            problems.append(f"m-line {i}: {answered} does not answer {offered} (RFC 3264 §6.1)")
    return problems
