"""RTP payload formats: `a=rtpmap`, `a=fmtp`, `a=rtcp` values and the RFC 3551 static table.

The parsers here take an attribute value and raise `SdpError` without a line number;
the SDP parser adds the line when it validates attributes on the way in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import SdpError

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "TELEPHONE_EVENT",
    "Rtcp",
    "RtpMap",
    "StaticPayloadType",
    "codec_key",
    "parse_fmtp",
    "parse_fmtp_params",
    "parse_payload_type",
    "parse_ptime",
    "parse_rtcp",
    "parse_rtpmap",
    "static_rtpmap",
]

TELEPHONE_EVENT = "telephone-event"  # RFC 4733 §7.1.1

_DIGITS = re.compile(r"[0-9]{1,10}")
# rtpmap-value = payload-type SP encoding-name "/" clock-rate [ "/" encoding-params ]
_RTPMAP = re.compile(r"([0-9]{1,3}) ([^ /]+)/([0-9]{1,10})(?:/([0-9]{1,3}))?")
# fmtp-value = fmt SP format-specific-params  (RFC 8866 §6.15)
_FMTP = re.compile(r"([0-9]{1,3}) (.*)", re.DOTALL)
# rtcp-attribute = "a=rtcp:" port [nettype space addrtype space connection-address]
_RTCP = re.compile(r"([0-9]{1,5})(?: ([^ ]+) ([^ ]+) ([^ ]+))?")  # RFC 3605 §2.1
# ptime is milliseconds; RFC 8866 §6.4 allows a fraction
_PTIME = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,4})?")


@dataclass(frozen=True, slots=True)
class RtpMap:
    """One payload type: `a=rtpmap:<payload_type> <encoding_name>/<clock_rate>[/<channels>]`."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """What identifies the codec across renumbering (RFC 3264 §6.1)."""
        return codec_key(self.encoding_name, self.clock_rate, self.channels)

    @property
    def is_telephone_event(self) -> bool:
        return self.encoding_name.lower() == TELEPHONE_EVENT

    def value(self) -> str:
        """The attribute value, as written after `a=rtpmap:`."""
        text = f"{self.payload_type} {self.encoding_name}/{self.clock_rate}"
        return text if self.channels is None else f"{text}/{self.channels}"


def codec_key(name: str, clock_rate: int, channels: int | None) -> tuple[str, int, int]:
    """Case-insensitive codec identity; absent channels mean one (RFC 8866 §6.6)."""
    return (name.lower(), clock_rate, 1 if channels is None else channels)


@dataclass(frozen=True, slots=True)
class StaticPayloadType:
    """An RFC 3551 §6 static assignment (tables 4 and 5)."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int | None
    media: str

    def rtpmap(self) -> RtpMap:
        """As an rtpmap line would say it: one channel goes unwritten (RFC 8866 §6.6)."""
        channels = None if self.channels == 1 else self.channels
        return RtpMap(self.payload_type, self.encoding_name, self.clock_rate, channels)


def _static(pt: int, name: str, rate: int, channels: int | None, media: str) -> StaticPayloadType:
    return StaticPayloadType(pt, name, rate, channels, media)


# RFC 3551 §6, tables 4 and 5. Reserved and unassigned numbers (1, 2, 19, 20-24, 27, 29, 30)
# are left out: they must come with an rtpmap to mean anything.
STATIC_PAYLOAD_TYPES: dict[int, StaticPayloadType] = {
    s.payload_type: s
    for s in (
        _static(0, "PCMU", 8000, 1, "audio"),
        _static(3, "GSM", 8000, 1, "audio"),
        _static(4, "G723", 8000, 1, "audio"),
        _static(5, "DVI4", 8000, 1, "audio"),
        _static(6, "DVI4", 16000, 1, "audio"),
        _static(7, "LPC", 8000, 1, "audio"),
        _static(8, "PCMA", 8000, 1, "audio"),
        _static(9, "G722", 8000, 1, "audio"),
        _static(10, "L16", 44100, 2, "audio"),
        _static(11, "L16", 44100, 1, "audio"),
        _static(12, "QCELP", 8000, 1, "audio"),
        _static(13, "CN", 8000, 1, "audio"),
        _static(14, "MPA", 90000, None, "audio"),
        _static(15, "G728", 8000, 1, "audio"),
        _static(16, "DVI4", 11025, 1, "audio"),
        _static(17, "DVI4", 22050, 1, "audio"),
        _static(18, "G729", 8000, 1, "audio"),
        _static(25, "CelB", 90000, None, "video"),
        _static(26, "JPEG", 90000, None, "video"),
        _static(28, "nv", 90000, None, "video"),
        _static(31, "H261", 90000, None, "video"),
        _static(32, "MPV", 90000, None, "video"),
        _static(33, "MP2T", 90000, None, "video"),
        _static(34, "H263", 90000, None, "video"),
    )
}


def static_rtpmap(payload_type: int) -> RtpMap | None:
    """The implied rtpmap of a static payload type, or None if it has none."""
    static = STATIC_PAYLOAD_TYPES.get(payload_type)
    return None if static is None else static.rtpmap()


def parse_payload_type(text: str) -> int:
    """An RTP payload type number, 0-127 (RFC 3550 §5.1: seven bits)."""
    if not _DIGITS.fullmatch(text) or int(text) > 127:
        raise SdpError(f"invalid RTP payload type {text!r}")
    return int(text)


def parse_rtpmap(value: str) -> RtpMap:
    """Parse an `a=rtpmap` value (RFC 8866 §6.6)."""
    match = _RTPMAP.fullmatch(value)
    if match is None:
        raise SdpError(f"malformed rtpmap {value!r}")
    pt, name, rate, channels = match.groups()
    if int(pt) > 127:
        raise SdpError(f"invalid RTP payload type {pt!r} in rtpmap")
    return RtpMap(int(pt), name, int(rate), None if channels is None else int(channels))


def parse_fmtp(value: str) -> tuple[int, str]:
    """Split an `a=fmtp` value into payload type and format parameters (RFC 8866 §6.15)."""
    match = _FMTP.fullmatch(value)
    if match is None or int(match.group(1)) > 127:
        raise SdpError(f"malformed fmtp {value!r}")
    return int(match.group(1)), match.group(2)


def parse_fmtp_params(params: str) -> dict[str, str]:
    """`key=value;key=value` format parameters; a bare word maps to ''.

    Only the common convention: codecs such as telephone-event (`0-15`) use their own
    syntax, which comes back as one key with an empty value.
    """
    result: dict[str, str] = {}
    for item in params.split(";"):
        key, _, val = item.strip().partition("=")
        if key:
            result[key.strip()] = val.strip()
    return result


def parse_ptime(value: str) -> float:
    """An `a=ptime` or `a=maxptime` value in milliseconds (RFC 8866 §6.4, §6.5)."""
    if not _PTIME.fullmatch(value):
        raise SdpError(f"malformed packet time {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Rtcp:
    """`a=rtcp`: where the RTCP of a stream goes when not port+1 (RFC 3605)."""

    port: int
    nettype: str | None = None
    addrtype: str | None = None
    address: str | None = None


def parse_rtcp(value: str) -> Rtcp:
    match = _RTCP.fullmatch(value)
    if match is None or int(match.group(1)) > 65535:
        raise SdpError(f"malformed rtcp attribute {value!r}")
    port, nettype, addrtype, address = match.groups()
    return Rtcp(int(port), nettype, addrtype, address)
