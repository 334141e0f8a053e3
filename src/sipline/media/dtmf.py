"""DTMF: RFC 4733 telephone-events over RTP, and in-band tones (ITU-T Q.23).

`TelephoneEvent` is the 4-octet payload (§2.3). `DtmfSender` turns a digit
into the packet train of §2.5.1 on the audio stream's numbering, one packet
per packetisation interval; `DtmfReceiver` turns such trains back into
digits, each exactly once, whatever was lost, duplicated or reordered.
`DtmfDialer` spaces a string of digits with pauses on the packet grid.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sipline.media.rtp import RtpPacket, RtpSender

__all__ = [
    "DTMF_EVENTS",
    "DTMF_FREQUENCIES",
    "DtmfDialer",
    "DtmfDigit",
    "DtmfError",
    "DtmfReceiver",
    "DtmfSender",
    "TelephoneEvent",
    "digit_to_event",
    "dtmf_tone",
    "event_to_digit",
]

# RFC 4733 §3.2 table 7: events 0..15 are the DTMF keys, 16 is flash.
DTMF_EVENTS = "0123456789*#ABCD"
_FLASH = 16

# ITU-T Q.23: low (row) and high (column) group frequencies in Hz.
DTMF_FREQUENCIES: dict[str, tuple[int, int]] = {
    key: (row_hz, col_hz)
    for row_hz, keys in zip((697, 770, 852, 941), ("123A", "456B", "789C", "*0#D"), strict=True)
    for key, col_hz in zip(keys, (1209, 1336, 1477, 1633), strict=True)
}

_PAYLOAD = struct.Struct("!BBH")


class DtmfError(ValueError):
    """A malformed telephone-event payload, or an impossible request."""


def digit_to_event(digit: str) -> int:
    """The RFC 4733 event code for a key ("0".."9", "*", "#", "A".."D") or "flash"."""
    if digit.lower() == "flash":
        return _FLASH
    index = DTMF_EVENTS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise DtmfError(f"not a DTMF key: {digit!r}")
    return index


def event_to_digit(event: int) -> str | None:
    """The key for an event code, "flash" for 16, None for other events."""
    if 0 <= event < len(DTMF_EVENTS):
        return DTMF_EVENTS[event]
    return "flash" if event == _FLASH else None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The telephone-event payload (RFC 4733 §2.3).

    `volume` is the power level in -dBm0 (0..63), `duration` in timestamp units
    since the event's RTP timestamp.
    """

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse the first event block; any further ones (RFC 2198 redundancy) are ignored."""
        if len(payload) < 4:
            raise DtmfError(f"telephone-event payload too short ({len(payload)} octets)")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        # The R bit (0x40) is reserved: ignored on receipt (§2.3.4).
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        if not 0 <= self.event <= 0xFF:
            raise DtmfError(f"event {self.event} out of range")
        if not 0 <= self.volume <= 0x3F:
            raise DtmfError(f"volume {self.volume} out of range 0..63")
        if not 0 <= self.duration <= 0xFFFF:
            raise DtmfError(f"duration {self.duration} out of range")
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        return event_to_digit(self.event)


# -- sending -----------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    event: int
    duration: int


class DtmfSender:
    """Produces RFC 4733 packets on an audio stream's SSRC and sequence numbers.

    Queue digits with `send_digit`; while `active`, call `tick()` once per
    packetisation interval instead of sending audio. For each digit it yields
    (§2.5.1): a first packet with the marker bit, updates carrying the same
    timestamp and a growing duration, then the final packet with the E bit
    three times (§2.5.1.4). The audio timestamp moves on with every tick, so
    audio resumes where the event ended.
    """

    def __init__(
        self,
        rtp: RtpSender,
        *,
        payload_type: int = 101,
        volume: int = 10,
        end_repeats: int = 3,
    ) -> None:
        self.rtp = rtp
        self.payload_type = payload_type
        self.volume = volume
        self.end_repeats = end_repeats
        self._queue: deque[_Pending] = deque()
        self._current: _Pending | None = None
        self._timestamp = 0
        self._elapsed = 0
        self._ends_sent = 0

    @property
    def active(self) -> bool:
        return self._current is not None or bool(self._queue)

    def send_digit(self, digit: str, *, duration_ms: int = 100) -> None:
        """Queue a key press lasting `duration_ms` (RFC 4733 suggests at least 40 ms)."""
        samples = self.rtp.clock_rate * duration_ms // 1000
        if not 0 < samples <= 0xFFFF:
            # Longer events need segmenting (§2.5.1.3); no key is held that long.
            raise DtmfError(f"duration {duration_ms} ms does not fit one event")
        self._queue.append(_Pending(digit_to_event(digit), samples))

    def tick(self) -> RtpPacket | None:
        """The packet for this interval, or None when no event is in progress."""
        if self._current is None:
            if not self._queue:
                return None
            self._current = self._queue.popleft()
            self._timestamp = self.rtp.timestamp
            self._elapsed = 0
            self._ends_sent = 0
        current = self._current
        step = self.rtp.samples_per_packet
        first = self._elapsed == 0
        self._elapsed = min(self._elapsed + step, current.duration)
        end = self._elapsed >= current.duration
        payload = TelephoneEvent(current.event, end, self.volume, self._elapsed).serialize()
        packet = self.rtp.send_at(
            payload, timestamp=self._timestamp, payload_type=self.payload_type, marker=first
        )
        self.rtp.skip(step, new_talkspurt=False)
        if end:
            self._ends_sent += 1
            if self._ends_sent >= self.end_repeats:
                self._current = None
        return packet


class DtmfDialer:
    """A string of key presses with pauses between them, on the packet grid.

    `dial` checks and queues the digits; `tick(sender)`, once per packetisation
    interval, gives the telephone-event packet for it, or None while audio goes on
    (between digits, or when nothing is queued). `digits_sent` counts the digits
    whose final packets are out. The queue outlives a codec change: the sender
    (on the stream's numbering) is passed in each tick.
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[str, int]] = deque()  # (digit, ms) or ("", pause ticks)
        self._pause_ticks = 0
        self.digits_sent = 0
        # Digits or a pause still to come: a caller may skip `tick` while this is False
        # and the sender is not active (the per-frame path of every session).
        self.busy = False

    def dial(self, digits: str, *, duration_ms: int, pause_ticks: int, clock_rate: int) -> None:
        """Queue `digits`, each held `duration_ms` and followed by `pause_ticks` of audio."""
        if not 0 < clock_rate * duration_ms // 1000 <= 0xFFFF:
            raise DtmfError(f"duration {duration_ms} ms does not fit one event")
        for digit in digits:
            digit_to_event(digit)  # raises DtmfError for a key that does not exist
        for digit in digits:
            self._queue.append((digit, duration_ms))
            self._queue.append(("", pause_ticks))
        self.busy = bool(self._queue) or self._pause_ticks > 0

    def tick(self, sender: DtmfSender) -> RtpPacket | None:
        if not sender.active:
            if self._pause_ticks:
                self._pause_ticks -= 1
            elif self._queue:
                digit, value = self._queue.popleft()
                if digit:
                    sender.send_digit(digit, duration_ms=value)
                else:
                    self._pause_ticks = value
            self.busy = bool(self._queue) or self._pause_ticks > 0
        if not sender.active:
            return None
        packet = sender.tick()
        if packet is not None and not sender.active:
            self.digits_sent += 1
        return packet


# -- receiving ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A key press, reported once, as soon as any packet of its event arrives."""

    digit: str
    event: int
    timestamp: int
    volume: int


class DtmfReceiver:
    """Turns telephone-event packets into digits, each exactly once.

    An event is identified by its RTP timestamp (§2.5.2.1), so the first packet
    seen with a new timestamp reports the digit, whether it is the marked start,
    an update (start lost) or an end packet (all the rest lost); retransmitted
    ends and reordered stragglers find their timestamp in the recent history.
    A long event sent in segments (§2.5.1.3) continues the previous one and is
    not reported again. Malformed payloads are counted and ignored.
    """

    def __init__(self, *, history: int = 32) -> None:
        self._seen: deque[tuple[int, int]] = deque(maxlen=history)
        self._last: tuple[int, int, int, int, bool] | None = None  # ssrc, ts, event, dur, end
        self.malformed = 0

    def receive(self, packet: RtpPacket) -> DtmfDigit | None:
        try:
            ev = TelephoneEvent.parse(packet.payload)
        except DtmfError:
            self.malformed += 1
            return None
        key = (packet.ssrc, packet.timestamp)
        last = self._last
        if key in self._seen:
            if last is not None and last[:2] == key:
                self._last = (*key, ev.event, max(last[3], ev.duration), last[4] or ev.end)
            return None
        self._seen.append(key)
        self._last = (*key, ev.event, ev.duration, ev.end)
        digit = ev.digit
        if digit is None:
            return None
        if (
            last is not None
            and last[0] == packet.ssrc
            and last[2] == ev.event
            and not last[4]
            and (last[1] + last[3]) & 0xFFFFFFFF == packet.timestamp
        ):
            return None  # the next segment of a long event (§2.5.1.3)
        return DtmfDigit(digit, ev.event, packet.timestamp, ev.volume)


# -- in-band tones -----------------------------------------------------------


def dtmf_tone(
    digit: str, *, duration_ms: int = 100, sample_rate: int = 8000, amplitude: float = 0.25
) -> npt.NDArray[np.int16]:
    """A DTMF key as audio: the two Q.23 frequencies summed, each at `amplitude`
    of full scale (the default, about -12 dBFS per tone, is within Q.24 levels)."""
    if digit.upper() not in DTMF_FREQUENCIES:
        raise DtmfError(f"not a DTMF key: {digit!r}")
    low, high = DTMF_FREQUENCIES[digit.upper()]
    t = np.arange(sample_rate * duration_ms // 1000) / sample_rate
    wave = np.sin(2 * math.pi * low * t) + np.sin(2 * math.pi * high * t)
    return np.round(wave * amplitude * 32767).astype(np.int16)
