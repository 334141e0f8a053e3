"""The SDP data model (RFC 8866 §5): one dataclass per line type, plus typed views.

Attributes stay as raw `name`/`value` text in their original order, so unknown ones
survive a round trip untouched; `rtpmap`, `fmtp`, `ptime`, direction and friends are
views computed from them. The parser validates the attributes those views read, so a
parsed description never raises from a view; a hand-built one raises `SdpError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .payload import (
    Rtcp,
    RtpMap,
    parse_fmtp,
    parse_payload_type,
    parse_ptime,
    parse_rtcp,
    parse_rtpmap,
    static_rtpmap,
)

__all__ = [
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "Repeat",
    "SessionDescription",
    "TimeZone",
    "Timing",
    "UnknownLine",
]


class Direction(StrEnum):
    """Media direction attributes (RFC 8866 §6.7, RFC 3264 §5.1)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, *, send: bool, receive: bool) -> Direction:
        if send:
            return cls.SENDRECV if receive else cls.SENDONLY
        return cls.RECVONLY if receive else cls.INACTIVE

    def reversed(self) -> Direction:
        """The same stream seen from the other end."""
        return Direction.from_flags(send=self.receives, receive=self.sends)


_DIRECTIONS = frozenset(d.value for d in Direction)


@dataclass(slots=True)
class Attribute:
    """`a=<name>` (a flag, value None) or `a=<name>:<value>` (value kept verbatim)."""

    name: str
    value: str | None = None


@dataclass(slots=True)
class Origin:
    """`o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.

    `session_id` stays text: it only has to be unique, and may be longer than 64 bits.
    The address comes before nettype and addrtype so those two can default to IN IP4.
    """

    username: str
    session_id: str
    session_version: int
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"


@dataclass(slots=True)
class Connection:
    """`c=<nettype> <addrtype> <address>[/<ttl>][/<count>]` (RFC 8866 §5.7).

    The address is bare: IPv6 is never bracketed in SDP. `ttl` exists for IP4
    multicast only; IP6 multicast carries just the address count.
    """

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"
    ttl: int | None = None
    count: int | None = None


@dataclass(slots=True)
class Bandwidth:
    """`b=<bwtype>:<bandwidth>`, in kilobits per second for CT and AS."""

    bwtype: str
    bandwidth: int


@dataclass(slots=True)
class Repeat:
    """`r=<interval> <active duration> <offsets>...`; times keep their unit suffix (d/h/m/s)."""

    interval: str
    duration: str
    offsets: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Timing:
    """`t=<start> <stop>` (NTP seconds; 0 0 means unbounded) and its `r=` lines."""

    start: int = 0
    stop: int = 0
    repeats: list[Repeat] = field(default_factory=list)


@dataclass(slots=True)
class TimeZone:
    """One `<adjustment time> <offset>` pair of the `z=` line."""

    adjustment_time: int
    offset: str


@dataclass(slots=True)
class UnknownLine:
    """A line whose type letter SDP does not define, kept so it can be forwarded."""

    type: str
    value: str


class _HasAttributes:
    """Attribute look-ups shared by the session and media levels."""

    __slots__ = ()
    attributes: list[Attribute]

    def attribute(self, name: str) -> str | None:
        """The value of the first `a=<name>:<value>` (None if absent or a flag)."""
        for attr in self.attributes:
            if attr.name == name and attr.value is not None:
                return attr.value
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [a.value for a in self.attributes if a.name == name and a.value is not None]

    def has_flag(self, name: str) -> bool:
        return any(a.name == name and a.value is None for a in self.attributes)

    @property
    def direction(self) -> Direction | None:
        """The direction attribute written at this level, if any (the last one wins)."""
        found = None
        for attr in self.attributes:
            if attr.value is None and attr.name in _DIRECTIONS:
                found = Direction(attr.name)
        return found

    def set_direction(self, direction: Direction | None) -> None:
        """Replace any direction attribute; the new one goes where the first old one was."""
        index = next(
            (i for i, a in enumerate(self.attributes) if a.value is None and a.name in _DIRECTIONS),
            len(self.attributes),
        )
        self.attributes[:] = [
            a for a in self.attributes if not (a.value is None and a.name in _DIRECTIONS)
        ]
        if direction is not None:
            self.attributes.insert(min(index, len(self.attributes)), Attribute(direction.value))


@dataclass(slots=True)
class MediaDescription(_HasAttributes):
    """An `m=` section: `m=<media> <port>[/<count>] <proto> <fmt> ...` and its lines."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    title: str | None = None
    connections: list[Connection] = field(default_factory=list)
    bandwidths: list[Bandwidth] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    unknown_lines: list[UnknownLine] = field(default_factory=list)

    @property
    def connection(self) -> Connection | None:
        return self.connections[0] if self.connections else None

    @property
    def is_rejected(self) -> bool:
        """Port zero: the stream is declined or removed (RFC 3264 §6, §8.2)."""
        return self.port == 0

    @property
    def is_rtp(self) -> bool:
        return "RTP/" in self.proto.upper()

    def payload_types(self) -> list[int]:
        """The format list as RTP payload type numbers (RTP profiles only)."""
        return [parse_payload_type(f) for f in self.formats] if self.is_rtp else []

    def rtpmaps(self) -> dict[int, RtpMap]:
        """The explicit `a=rtpmap` lines by payload type (the first one wins)."""
        result: dict[int, RtpMap] = {}
        if not self.is_rtp:
            return result
        for value in self.attribute_values("rtpmap"):
            rtpmap = parse_rtpmap(value)
            result.setdefault(rtpmap.payload_type, rtpmap)
        return result

    def codec(self, payload_type: int) -> RtpMap | None:
        """The codec of a payload type: its rtpmap, else the RFC 3551 static mapping."""
        return self.rtpmaps().get(payload_type) or static_rtpmap(payload_type)

    def codecs(self) -> list[RtpMap]:
        """The known codecs in format-list (preference) order."""
        explicit = self.rtpmaps()
        result = []
        for pt in self.payload_types():
            codec = explicit.get(pt) or static_rtpmap(pt)
            if codec is not None:
                result.append(codec)
        return result

    def fmtp(self, payload_type: int) -> str | None:
        """The format parameters of a payload type, verbatim."""
        if not self.is_rtp:
            return None
        for value in self.attribute_values("fmtp"):
            pt, params = parse_fmtp(value)
            if pt == payload_type:
                return params
        return None

    @property
    def ptime_ms(self) -> float | None:
        value = self.attribute("ptime") if self.is_rtp else None
        return None if value is None else parse_ptime(value)

    @property
    def maxptime_ms(self) -> float | None:
        value = self.attribute("maxptime") if self.is_rtp else None
        return None if value is None else parse_ptime(value)

    @property
    def rtcp(self) -> Rtcp | None:
        value = self.attribute("rtcp") if self.is_rtp else None
        return None if value is None else parse_rtcp(value)

    def telephone_events(self) -> list[RtpMap]:
        """The RFC 4733 `telephone-event` formats offered in this stream."""
        return [c for c in self.codecs() if c.is_telephone_event]


def _default_timings() -> list[Timing]:
    return [Timing()]


@dataclass(slots=True)
class SessionDescription(_HasAttributes):
    """A whole session description (RFC 8866 §5), lines in the RFC's order."""

    origin: Origin
    session_name: str = "-"
    version: int = 0
    information: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=_default_timings)
    time_zones: list[TimeZone] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    unknown_lines: list[UnknownLine] = field(default_factory=list)

    def effective_direction(self, media: MediaDescription) -> Direction:
        """Media level, else session level, else sendrecv (RFC 3264 §5.1, RFC 8866 §6.7)."""
        return media.direction or self.direction or Direction.SENDRECV

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The media-level c= line overrides the session-level one (RFC 8866 §5.7)."""
        return media.connection or self.connection
