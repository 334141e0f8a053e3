"""Parse and serialize session descriptions (RFC 8866 §5, §9).

Lenient where real user agents stray and nothing is lost: bare LF line ends, runs of
spaces between fields, known lines out of the RFC's order, an empty `s=`, a missing
`t=`. Such input comes back in canonical form; well-formed CRLF input comes back byte
for byte. Anything else raises `SdpError` naming the line, and nothing else escapes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from .errors import SdpError
from .model import (
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    Repeat,
    SessionDescription,
    TimeZone,
    Timing,
    UnknownLine,
)
from .payload import parse_fmtp, parse_payload_type, parse_ptime, parse_rtcp, parse_rtpmap

__all__ = ["parse", "serialize", "serialize_str"]

# token-char = %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E
_TOKEN = re.compile(r"[!#-'*+\-.0-9A-Z^-~]+")
_INTEGER = re.compile(r"[0-9]{1,20}")
# typed-time = 1*DIGIT [fixed-len-time-unit] ; fixed-len-time-unit = "d" / "h" / "m" / "s"
_TYPED_TIME = re.compile(r"[0-9]{1,20}[dhms]?")
_OFFSET = re.compile(r"-?[0-9]{1,20}[dhms]?")  # z= offsets may be negative (RFC 8866 §5.11)
_SESSION_ONLY = "vosueptrz"  # types that may not appear inside a media description
# proto = token *("/" token)
_PROTO = re.compile(r"[!#-'*+\-.0-9A-Z^-~]+(?:/[!#-'*+\-.0-9A-Z^-~]+)*")
# Attributes whose views the model exposes: validated here so views never fail later.
_VALIDATORS: dict[str, Callable[[str], object]] = {
    "rtpmap": parse_rtpmap,
    "fmtp": parse_fmtp,
    "ptime": parse_ptime,
    "maxptime": parse_ptime,
    "rtcp": parse_rtcp,
}


def _fields(value: str, what: str, minimum: int, maximum: int | None = None) -> list[str]:
    parts = [p for p in value.split(" ") if p]
    if len(parts) < minimum or (maximum is not None and len(parts) > maximum):
        expected = str(minimum) if maximum == minimum else f"at least {minimum}"
        raise SdpError(f"{what} needs {expected} fields, found {len(parts)}")
    return parts


def _integer(text: str, what: str, maximum: int | None = None) -> int:
    # int() alone would also take '+5', ' 5', '5_0' and non-ASCII digits.
    if not _INTEGER.fullmatch(text) or (maximum is not None and int(text) > maximum):
        raise SdpError(f"invalid {what} {text!r}")
    return int(text)


def _token(text: str, what: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise SdpError(f"invalid {what} {text!r}")
    return text


def _address(text: str, addrtype: str) -> str:
    if addrtype == "IP6":
        if text.startswith("[") or text.endswith("]"):
            raise SdpError(f"IPv6 address {text!r} must not be bracketed in SDP")
        if ":" in text:
            try:
                ipaddress.IPv6Address(text)
            except ValueError:
                raise SdpError(f"invalid IPv6 address {text!r}") from None
    elif addrtype == "IP4" and text.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            raise SdpError(f"invalid IPv4 address {text!r}") from None
    return text  # otherwise an FQDN or an extension address type: kept as is


def _parse_origin(value: str) -> Origin:
    username, sess_id, version, nettype, addrtype, address = _fields(value, "o=", 6, 6)
    return Origin(
        username=username,
        session_id=sess_id,
        session_version=_integer(version, "session version"),
        nettype=_token(nettype, "network type"),
        addrtype=_token(addrtype, "address type"),
        address=_address(address, addrtype),
    )


def _parse_connection(value: str) -> Connection:
    nettype, addrtype, spec = _fields(value, "c=", 3, 3)
    _token(nettype, "network type")
    _token(addrtype, "address type")
    if addrtype not in ("IP4", "IP6"):
        return Connection(spec, nettype, addrtype)
    address, *suffix = spec.split("/")
    ttl = count = None
    if addrtype == "IP4" and suffix:  # IP4 multicast: /ttl[/count]
        if len(suffix) > 2:
            raise SdpError(f"too many '/' parts in {spec!r}")
        ttl = _integer(suffix[0], "TTL", 255)
        count = _integer(suffix[1], "address count") if len(suffix) == 2 else None
    elif suffix:  # IP6 multicast: /count only
        if len(suffix) > 1:
            raise SdpError(f"too many '/' parts in {spec!r}")
        count = _integer(suffix[0], "address count")
    if not address:
        raise SdpError("empty connection address")
    return Connection(_address(address, addrtype), nettype, addrtype, ttl, count)


def _parse_bandwidth(value: str) -> Bandwidth:
    bwtype, sep, amount = value.partition(":")
    if not sep:
        raise SdpError("b= needs <bwtype>:<bandwidth>")
    return Bandwidth(_token(bwtype, "bandwidth type"), _integer(amount, "bandwidth"))


def _parse_timing(value: str) -> Timing:
    start, stop = _fields(value, "t=", 2, 2)
    return Timing(_integer(start, "start time"), _integer(stop, "stop time"))


def _parse_repeat(value: str) -> Repeat:
    parts = _fields(value, "r=", 3)
    for part in parts:
        if not _TYPED_TIME.fullmatch(part):
            raise SdpError(f"invalid repeat time {part!r}")
    return Repeat(parts[0], parts[1], parts[2:])


def _parse_zones(value: str) -> list[TimeZone]:
    parts = _fields(value, "z=", 2)
    if len(parts) % 2:
        raise SdpError("z= needs pairs of <adjustment time> <offset>")
    zones = []
    for time, offset in zip(parts[::2], parts[1::2], strict=True):
        if not _OFFSET.fullmatch(offset):
            raise SdpError(f"invalid time zone offset {offset!r}")
        zones.append(TimeZone(_integer(time, "adjustment time"), offset))
    return zones


def _proto(text: str) -> str:
    if not _PROTO.fullmatch(text):
        raise SdpError(f"invalid transport protocol {text!r}")
    return text


def _parse_attribute(value: str, media: MediaDescription | None = None) -> Attribute:
    name, sep, attr_value = value.partition(":")
    attr = Attribute(_token(name, "attribute name"), attr_value if sep else None)
    # Only RTP media sections have views over these; elsewhere they are opaque.
    validator = _VALIDATORS.get(name) if media is not None and media.is_rtp else None
    if validator is not None and attr.value is not None:
        validator(attr.value)
    return attr


def _parse_media(value: str) -> MediaDescription:
    media, port_spec, proto, *formats = _fields(value, "m=", 3)
    port_text, sep, count_text = port_spec.partition("/")
    result = MediaDescription(
        media=_token(media, "media type"),
        port=_integer(port_text, "port", 65535),
        proto=_proto(proto),
        formats=formats,
        port_count=_integer(count_text, "port count") if sep else None,
    )
    if result.is_rtp:  # RTP formats are payload type numbers (RFC 8866 §5.14)
        for fmt in formats:
            parse_payload_type(fmt)
    return result


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final line end
    while lines and lines[-1] in ("", "\r"):
        lines.pop()  # stray blank lines after the body
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse(data: bytes | str) -> SessionDescription:
    """Parse a session description; raise `SdpError` naming the line and defect.

    Bytes are decoded as UTF-8 (RFC 8866 §5), invalid sequences escaped so that
    `serialize` gives them back unchanged.
    """
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    lines = _split_lines(text)
    if not lines:
        raise SdpError("empty session description")
    parser = _Parser()
    for number, line in enumerate(lines, 1):
        try:
            parser.feed(number, line)
        except SdpError as exc:
            raise SdpError(exc.reason, line_number=number, line=line) from None
    return parser.finish()


class _Parser:
    """Line-by-line state: the session level until the first m=, then that media section."""

    def __init__(self) -> None:
        self.session = SessionDescription(Origin("", "", 0, ""), session_name="", timings=[])
        self.seen: set[str] = set()
        self.media: MediaDescription | None = None

    def feed(self, number: int, line: str) -> None:
        if "\r" in line or "\x00" in line:
            raise SdpError("bare CR or NUL inside a line")
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpError("expected <type>=<value> with a lower-case type letter")
        kind, value = line[0], line[2:]
        if number == 1 or kind == "v":
            if number != 1 or kind != "v":
                raise SdpError("v= must be the first line and only there")
            if value != "0":
                raise SdpError(f"unsupported SDP version {value!r}")
        elif kind == "m":
            self._check_required()
            self.media = _parse_media(value)
            self.session.media.append(self.media)
        elif self.media is not None:
            self._media_line(self.media, kind, value)
        else:
            self._session_line(kind, value)

    def finish(self) -> SessionDescription:
        self._check_required()
        return self.session

    def _check_required(self) -> None:
        if self.media is None:
            for kind in "os":
                if kind not in self.seen:
                    raise SdpError(f"missing {kind}= line before the media descriptions")

    def _once(self, kind: str) -> None:
        # RFC 8866 §5: these appear at most once at their level.
        if kind in self.seen:
            raise SdpError(f"more than one {kind}= line")
        self.seen.add(kind)

    def _session_line(self, kind: str, value: str) -> None:
        session = self.session
        if kind in "osiuczk":
            self._once(kind)
        if kind == "o":
            session.origin = _parse_origin(value)
        elif kind == "s":
            session.session_name = value  # RFC 4317 writes "s= ", others leave it empty
        elif kind == "i":
            session.information = value
        elif kind == "u":
            session.uri = value
        elif kind == "e":
            session.emails.append(value)
        elif kind == "p":
            session.phones.append(value)
        elif kind == "c":
            session.connection = _parse_connection(value)
        elif kind == "b":
            session.bandwidths.append(_parse_bandwidth(value))
        elif kind == "t":
            session.timings.append(_parse_timing(value))
        elif kind == "r":
            if not session.timings:
                raise SdpError("r= must follow a t= line")
            session.timings[-1].repeats.append(_parse_repeat(value))
        elif kind == "z":
            session.time_zones = _parse_zones(value)
        elif kind == "k":
            session.key = value
        elif kind == "a":
            session.attributes.append(_parse_attribute(value))
        else:
            session.unknown_lines.append(UnknownLine(kind, value))

    def _media_line(self, media: MediaDescription, kind: str, value: str) -> None:
        if kind == "i":
            if media.title is not None:
                raise SdpError("more than one i= line in a media description")
            media.title = value
        elif kind == "c":
            media.connections.append(_parse_connection(value))
        elif kind == "b":
            media.bandwidths.append(_parse_bandwidth(value))
        elif kind == "k":
            if media.key is not None:
                raise SdpError("more than one k= line in a media description")
            media.key = value
        elif kind == "a":
            media.attributes.append(_parse_attribute(value, media))
        elif kind in _SESSION_ONLY:
            raise SdpError(f"{kind}= is not allowed in a media description")
        else:
            media.unknown_lines.append(UnknownLine(kind, value))


def _connection_text(conn: Connection) -> str:
    text = conn.address
    if conn.ttl is not None:
        text += f"/{conn.ttl}"
    if conn.count is not None:
        text += f"/{conn.count}"
    return f"c={conn.nettype} {conn.addrtype} {text}"


def _attribute_text(attr: Attribute) -> str:
    return f"a={attr.name}" if attr.value is None else f"a={attr.name}:{attr.value}"


def _lines(sd: SessionDescription) -> list[str]:
    o = sd.origin
    out = [
        f"v={sd.version}",
        f"o={o.username} {o.session_id} {o.session_version} {o.nettype} {o.addrtype} {o.address}",
        f"s={sd.session_name}",
    ]
    if sd.information is not None:
        out.append(f"i={sd.information}")
    if sd.uri is not None:
        out.append(f"u={sd.uri}")
    out += [f"e={e}" for e in sd.emails]
    out += [f"p={p}" for p in sd.phones]
    if sd.connection is not None:
        out.append(_connection_text(sd.connection))
    out += [f"b={b.bwtype}:{b.bandwidth}" for b in sd.bandwidths]
    for timing in sd.timings:
        out.append(f"t={timing.start} {timing.stop}")
        out += [f"r={' '.join([r.interval, r.duration, *r.offsets])}" for r in timing.repeats]
    if sd.time_zones:
        out.append("z=" + " ".join(f"{z.adjustment_time} {z.offset}" for z in sd.time_zones))
    if sd.key is not None:
        out.append(f"k={sd.key}")
    out += [_attribute_text(a) for a in sd.attributes]
    out += [f"{u.type}={u.value}" for u in sd.unknown_lines]
    for m in sd.media:
        port = str(m.port) if m.port_count is None else f"{m.port}/{m.port_count}"
        out.append(" ".join([f"m={m.media}", port, m.proto, *m.formats]))
        if m.title is not None:
            out.append(f"i={m.title}")
        out += [_connection_text(c) for c in m.connections]
        out += [f"b={b.bwtype}:{b.bandwidth}" for b in m.bandwidths]
        if m.key is not None:
            out.append(f"k={m.key}")
        out += [_attribute_text(a) for a in m.attributes]
        out += [f"{u.type}={u.value}" for u in m.unknown_lines]
    return out


def serialize_str(sd: SessionDescription) -> str:
    """The description as text, CRLF after every line (RFC 8866 §5)."""
    return "".join(line + "\r\n" for line in _lines(sd))


def serialize(sd: SessionDescription) -> bytes:
    """The description as UTF-8 bytes; escaped undecodable input bytes come back as they were."""
    return serialize_str(sd).encode("utf-8", "surrogateescape")
