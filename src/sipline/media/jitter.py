"""An adaptive jitter buffer, sans-I/O.

Packets go in with their arrival time (`push(packet, now=...)`); frames come
out in sequence order once their playout time has come (`pop(now=...)`), with
a `Gap` in place of each packet that never arrived so the decoder can conceal
it. Give the buffer one RTP stream of one payload type: RFC 4733 events and
comfort noise are demultiplexed before it.

Playout time of a packet = its timestamp in seconds + the lowest transit time
seen (arrival - timestamp, drifting up slowly so clock skew cannot strand us)
+ a target delay. The target follows the RFC 3550 A.8 jitter estimate (four
times the mean deviation) within [min_delay, max_delay], and each late packet
raises a floor under it that decays again while the network is calm.
Playout times are fixed when a packet arrives, so a change of target affects
only later packets and never reorders output.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from sipline.media.rtp import RtpPacket, seq_diff, ts_diff

__all__ = ["Frame", "Gap", "JitterBuffer", "JitterItem"]

# A sequence jump larger than this (RFC 3550 A.1 MAX_DROPOUT) means the source
# restarted its numbering; we believe it when the next packet follows on.
_MAX_JUMP = 3000
# A transit change larger than this means the timestamps jumped: re-anchor.
_TIMESTAMP_JUMP_S = 1.0
# Upward drift of the transit anchor, seconds per second (clock skew allowance).
_ANCHOR_DRIFT = 0.002
# Per-packet decay of the late-packet floor towards min_delay.
_FLOOR_DECAY = 0.995
_JITTER_FACTOR = 4.0


@dataclass(frozen=True, slots=True)
class Frame:
    """A received packet at its playout time. `index` is the extended sequence number."""

    index: int
    sequence_number: int
    timestamp: int
    payload_type: int
    marker: bool
    payload: bytes
    playout_time: float


@dataclass(frozen=True, slots=True)
class Gap:
    """A packet that did not arrive in time: conceal `samples` of audio here.

    The timestamp is extrapolated from the next packet that did arrive.
    """

    index: int
    sequence_number: int
    timestamp: int
    samples: int
    playout_time: float


JitterItem = Frame | Gap


@dataclass(slots=True)
class _Entry:
    packet: RtpPacket
    ext_ts: int
    playout_time: float


class JitterBuffer:
    """Reorders, de-duplicates and paces one RTP stream (see the module docstring).

    Counters: `received` (every push), `played` (frames out), `lost` (gaps
    out), `late` (arrived after their slot was given up), `duplicate`,
    `reordered` (accepted, but behind a later packet) and `discarded`
    (dropped by a resynchronisation or an unconfirmed sequence jump).
    Every push ends as exactly one of played, late, duplicate, discarded, or
    still buffered (`len(buffer)`).
    """

    def __init__(
        self,
        *,
        clock_rate: int = 8000,
        ptime_ms: int = 20,
        min_delay_ms: float = 20.0,
        max_delay_ms: float = 200.0,
    ) -> None:
        if not 0 <= min_delay_ms <= max_delay_ms:
            raise ValueError("need 0 <= min_delay_ms <= max_delay_ms")
        self.clock_rate = clock_rate
        self.min_delay = min_delay_ms / 1000
        self.max_delay = max_delay_ms / 1000
        self._default_samples = clock_rate * ptime_ms // 1000
        self.received = 0
        self.played = 0
        self.lost = 0
        self.late = 0
        self.duplicate = 0
        self.reordered = 0
        self.discarded = 0
        self.resyncs = 0
        self.jitter = 0.0  # seconds, RFC 3550 A.8 estimator
        self._reset(None)

    def _reset(self, ssrc: int | None) -> None:
        self._ssrc = ssrc
        self._entries: dict[int, _Entry] = {}
        self._heap: list[int] = []
        self._next_index: int | None = None  # next extended sequence number to play
        self._start_index: int | None = None  # first slot played or given up since the reset
        self._highest: int | None = None
        self._gaps: set[int] = set()  # slots given up, within the jump window
        self._bad_seq: int | None = None
        self._ts_ref: tuple[int, int] | None = None  # (raw, extended) timestamp anchor
        self._anchor: float | None = None  # lowest recent transit, seconds
        self._last_transit: float | None = None
        self._last_arrival = 0.0
        self._floor = self.min_delay
        self._samples = self._default_samples

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def target_delay(self) -> float:
        """Current target buffering delay in seconds."""
        wanted = max(self._floor, _JITTER_FACTOR * self.jitter)
        return min(self.max_delay, max(self.min_delay, wanted))

    @property
    def target_delay_ms(self) -> float:
        return self.target_delay * 1000

    # -- input ---------------------------------------------------------------

    def push(self, packet: RtpPacket, *, now: float) -> None:
        """Accept a packet that arrived at `now`."""
        self.received += 1
        if packet.ssrc != self._ssrc:
            self._resync(packet.ssrc)
        if self._highest is None:
            index = packet.sequence_number
        else:
            index = self._highest + seq_diff(packet.sequence_number, self._highest)
            if not self._plausible(index):
                # A.1-style: a big jump is real only if the next packet follows it.
                if packet.sequence_number != self._bad_seq:
                    self._bad_seq = (packet.sequence_number + 1) & 0xFFFF
                    self.discarded += 1
                    return
                self._resync(packet.ssrc)
                index = packet.sequence_number
        self._bad_seq = None

        if index in self._entries or (self._next_index is not None and index < self._next_index):
            start = self._start_index
            if index in self._entries or (
                start is not None and index >= start and index not in self._gaps
            ):
                self.duplicate += 1
                return
            if start is not None:
                # Its slot was given up (a gap went out) or it precedes the stream.
                self.late += 1
                self._floor = min(self.max_delay, self._floor + self._samples / self.clock_rate)
                return
            # Nothing has been played yet: an earlier packet may still lead the stream.
            self._next_index = index
        if self._highest is not None and index < self._highest:
            self.reordered += 1
        if self._highest is None or index > self._highest:
            self._highest = index
        if self._next_index is None:
            self._next_index = index

        ext_ts = self._extend_timestamp(packet.timestamp, index)
        playout = self._schedule(ext_ts, now)
        self._entries[index] = _Entry(packet, ext_ts, playout)
        heapq.heappush(self._heap, index)

    def _plausible(self, index: int) -> bool:
        assert self._highest is not None
        if index - self._highest > _MAX_JUMP:
            return False
        floor = self._next_index if self._next_index is not None else self._highest
        return index >= floor - _MAX_JUMP

    def _resync(self, ssrc: int) -> None:
        self.discarded += len(self._entries)
        self.resyncs += self._ssrc is not None
        self._reset(ssrc)

    def _extend_timestamp(self, ts: int, index: int) -> int:
        if self._ts_ref is None:
            ext = ts
        else:
            raw, ref = self._ts_ref
            ext = ref + ts_diff(ts, raw)
        if self._ts_ref is None or index == self._highest:
            self._ts_ref = (ts, ext)
        return ext

    def _schedule(self, ext_ts: int, now: float) -> float:
        transit = now - ext_ts / self.clock_rate
        if self._anchor is None or abs(transit - self._anchor) > _TIMESTAMP_JUMP_S:
            # First packet, or a timestamp jump: start timing afresh.
            self.resyncs += self._anchor is not None
            self._anchor = transit
            self._last_transit = None
        else:
            drifted = self._anchor + _ANCHOR_DRIFT * max(0.0, now - self._last_arrival)
            self._anchor = min(drifted, transit)
        if self._last_transit is not None:
            self.jitter += (abs(transit - self._last_transit) - self.jitter) / 16
        self._last_transit = transit
        self._last_arrival = now
        self._floor = self.min_delay + (self._floor - self.min_delay) * _FLOOR_DECAY
        return ext_ts / self.clock_rate + self._anchor + self.target_delay

    # -- output --------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When `pop` will next have something to return, or None if empty."""
        if not self._heap:
            return None
        first = self._heap[0]
        assert self._next_index is not None
        if first > self._next_index:
            return self._gap_time(self._next_index, first)
        return self._entries[first].playout_time

    def pop(self, *, now: float) -> list[JitterItem]:
        """Frames and gaps whose playout time is at or before `now`, in order."""
        return self._drain(now)

    def flush(self) -> list[JitterItem]:
        """Everything still buffered, with gaps, regardless of time (end of stream)."""
        return self._drain(None)

    def _drain(self, now: float | None) -> list[JitterItem]:
        out: list[JitterItem] = []
        while self._heap:
            first = self._heap[0]
            assert self._next_index is not None
            entry = self._entries[first]
            while self._next_index < first:
                at = self._gap_time(self._next_index, first)
                if now is not None and at > now:
                    return out
                out.append(self._gap(self._next_index, first))
            if now is not None and entry.playout_time > now:
                return out
            heapq.heappop(self._heap)
            del self._entries[first]
            p = entry.packet
            out.append(
                Frame(
                    first,
                    p.sequence_number,
                    p.timestamp,
                    p.payload_type,
                    p.marker,
                    p.payload,
                    entry.playout_time,
                )
            )
            self.played += 1
            self._mark_started(first)
            self._learn_frame_size(first, entry)
            self._next_index = first + 1
            self._forget_old_gaps()
        return out

    def _gap_time(self, index: int, following: int) -> float:
        entry = self._entries[following]
        return entry.playout_time - (following - index) * self._samples / self.clock_rate

    def _gap(self, index: int, following: int) -> Gap:
        entry = self._entries[following]
        ts = (entry.ext_ts - (following - index) * self._samples) & 0xFFFFFFFF
        self.lost += 1
        self._mark_started(index)
        self._gaps.add(index)
        self._next_index = index + 1
        return Gap(index, index & 0xFFFF, ts, self._samples, self._gap_time(index, following))

    def _mark_started(self, index: int) -> None:
        if self._start_index is None:
            self._start_index = index

    def _learn_frame_size(self, index: int, entry: _Entry) -> None:
        # The packet after this one tells how many samples a packet carries.
        after = self._entries.get(index + 1)
        if after is not None and 0 < after.ext_ts - entry.ext_ts <= self.clock_rate:
            self._samples = after.ext_ts - entry.ext_ts

    def _forget_old_gaps(self) -> None:
        if len(self._gaps) > 2 * _MAX_JUMP:
            assert self._next_index is not None
            horizon = self._next_index - _MAX_JUMP
            self._gaps = {g for g in self._gaps if g >= horizon}
