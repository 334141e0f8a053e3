"""Receiver and sender statistics (RFC 3550 A.1, A.3, A.8) and the E-model MOS."""

from __future__ import annotations

import pytest

from sipline.media.rtcp import ntp_from_unix, ntp_middle
from sipline.media.stats import (
    ReceiverStats,
    SenderStats,
    estimate_mos,
    mos_from_r,
    r_factor,
)


def feed(stats: ReceiverStats, seqs: list[int], *, start_ts: int = 1000) -> list[bool]:
    """Packets every 20 ms, timestamps consistent with their sequence numbers."""
    out = []
    for i, seq in enumerate(seqs):
        offset = (seq - seqs[0]) % 65536
        out.append(stats.update(seq, start_ts + 160 * offset, now=i * 0.02))
    return out


def test_probation_then_counting() -> None:
    s = ReceiverStats(ssrc=1, clock_rate=8000)
    assert s.update(100, 0, now=0.0) is False  # on probation
    assert s.expected == 0
    assert s.update(101, 160, now=0.02) is True
    assert (s.base_seq, s.max_seq, s.received, s.expected, s.lost) == (101, 101, 1, 1, 0)


def test_probation_restarts_when_out_of_sequence() -> None:
    s = ReceiverStats(ssrc=1, clock_rate=8000)
    assert feed(s, [10, 20, 21, 22]) == [False, False, True, True]
    assert s.base_seq == 21
    assert s.received == 2


def test_loss_cycles_and_fraction() -> None:
    s = ReceiverStats(ssrc=7, clock_rate=8000)
    seqs = [65530 + i for i in range(6)] + [i for i in range(10) if i not in (3, 4)]
    seqs = [q % 65536 for q in seqs]
    assert all(feed(s, seqs)[1:])
    assert s.cycles == 65536
    assert s.extended_max_seq == 65536 + 9
    assert s.expected == 65536 + 9 - 65531 + 1
    assert s.lost == 2
    block = s.report_block(now=1.0)
    assert block.ssrc == 7
    assert block.packets_lost == 2
    assert block.fraction_lost == (2 << 8) // 15
    assert block.highest_sequence == 65536 + 9
    # A new interval with nothing lost reports fraction 0, cumulative still 2.
    for k in range(10, 20):
        s.update(k, 1000 + 160 * (k + 6), now=1.0 + k * 0.02)
    block = s.report_block(now=2.0)
    assert (block.fraction_lost, block.packets_lost) == (0, 2)


def test_duplicates_make_loss_negative_and_fraction_zero() -> None:
    s = ReceiverStats(ssrc=1, clock_rate=8000)
    feed(s, [1, 2, 3, 3, 3])
    assert s.lost == -2
    block = s.report_block(now=0.1)
    assert block.packets_lost == -2
    assert block.fraction_lost == 0


def test_reordered_packet_is_counted_without_moving_max() -> None:
    s = ReceiverStats(ssrc=1, clock_rate=8000)
    feed(s, [1, 2, 4, 5, 3])
    assert s.max_seq == 5
    assert s.lost == 0


def test_big_jump_needs_two_sequential_packets() -> None:
    s = ReceiverStats(ssrc=1, clock_rate=8000)
    feed(s, [1, 2, 3])
    assert s.update(20000, 0, now=1.0) is False
    assert s.max_seq == 3
    assert s.update(20001, 160, now=1.02) is True
    assert (s.base_seq, s.received, s.cycles) == (20001, 1, 0)
    # A single stray far packet is ignored, and the stream carries on.
    assert s.update(50000, 0, now=1.04) is False
    assert s.update(20002, 320, now=1.06) is True


def test_jitter_zero_for_steady_stream_and_grows_with_variation() -> None:
    s = ReceiverStats(ssrc=1, clock_rate=8000)
    feed(s, list(range(50)))
    assert s.jitter == pytest.approx(0.0, abs=1e-9)
    # One packet 10 ms late: |D| = 80 timestamp units, then back (another 80).
    s.update(50, 1000 + 160 * 50, now=50 * 0.02 + 0.010)
    assert s.jitter == pytest.approx(80 / 16)
    s.update(51, 1000 + 160 * 51, now=51 * 0.02)
    assert s.jitter == pytest.approx(80 / 16 + (80 - 80 / 16) / 16)
    assert s.jitter_ms == pytest.approx(s.jitter / 8)
    assert s.report_block(now=2.0).jitter == int(s.jitter)


def test_jitter_across_timestamp_wrap() -> None:
    s = ReceiverStats(ssrc=1, clock_rate=8000)
    for i in range(5):
        s.update(i, (0xFFFFFF00 + 160 * i) & 0xFFFFFFFF, now=i * 0.02)
    assert s.jitter == pytest.approx(0.0, abs=1e-6)


def test_lsr_and_dlsr() -> None:
    s = ReceiverStats(ssrc=1, clock_rate=8000)
    assert s.report_block(now=0.0).lsr == 0
    ntp = ntp_from_unix(1_790_000_000.0)
    s.on_sender_report(ntp, now=10.0)
    block = s.report_block(now=10.5)
    assert block.lsr == ntp_middle(ntp)
    assert block.dlsr == 0x8000


def test_sender_stats_and_report() -> None:
    s = SenderStats(ssrc=9, clock_rate=8000)
    empty = s.sender_report(now=0.0, wall=1_790_000_000.0)
    assert (empty.packet_count, empty.octet_count, empty.rtp_timestamp) == (0, 0, 0)
    s.record(160, 1000, now=1.0)
    s.record(160, 1160, now=1.02)
    sr = s.sender_report(now=1.07, wall=1_790_000_000.0)
    assert (sr.ssrc, sr.packet_count, sr.octet_count) == (9, 2, 320)
    assert sr.rtp_timestamp == 1160 + 400
    assert sr.ntp_timestamp == ntp_from_unix(1_790_000_000.0)
    assert sr.reports == []


def test_mos_formula() -> None:
    assert mos_from_r(-5) == 1.0
    assert mos_from_r(120) == 4.5
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.01)
    assert mos_from_r(50) == pytest.approx(2.58, abs=0.01)


def test_r_factor() -> None:
    assert r_factor(loss_percent=0, one_way_delay_ms=0) == pytest.approx(93.2)
    # G.711 with PLC at 1 % random loss: Ie,eff = 95 * 1 / (1 + 25.1).
    assert r_factor(loss_percent=1, one_way_delay_ms=0) == pytest.approx(93.2 - 95 / 26.1)
    # Beyond 177.3 ms the delay impairment steepens.
    assert r_factor(loss_percent=0, one_way_delay_ms=200) == pytest.approx(
        93.2 - 0.024 * 200 - 0.11 * (200 - 177.3)
    )


def test_estimate_mos_orders_conditions() -> None:
    clean = estimate_mos(loss_percent=0, jitter_ms=0)
    assert clean == pytest.approx(4.4, abs=0.05)
    lossy = estimate_mos(loss_percent=5, jitter_ms=20)
    terrible = estimate_mos(loss_percent=30, jitter_ms=100, network_delay_ms=300)
    assert clean > lossy > terrible >= 1.0
    assert estimate_mos(loss_percent=0, jitter_ms=50, jitter_buffer_ms=0) > estimate_mos(
        loss_percent=0, jitter_ms=50
    )
