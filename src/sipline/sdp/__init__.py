"""SDP (RFC 8866) and the RFC 3264 offer/answer model: sans-I/O, standard library only."""

from __future__ import annotations

from .errors import SdpError
from .model import (
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    Repeat,
    SessionDescription,
    TimeZone,
    Timing,
    UnknownLine,
)
from .parse import parse, serialize, serialize_str
from .payload import (
    STATIC_PAYLOAD_TYPES,
    TELEPHONE_EVENT,
    Rtcp,
    RtpMap,
    StaticPayloadType,
    codec_key,
    parse_fmtp_params,
    static_rtpmap,
)

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "TELEPHONE_EVENT",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "Repeat",
    "Rtcp",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "StaticPayloadType",
    "TimeZone",
    "Timing",
    "UnknownLine",
    "codec_key",
    "parse",
    "parse_fmtp_params",
    "serialize",
    "serialize_str",
    "static_rtpmap",
]
