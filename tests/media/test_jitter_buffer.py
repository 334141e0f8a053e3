"""The adaptive jitter buffer: ordering, loss, lateness, resynchronisation, adaptation."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.media.jitter import Frame, Gap, JitterBuffer, JitterItem
from sipline.media.rtp import RtpPacket

PTIME = 0.02


def packet(i: int, *, seq0: int = 1000, ts0: int = 50_000, ssrc: int = 1) -> RtpPacket:
    """The i-th packet of a 20 ms PCMU stream."""
    return RtpPacket(
        payload_type=0,
        sequence_number=(seq0 + i) & 0xFFFF,
        timestamp=(ts0 + 160 * i) & 0xFFFFFFFF,
        ssrc=ssrc,
        payload=bytes([i & 0xFF]) * 160,
        marker=i == 0,
    )


def indices(items: list[JitterItem]) -> list[tuple[str, int]]:
    return [("F" if isinstance(x, Frame) else "G", x.index) for x in items]


def test_steady_stream_plays_each_frame_once_after_the_target_delay() -> None:
    jb = JitterBuffer()
    out: list[JitterItem] = []
    for i in range(50):
        now = i * PTIME
        jb.push(packet(i), now=now)
        out += jb.pop(now=now)
    out += jb.pop(now=10.0)
    assert [x.index for x in out] == [1000 + i for i in range(50)]
    assert all(isinstance(x, Frame) for x in out)
    assert jb.target_delay_ms == pytest.approx(20.0)
    assert out[0].playout_time == pytest.approx(0.020)
    assert (jb.played, jb.lost, jb.late, jb.duplicate, jb.reordered) == (50, 0, 0, 0, 0)
    frame = out[3]
    assert isinstance(frame, Frame)
    assert (frame.sequence_number, frame.timestamp, frame.payload_type) == (1003, 50_480, 0)
    assert frame.payload == b"\x03" * 160


def test_nothing_before_playout_time() -> None:
    jb = JitterBuffer(min_delay_ms=40)
    jb.push(packet(0), now=0.0)
    assert jb.pop(now=0.039) == []
    assert jb.next_deadline() == pytest.approx(0.040)
    assert indices(jb.pop(now=0.040)) == [("F", 1000)]
    assert jb.next_deadline() is None
    assert len(jb) == 0


def test_reordering_is_undone() -> None:
    jb = JitterBuffer(min_delay_ms=60)
    for i, at in ((0, 0.0), (2, 0.04), (1, 0.05), (3, 0.06)):
        jb.push(packet(i), now=at)
    assert indices(jb.pop(now=1.0)) == [("F", 1000 + i) for i in range(4)]
    assert jb.reordered == 1


def test_duplicates_are_dropped_and_counted() -> None:
    jb = JitterBuffer()
    jb.push(packet(0), now=0.0)
    jb.push(packet(0), now=0.001)  # while buffered
    jb.pop(now=0.1)
    jb.push(packet(0), now=0.2)  # after playing
    jb.push(packet(1), now=0.2)
    assert indices(jb.pop(now=1.0)) == [("F", 1001)]
    assert jb.duplicate == 2


def test_loss_yields_a_gap_at_the_missing_slot_time() -> None:
    jb = JitterBuffer()
    jb.push(packet(0), now=0.0)
    jb.push(packet(1), now=0.02)
    jb.push(packet(3), now=0.06)
    assert indices(jb.pop(now=0.045)) == [("F", 1000), ("F", 1001)]
    # Slot 2 would have played at 0.06; packet 3 at 0.08.
    assert jb.next_deadline() == pytest.approx(0.06)
    out = jb.pop(now=0.06)
    assert indices(out) == [("G", 1002)]
    gap = out[0]
    assert isinstance(gap, Gap)
    assert (gap.sequence_number, gap.timestamp, gap.samples) == (1002, 50_320, 160)
    assert gap.playout_time == pytest.approx(0.06)
    assert indices(jb.pop(now=0.08)) == [("F", 1003)]
    assert jb.lost == 1


def test_late_packet_is_dropped_and_raises_the_delay() -> None:
    jb = JitterBuffer()
    for i in (0, 1, 3):
        jb.push(packet(i), now=i * PTIME)
    jb.pop(now=0.1)
    before = jb.target_delay
    jb.push(packet(2), now=0.1)
    assert jb.late == 1
    assert jb.target_delay > before
    assert jb.pop(now=1.0) == []
    assert (jb.played, jb.lost, jb.received) == (3, 1, 4)


def test_packet_older_than_the_stream_start_is_late() -> None:
    jb = JitterBuffer()
    jb.push(packet(5), now=0.0)
    jb.pop(now=0.1)
    jb.push(packet(4), now=0.1)
    assert (jb.late, jb.duplicate) == (1, 0)


def test_earlier_packet_before_playback_leads_the_stream() -> None:
    jb = JitterBuffer()
    jb.push(packet(1), now=0.0)
    jb.push(packet(0), now=0.005)
    assert indices(jb.pop(now=1.0)) == [("F", 1000), ("F", 1001)]


def test_sequence_wrap_around() -> None:
    jb = JitterBuffer()
    for i in range(6):
        jb.push(packet(i, seq0=65533, ts0=0xFFFFFF00), now=i * PTIME)
    out = jb.pop(now=1.0)
    assert [x.index for x in out] == [65533 + i for i in range(6)]
    assert [x.sequence_number for x in out] == [65533, 65534, 65535, 0, 1, 2]
    assert [x.timestamp for x in out][-1] == (0xFFFFFF00 + 5 * 160) & 0xFFFFFFFF


def test_ssrc_change_resynchronises() -> None:
    jb = JitterBuffer()
    jb.push(packet(0), now=0.0)
    jb.pop(now=0.1)
    jb.push(packet(1), now=0.11)  # still buffered when the source changes
    jb.push(packet(0, seq0=7, ts0=0, ssrc=2), now=0.12)
    jb.push(packet(1, seq0=7, ts0=0, ssrc=2), now=0.14)
    out = jb.pop(now=1.0)
    assert indices(out) == [("F", 7), ("F", 8)]
    assert (jb.discarded, jb.resyncs) == (1, 1)


def test_sequence_jump_is_believed_when_confirmed() -> None:
    jb = JitterBuffer()
    for i in range(3):
        jb.push(packet(i), now=i * PTIME)
    jb.pop(now=0.1)
    jb.push(packet(0, seq0=30_000), now=0.1)
    assert jb.discarded == 1
    jb.push(packet(1, seq0=30_000), now=0.12)
    jb.push(packet(2, seq0=30_000), now=0.14)
    out = jb.pop(now=1.0)
    assert indices(out) == [("F", 30_001), ("F", 30_002)]
    # A lone stray is discarded and the stream carries on.
    jb.push(packet(0, seq0=5), now=1.0)
    jb.push(packet(3, seq0=30_000), now=1.0)
    assert indices(jb.pop(now=2.0)) == [("F", 30_003)]
    assert jb.discarded == 2


def test_timestamp_jump_does_not_stall_playout() -> None:
    jb = JitterBuffer()
    out: list[JitterItem] = []
    for i in range(10):
        now = i * PTIME
        ts0 = 50_000 if i < 5 else 50_000 + 8000 * 30  # 30 s jump forward
        jb.push(packet(i, ts0=ts0), now=now)
        out += jb.pop(now=now)
    out += jb.pop(now=10 * PTIME + 0.02)
    assert [x.index for x in out] == [1000 + i for i in range(10)]
    assert jb.resyncs == 1
    # And backwards: the buffer re-anchors instead of waiting 30 s.
    for i in range(10, 15):
        jb.push(packet(i, ts0=50_000 - 8000 * 30), now=i * PTIME)
    assert len(jb.pop(now=16 * PTIME)) == 5


def test_target_delay_adapts_within_bounds() -> None:
    rng = random.Random(3)
    jb = JitterBuffer(min_delay_ms=20, max_delay_ms=200)
    for i in range(500):
        jb.push(packet(i), now=i * PTIME + rng.uniform(0, 0.06))
    noisy = jb.target_delay_ms
    assert 60 < noisy <= 200
    for i in range(500, 1500):
        jb.push(packet(i), now=i * PTIME + 0.001)
    assert jb.target_delay_ms < noisy / 2
    wild = JitterBuffer(min_delay_ms=20, max_delay_ms=200)
    for i in range(200):
        wild.push(packet(i), now=i * PTIME + rng.uniform(0, 0.9))
    assert wild.target_delay_ms == pytest.approx(200)


def test_flush_returns_everything_with_gaps() -> None:
    jb = JitterBuffer()
    for i in (0, 2, 5):
        jb.push(packet(i), now=0.0)
    assert [k for k, _ in indices(jb.flush())] == ["F", "G", "F", "G", "G", "F"]
    assert jb.flush() == []


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError, match="min_delay_ms"):
        JitterBuffer(min_delay_ms=300, max_delay_ms=200)


@given(
    seq0=st.integers(0, 0xFFFF),
    copies=st.lists(st.integers(0, 3), min_size=1, max_size=60),
    data=st.data(),
)
def test_any_permutation_duplication_or_loss(
    seq0: int, copies: list[int], data: st.DataObject
) -> None:
    sent = [i for i, c in enumerate(copies) for _ in range(c)]
    order = data.draw(st.permutations(sent))
    arrivals = sorted(
        data.draw(st.lists(st.floats(0, 3), min_size=len(order), max_size=len(order)))
    )
    pops = data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    jb = JitterBuffer()
    out: list[JitterItem] = []
    for i, at, pop in zip(order, arrivals, pops, strict=True):
        jb.push(packet(i, seq0=seq0), now=at)
        if pop:
            out += jb.pop(now=at)
    out += jb.flush()

    got = [x.index for x in out]
    assert got == sorted(set(got)), "in order, each sequence number at most once"
    frames = [x for x in out if isinstance(x, Frame)]
    gaps = [x for x in out if isinstance(x, Gap)]
    if got:
        assert got == list(range(got[0], got[-1] + 1)), "gaps fill every hole"
    pushed = set(order)
    assert {(f.sequence_number - seq0) & 0xFFFF for f in frames} <= pushed
    assert all(f.payload == packet((f.sequence_number - seq0) & 0xFFFF).payload for f in frames)
    if frames:
        # Extended index of packet i, whatever 16-bit wrap the stream started at.
        shift = frames[0].index - ((frames[0].sequence_number - seq0) & 0xFFFF)
        # Every distinct packet came out, or its slot was a gap, or it preceded the start.
        assert all(i + shift in got or i + shift < got[0] for i in pushed)
    assert len(jb) == 0
    assert jb.received == len(order)
    assert jb.received == jb.played + jb.late + jb.duplicate + jb.discarded
    assert (jb.played, jb.lost) == (len(frames), len(gaps))
    assert jb.duplicate + jb.late >= len(order) - len(pushed)
    assert jb.discarded == 0


def test_silence_suppression_resumes_without_gaps_or_resync() -> None:
    jb = JitterBuffer()
    out: list[JitterItem] = []
    # Two packets, two seconds of silence (timestamps move on), then talk again.
    for i, at in ((0, 0.0), (1, 0.02), (101, 2.02), (102, 2.04)):
        p = packet(i)
        p.sequence_number = 1000 + (i if i < 2 else i - 99)
        jb.push(p, now=at)
        out += jb.pop(now=at)
    out += jb.pop(now=3.0)
    assert indices(out) == [("F", 1000), ("F", 1001), ("F", 1002), ("F", 1003)]
    assert out[2].playout_time == pytest.approx(2.04)
    assert jb.resyncs == 0


def test_long_lossy_stream_keeps_bounded_gap_memory() -> None:
    jb = JitterBuffer()
    for i in range(0, 14_000, 2):
        jb.push(packet(i), now=i * PTIME)
        jb.pop(now=i * PTIME)
    assert jb.lost >= 6_000
    # A packet whose gap is still remembered is late, not a duplicate.
    jb.push(packet(13_997), now=14_000 * PTIME)
    assert (jb.late, jb.duplicate) == (1, 0)
