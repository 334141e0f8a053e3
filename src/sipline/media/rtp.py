"""RTP data packets (RFC 3550 §5.1) and the sending side's counters.

Sans-I/O: parsing and serialising bytes, sequence/timestamp arithmetic modulo
2**16 and 2**32, and an `RtpSender` that numbers packets. Randomness (SSRC,
initial sequence number and timestamp, RFC 3550 §5.1) comes from an injected
`Entropy`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from sipline.core.clock import Entropy

__all__ = [
    "RTP_HEADER_SIZE",
    "RTP_VERSION",
    "RtpError",
    "RtpExtension",
    "RtpPacket",
    "RtpSender",
    "is_rtcp",
    "seq_add",
    "seq_diff",
    "seq_lt",
    "ts_add",
    "ts_diff",
    "unwrap_seq",
]

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32
_MAX_CSRC = 15

_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


class RtpError(ValueError):
    """A malformed RTP packet, or a packet that cannot be serialised."""


# -- modular arithmetic ------------------------------------------------------


def seq_add(seq: int, n: int) -> int:
    """`seq + n` modulo 2**16."""
    return (seq + n) % _SEQ_MOD


def seq_diff(a: int, b: int) -> int:
    """Signed distance `a - b` between 16-bit sequence numbers, in [-32768, 32767]."""
    d = (a - b) % _SEQ_MOD
    return d - _SEQ_MOD if d >= _SEQ_MOD // 2 else d


def seq_lt(a: int, b: int) -> bool:
    """True if `a` comes before `b` in serial-number order (wrap-around aware)."""
    return seq_diff(a, b) < 0


def unwrap_seq(seq: int, reference: int) -> int:
    """The extended (unbounded) sequence number nearest to the extended `reference`."""
    return reference + seq_diff(seq, reference % _SEQ_MOD)


def ts_add(ts: int, n: int) -> int:
    """`ts + n` modulo 2**32."""
    return (ts + n) % _TS_MOD


def ts_diff(a: int, b: int) -> int:
    """Signed distance `a - b` between 32-bit RTP timestamps."""
    d = (a - b) % _TS_MOD
    return d - _TS_MOD if d >= _TS_MOD // 2 else d


def is_rtcp(data: bytes) -> bool:
    """Demultiplex RTP from RTCP on one port (RFC 5761 §4: RTCP types 192..223)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


# -- packets -----------------------------------------------------------------


@dataclass(slots=True)
class RtpExtension:
    """The header extension of RFC 3550 §5.3.1: a 16-bit profile word and data.

    `data` is a whole number of 32-bit words; its meaning belongs to the profile
    (for example RFC 8285's one-byte headers use profile 0xBEDE).
    """

    profile: int
    data: bytes = b""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1).

    `padding` is the number of padding octets at the end, the count octet
    included (0 means the P bit is clear); padding is only ever zeros when we
    serialise, and whatever the peer sent is discarded when we parse.
    """

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension: RtpExtension | None = None
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one packet; anything malformed raises `RtpError` and nothing else."""
        if len(data) < RTP_HEADER_SIZE:
            raise RtpError(f"RTP packet too short ({len(data)} octets)")
        first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        if first == 0x80:  # the usual case: version 2, no padding, extension or CSRC
            return cls(
                second & 0x7F, seq, ts, ssrc, bytes(data[RTP_HEADER_SIZE:]), bool(second & 0x80)
            )
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {first >> 6}, expected 2")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        cc = first & 0x0F
        pos = RTP_HEADER_SIZE + 4 * cc
        if len(data) < pos:
            raise RtpError("RTP packet truncated in the CSRC list")
        csrc = list(struct.unpack_from(f"!{cc}I", data, RTP_HEADER_SIZE))
        extension = None
        if has_extension:
            if len(data) < pos + 4:
                raise RtpError("RTP packet truncated in the extension header")
            profile, words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            end = pos + 4 * words
            if len(data) < end:
                raise RtpError("RTP header extension longer than the packet")
            extension = RtpExtension(profile, bytes(data[pos:end]))
            pos = end
        end = len(data)
        padding = 0
        if has_padding:
            # §5.1: the last octet counts the padding octets, itself included.
            padding = data[-1]
            if padding == 0 or padding > end - pos:
                raise RtpError(f"invalid RTP padding count {padding}")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=csrc,
            extension=extension,
            padding=padding,
        )

    def serialize(self) -> bytes:
        """The packet on the wire; out-of-range fields raise `RtpError`."""
        if not self.csrc and self.extension is None and not self.padding:
            try:  # the usual case in one pack; struct checks every field's range
                head = _HEADER.pack(
                    0x80,
                    (0x80 if self.marker else 0) | self.payload_type,
                    self.sequence_number,
                    self.timestamp,
                    self.ssrc,
                )
            except struct.error:
                pass  # report which field is out of range below
            else:
                if self.payload_type <= 0x7F:
                    return head + self.payload
        _check_range("payload type", self.payload_type, 0x7F)
        _check_range("sequence number", self.sequence_number, _SEQ_MOD - 1)
        _check_range("timestamp", self.timestamp, _TS_MOD - 1)
        _check_range("SSRC", self.ssrc, _TS_MOD - 1)
        _check_range("padding", self.padding, 0xFF)
        if len(self.csrc) > _MAX_CSRC:
            raise RtpError(f"at most {_MAX_CSRC} CSRCs, got {len(self.csrc)}")
        for c in self.csrc:
            _check_range("CSRC", c, _TS_MOD - 1)
        first = (
            (RTP_VERSION << 6)
            | (0x20 if self.padding else 0)
            | (0x10 if self.extension is not None else 0)
            | len(self.csrc)
        )
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [
            _HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc),
            struct.pack(f"!{len(self.csrc)}I", *self.csrc),
        ]
        if self.extension is not None:
            ext = self.extension
            _check_range("extension profile", ext.profile, 0xFFFF)
            if len(ext.data) % 4 or len(ext.data) // 4 > 0xFFFF:
                raise RtpError("extension data must be a whole number of 32-bit words")
            parts.append(_EXT_HEADER.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def _check_range(what: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise RtpError(f"{what} {value} out of range 0..{maximum}")


# -- sending -----------------------------------------------------------------


class RtpSender:
    """Numbers the packets of one outgoing RTP stream.

    SSRC, first sequence number and first timestamp are random (RFC 3550 §5.1,
    §8). Each `send` carries `samples_per_packet` samples of media (20 ms at
    8 kHz = 160 unless told otherwise) and advances the timestamp by that much.
    The marker bit is set on the first packet of a talkspurt (RFC 3551 §4.1):
    the first packet of the stream and the first one after `skip`.
    """

    def __init__(
        self,
        *,
        payload_type: int,
        entropy: Entropy,
        clock_rate: int = 8000,
        ptime_ms: int = 20,
        ssrc: int | None = None,
    ) -> None:
        if clock_rate <= 0 or ptime_ms <= 0:
            raise ValueError("clock_rate and ptime_ms must be positive")
        _check_range("payload type", payload_type, 0x7F)
        rnd = entropy.random_bytes(10)
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.ptime_ms = ptime_ms
        self.ssrc = int.from_bytes(rnd[0:4], "big") if ssrc is None else ssrc
        self.sequence_number = int.from_bytes(rnd[4:6], "big")
        self.timestamp = int.from_bytes(rnd[6:10], "big")
        self._talkspurt_start = True

    @property
    def samples_per_packet(self) -> int:
        return self.clock_rate * self.ptime_ms // 1000

    def send(
        self, payload: bytes, *, samples: int | None = None, marker: bool = False
    ) -> RtpPacket:
        """The next media packet; the timestamp then moves on by `samples`."""
        packet = self.send_at(
            payload,
            timestamp=self.timestamp,
            payload_type=self.payload_type,
            marker=marker or self._talkspurt_start,
        )
        self._talkspurt_start = False
        self.timestamp = ts_add(
            self.timestamp, self.samples_per_packet if samples is None else samples
        )
        return packet

    def send_at(
        self, payload: bytes, *, timestamp: int, payload_type: int, marker: bool = False
    ) -> RtpPacket:
        """A packet with a chosen timestamp and payload type, on this stream's numbering.

        RFC 4733 events use this: they share the SSRC and sequence space of the
        audio but keep the event's start timestamp across updates (§2.3.1).
        """
        packet = RtpPacket(
            payload_type=payload_type,
            sequence_number=self.sequence_number,
            timestamp=timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )
        self.sequence_number = seq_add(self.sequence_number, 1)
        return packet

    def skip(self, samples: int, *, new_talkspurt: bool = True) -> None:
        """Let `samples` of media time pass unsent (silence suppression or a DTMF event)."""
        self.timestamp = ts_add(self.timestamp, samples)
        if new_talkspurt:
            self._talkspurt_start = True
