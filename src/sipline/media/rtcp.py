"""RTCP packets (RFC 3550 §6): SR, RR, SDES, BYE, compound packets, NTP time.

Each packet type is a dataclass with `parse`/`serialize`; `parse_compound`
splits a datagram into packets. Types we do not interpret (APP, feedback,
XR, ...) survive as `RtcpUnknownPacket` so they can be forwarded or ignored.
Wall-clock time enters only as arguments to the NTP helpers.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "NTP_UNIX_OFFSET",
    "RTCP_BYE",
    "RTCP_RR",
    "RTCP_SDES",
    "RTCP_SR",
    "RtcpByePacket",
    "RtcpError",
    "RtcpPacket",
    "RtcpReceiverReport",
    "RtcpReportBlock",
    "RtcpSdesChunk",
    "RtcpSdesPacket",
    "RtcpSenderReport",
    "RtcpUnknownPacket",
    "SdesItem",
    "dlsr_from_seconds",
    "ntp_from_unix",
    "ntp_middle",
    "parse_compound",
    "round_trip_time",
    "serialize_compound",
    "unix_from_ntp",
]

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203

# Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_OFFSET = 2_208_988_800

_HEADER = struct.Struct("!BBH")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SENDER_INFO = struct.Struct("!IQIII")
_MAX_COUNT = 31
_U32 = 0xFFFFFFFF


class RtcpError(ValueError):
    """A malformed RTCP packet, or one that cannot be serialised."""


# -- NTP time (RFC 3550 §4) --------------------------------------------------


def ntp_from_unix(wall: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point) for Unix time `wall`."""
    return round((wall + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def unix_from_ntp(ntp: int) -> float:
    """Unix time for a 64-bit NTP timestamp (era 0, i.e. before 2036)."""
    return ntp / (1 << 32) - NTP_UNIX_OFFSET


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: the LSR field of a report block (§6.4.1)."""
    return (ntp >> 16) & _U32


def dlsr_from_seconds(seconds: float) -> int:
    """A delay in units of 1/65536 s, as in the DLSR field (§6.4.1)."""
    return max(0, min(_U32, round(seconds * 65536)))


def round_trip_time(*, arrival_wall: float, lsr: int, dlsr: int) -> float | None:
    """RTT from a report block received at `arrival_wall` (§6.4.1, figure 2).

    None when the block carries no LSR (no SR received by its sender yet).
    """
    if lsr == 0:
        return None
    arrival = ntp_middle(ntp_from_unix(arrival_wall))
    # Modular 32-bit arithmetic so a wrap of the middle word does no harm; a
    # "negative" result means unsynchronised clocks and gives no estimate.
    units = (arrival - lsr - dlsr) & _U32
    return None if units >= 1 << 31 else units / 65536


# -- report blocks -----------------------------------------------------------


@dataclass(slots=True)
class RtcpReportBlock:
    """Reception statistics about one source (§6.4.1).

    `packets_lost` is the cumulative count, a 24-bit signed field on the wire
    (duplicates can make it negative); `fraction_lost` is 8-bit fixed point.
    """

    ssrc: int
    fraction_lost: int = 0
    packets_lost: int = 0
    highest_sequence: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    @classmethod
    def parse(cls, data: bytes, pos: int = 0) -> RtcpReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, pos)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        _check("fraction lost", self.fraction_lost, 0, 0xFF)
        _check("cumulative lost", self.packets_lost, -(1 << 23), (1 << 23) - 1)
        for name, value in (
            ("SSRC", self.ssrc),
            ("highest sequence", self.highest_sequence),
            ("jitter", self.jitter),
            ("LSR", self.lsr),
            ("DLSR", self.dlsr),
        ):
            _check(name, value, 0, _U32)
        lost_word = (self.fraction_lost << 24) | (self.packets_lost & 0xFFFFFF)
        return _REPORT_BLOCK.pack(
            self.ssrc, lost_word, self.highest_sequence, self.jitter, self.lsr, self.dlsr
        )


def _check(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise RtcpError(f"{what} {value} out of range {low}..{high}")


def _header(count: int, packet_type: int, body: bytes, padding: int = 0) -> bytes:
    """The common header (§6.4.1) in front of `body`, plus padding if asked."""
    if count > _MAX_COUNT:
        raise RtcpError(f"at most {_MAX_COUNT} items in one RTCP packet, got {count}")
    if len(body) % 4:
        raise RtcpError("RTCP packet body is not a whole number of 32-bit words")
    _check("padding", padding, 0, 0xFF)
    if padding % 4:
        raise RtcpError("RTCP padding must keep the packet 32-bit aligned")
    pad = bytes(padding - 1) + bytes([padding]) if padding else b""
    words = (len(body) + len(pad)) // 4
    first = 0x80 | (0x20 if padding else 0) | count
    return _HEADER.pack(first, packet_type, words) + body + pad


def _blocks(data: bytes, pos: int, count: int, end: int) -> list[RtcpReportBlock]:
    if pos + 24 * count > end:
        raise RtcpError("RTCP report blocks run past the packet")
    return [RtcpReportBlock.parse(data, pos + 24 * i) for i in range(count)]


# -- packet types ------------------------------------------------------------


@dataclass(slots=True)
class RtcpSenderReport:
    """SR (§6.4.1): sender info and report blocks about the sources we hear."""

    ssrc: int
    ntp_timestamp: int = 0
    rtp_timestamp: int = 0
    packet_count: int = 0
    octet_count: int = 0
    reports: list[RtcpReportBlock] = field(default_factory=list)
    extension: bytes = b""
    padding: int = 0

    packet_type = RTCP_SR

    @classmethod
    def parse(cls, count: int, body: bytes, padding: int = 0) -> RtcpSenderReport:
        if len(body) < 24:
            raise RtcpError("SR too short")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        reports = _blocks(body, 24, count, len(body))
        ext = body[24 + 24 * count :]
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports, ext, padding)

    def serialize(self) -> bytes:
        for name, value in (
            ("SSRC", self.ssrc),
            ("RTP timestamp", self.rtp_timestamp),
            ("packet count", self.packet_count),
            ("octet count", self.octet_count),
        ):
            _check(name, value, 0, _U32)
        _check("NTP timestamp", self.ntp_timestamp, 0, (1 << 64) - 1)
        body = _SENDER_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        )
        body += b"".join(r.serialize() for r in self.reports) + self.extension
        return _header(len(self.reports), RTCP_SR, body, self.padding)


@dataclass(slots=True)
class RtcpReceiverReport:
    """RR (§6.4.2): report blocks from a participant that is not sending."""

    ssrc: int
    reports: list[RtcpReportBlock] = field(default_factory=list)
    extension: bytes = b""
    padding: int = 0

    packet_type = RTCP_RR

    @classmethod
    def parse(cls, count: int, body: bytes, padding: int = 0) -> RtcpReceiverReport:
        if len(body) < 4:
            raise RtcpError("RR too short")
        (ssrc,) = struct.unpack_from("!I", body)
        reports = _blocks(body, 4, count, len(body))
        return cls(ssrc, reports, body[4 + 24 * count :], padding)

    def serialize(self) -> bytes:
        _check("SSRC", self.ssrc, 0, _U32)
        body = struct.pack("!I", self.ssrc)
        body += b"".join(r.serialize() for r in self.reports) + self.extension
        return _header(len(self.reports), RTCP_RR, body, self.padding)


class SdesItem:
    """SDES item types (§6.5)."""

    END = 0
    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


@dataclass(slots=True)
class RtcpSdesChunk:
    """One SSRC/CSRC and its items, as (type, value) pairs in wire order."""

    ssrc: int
    items: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == SdesItem.CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass(slots=True)
class RtcpSdesPacket:
    """SDES (§6.5): source descriptions, of which CNAME is the mandatory one."""

    chunks: list[RtcpSdesChunk] = field(default_factory=list)
    padding: int = 0

    packet_type = RTCP_SDES

    @classmethod
    def with_cname(cls, ssrc: int, cname: str) -> RtcpSdesPacket:
        return cls([RtcpSdesChunk(ssrc, [(SdesItem.CNAME, cname.encode("utf-8"))])])

    @classmethod
    def parse(cls, count: int, body: bytes, padding: int = 0) -> RtcpSdesPacket:
        chunks = []
        pos = 0
        for _ in range(count):
            if pos + 4 > len(body):
                raise RtcpError("SDES chunk runs past the packet")
            (ssrc,) = struct.unpack_from("!I", body, pos)
            pos += 4
            items = []
            while True:
                if pos >= len(body):
                    raise RtcpError("SDES chunk not terminated")
                kind = body[pos]
                if kind == SdesItem.END:
                    # The END item is followed by nulls up to the next 32-bit boundary.
                    pos = (pos + 4) & ~3
                    break
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise RtcpError("SDES item runs past the packet")
                length = body[pos + 1]
                items.append((kind, bytes(body[pos + 2 : pos + 2 + length])))
                pos += 2 + length
            chunks.append(RtcpSdesChunk(ssrc, items))
        return cls(chunks, padding)

    def serialize(self) -> bytes:
        body = bytearray()
        for chunk in self.chunks:
            _check("SSRC", chunk.ssrc, 0, _U32)
            body += struct.pack("!I", chunk.ssrc)
            for kind, value in chunk.items:
                _check("SDES item type", kind, 1, 0xFF)
                if len(value) > 0xFF:
                    raise RtcpError("SDES item longer than 255 octets")
                body += bytes([kind, len(value)]) + value
            # At least one null octet ends the list, then pad to a word (§6.5).
            body += bytes(4 - len(body) % 4)
        return _header(len(self.chunks), RTCP_SDES, bytes(body), self.padding)


@dataclass(slots=True)
class RtcpByePacket:
    """BYE (§6.6): sources leaving, with an optional reason."""

    sources: list[int] = field(default_factory=list)
    reason: bytes = b""
    padding: int = 0

    packet_type = RTCP_BYE

    @classmethod
    def parse(cls, count: int, body: bytes, padding: int = 0) -> RtcpByePacket:
        if 4 * count > len(body):
            raise RtcpError("BYE sources run past the packet")
        sources = list(struct.unpack_from(f"!{count}I", body))
        reason = b""
        pos = 4 * count
        if pos < len(body):
            length = body[pos]
            if pos + 1 + length > len(body):
                raise RtcpError("BYE reason runs past the packet")
            reason = bytes(body[pos + 1 : pos + 1 + length])
        return cls(sources, reason, padding)

    def serialize(self) -> bytes:
        for s in self.sources:
            _check("SSRC", s, 0, _U32)
        body = struct.pack(f"!{len(self.sources)}I", *self.sources)
        if self.reason:
            if len(self.reason) > 0xFF:
                raise RtcpError("BYE reason longer than 255 octets")
            text = bytes([len(self.reason)]) + self.reason
            body += text + bytes(-len(text) % 4)
        return _header(len(self.sources), RTCP_BYE, body, self.padding)


@dataclass(slots=True)
class RtcpUnknownPacket:
    """Any other packet type (APP, RTPFB, PSFB, XR, ...), kept as raw body."""

    packet_type: int
    count: int = 0
    body: bytes = b""
    padding: int = 0

    def serialize(self) -> bytes:
        _check("packet type", self.packet_type, 0, 0xFF)
        return _header(self.count, self.packet_type, self.body, self.padding)


RtcpPacket = (
    RtcpSenderReport | RtcpReceiverReport | RtcpSdesPacket | RtcpByePacket | RtcpUnknownPacket
)


# -- compound packets (§6.1) -------------------------------------------------


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Split a datagram into RTCP packets; malformed input raises `RtcpError` only.

    Checks the RFC 3550 A.2 header rules (version 2, lengths that add up, padding
    only on the last packet) but not which type comes first, so RFC 5506
    reduced-size RTCP is accepted too.
    """
    packets: list[RtcpPacket] = []
    pos = 0
    if not data:
        raise RtcpError("empty RTCP datagram")
    while pos < len(data):
        if pos + 4 > len(data):
            raise RtcpError("truncated RTCP header")
        first, packet_type, words = _HEADER.unpack_from(data, pos)
        if first >> 6 != 2:
            raise RtcpError(f"RTCP version {first >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtcpError("RTCP length runs past the datagram")
        body = data[pos + 4 : end]
        padding = 0
        if first & 0x20:
            if end != len(data):
                raise RtcpError("RTCP padding on a packet that is not the last")
            padding = body[-1] if body else 0
            if padding == 0 or padding > len(body):
                raise RtcpError(f"invalid RTCP padding count {padding}")
            body = body[: len(body) - padding]
        count = first & 0x1F
        packets.append(_parse_one(packet_type, count, bytes(body), padding))
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes, padding: int) -> RtcpPacket:
    if packet_type == RTCP_SR:
        return RtcpSenderReport.parse(count, body, padding)
    if packet_type == RTCP_RR:
        return RtcpReceiverReport.parse(count, body, padding)
    if packet_type == RTCP_SDES:
        return RtcpSdesPacket.parse(count, body, padding)
    if packet_type == RTCP_BYE:
        return RtcpByePacket.parse(count, body, padding)
    return RtcpUnknownPacket(packet_type, count, body, padding)


def serialize_compound(packets: Sequence[RtcpPacket]) -> bytes:
    """Concatenate packets into one compound datagram (§6.1)."""
    if any(p.padding for p in packets[:-1]):
        raise RtcpError("only the last packet of a compound may carry padding")
    return b"".join(p.serialize() for p in packets)
