"""SDP (RFC 8866) and the RFC 3264 offer/answer model: sans-I/O, standard library only.

Imports only the standard library; the user agent (`sipline.phone`) negotiates media
with it (the core treats bodies as opaque bytes and never imports it).
"""

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
from .negotiation import NegotiatedStream, check_answer, negotiate, process_answer
from .offer_answer import (
    Capabilities,
    Codec,
    MediaCapability,
    create_answer,
    create_offer,
    is_hold,
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
from .versioning import check_version, next_version, same_content

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "TELEPHONE_EVENT",
    "Attribute",
    "Bandwidth",
    "Capabilities",
    "Codec",
    "Connection",
    "Direction",
    "MediaCapability",
    "MediaDescription",
    "NegotiatedStream",
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
    "check_answer",
    "check_version",
    "codec_key",
    "create_answer",
    "create_offer",
    "is_hold",
    "negotiate",
    "next_version",
    "parse",
    "parse_fmtp_params",
    "process_answer",
    "same_content",
    "serialize",
    "serialize_str",
    "static_rtpmap",
]
