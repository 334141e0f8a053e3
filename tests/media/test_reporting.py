"""RtcpReporter with explicit times: scheduling (RFC 3550 §6.2, §6.3.1), SR versus RR,
report blocks about the peer, RTT from its blocks, SSRC changes and BYE."""

from __future__ import annotations

from sipline.media.reporting import RtcpReporter
from sipline.media.rtcp import (
    RtcpByePacket,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSdesPacket,
    RtcpSenderReport,
    dlsr_from_seconds,
    ntp_from_unix,
    ntp_middle,
)
from sipline.testing import SeededEntropy

WALL = 1_790_000_000.0


def _reporter() -> RtcpReporter:
    return RtcpReporter(ssrc=0x1111, clock_rate=8000, cname="me@test", entropy=SeededEntropy(5))


def test_first_report_after_half_an_interval_then_randomised_full_ones() -> None:
    rep = _reporter()
    first = rep.next_report(now=100.0)
    # Half of 5 s, times [0.5, 1.5], divided by e - 3/2 (§6.3.1).
    assert 100 + 2.5 * 0.5 / 1.21828 <= first <= 100 + 2.5 * 1.5 / 1.21828
    assert rep.next_report(now=101.0) == first  # asking again does not reschedule
    rep.report(now=first, wall=WALL)
    second = rep.next_report(now=first)
    assert first + 5 * 0.5 / 1.21828 <= second <= first + 5 * 1.5 / 1.21828


def test_receiver_report_until_we_send_then_sender_reports() -> None:
    rep = _reporter()
    (rr, sdes) = rep.report(now=1.0, wall=WALL)
    assert isinstance(rr, RtcpReceiverReport) and rr.reports == []
    assert isinstance(sdes, RtcpSdesPacket) and sdes.chunks[0].cname == "me@test"
    rep.on_sent(160, 1000, now=1.0)
    sr = rep.report(now=1.02, wall=WALL)[0]
    assert isinstance(sr, RtcpSenderReport)
    assert sr.packet_count == 1 and sr.octet_count == 160
    assert sr.rtp_timestamp == 1000 + 160  # extrapolated 20 ms on (§6.4.1)
    packets = rep.report(now=1.04, wall=WALL, bye=True)
    assert isinstance(packets[-1], RtcpByePacket) and packets[-1].sources == [0x1111]


def test_report_blocks_describe_the_peer_with_loss() -> None:
    rep = _reporter()
    for seq in range(100):
        if seq % 10 != 5:  # every tenth packet lost
            rep.on_rtp(0x2222, seq, seq * 160, now=seq * 0.02)
    assert rep.packets == 90
    assert rep.lost == 10 and abs(rep.loss_percent - 10.1) < 0.2
    rr = rep.report(now=2.0, wall=WALL)[0]
    assert isinstance(rr, RtcpReceiverReport)
    (block,) = rr.reports
    assert block.ssrc == 0x2222 and block.packets_lost == 10
    assert block.fraction_lost == (10 << 8) // 99


def test_rtt_from_the_peers_block_about_us() -> None:
    rep = _reporter()
    sent_sr_at = WALL
    lsr = ntp_middle(ntp_from_unix(sent_sr_at))
    block = RtcpReportBlock(0x1111, 12, 3, 500, 40, lsr, dlsr_from_seconds(0.25))
    other = RtcpReportBlock(0x9999, 200, 50, 0, 0, 0, 0)  # about someone else: ignored
    left = rep.on_rtcp([RtcpReceiverReport(0x2222, [other, block])], now=5.0, wall=WALL + 0.3)
    assert not left
    assert (
        rep.remote is not None and rep.remote.packets_lost == 3 and rep.remote.fraction_lost == 12
    )
    assert rep.rtt is not None and abs(rep.rtt - 0.05) < 0.001


def test_sender_report_from_the_peer_feeds_our_lsr() -> None:
    rep = _reporter()
    rep.on_rtp(0x2222, 1, 160, now=0.0)
    rep.on_rtp(0x2222, 2, 320, now=0.02)
    ntp = ntp_from_unix(WALL)
    rep.on_rtcp([RtcpSenderReport(0x2222, ntp, 320, 2, 320)], now=1.0, wall=WALL)
    rr = rep.report(now=1.5, wall=WALL + 0.5)[0]
    assert isinstance(rr, RtcpReceiverReport)
    assert rr.reports[0].lsr == ntp_middle(ntp)
    assert rr.reports[0].dlsr == dlsr_from_seconds(0.5)


def test_a_new_remote_ssrc_keeps_the_totals_and_bye_is_noticed() -> None:
    rep = _reporter()
    for seq in (1, 2, 3, 5):
        rep.on_rtp(0x2222, seq, seq * 160, now=seq * 0.02)
    assert rep.lost == 1
    for seq in (900, 901, 902):
        rep.on_rtp(0x3333, seq, seq * 160, now=1 + seq * 0.001)
    assert rep.packets == 7 and rep.lost == 1 and rep.validated == 3 + 2
    assert not rep.on_rtcp([RtcpByePacket([0x2222])], now=2.0, wall=WALL)
    assert rep.on_rtcp([RtcpByePacket([0x3333])], now=2.0, wall=WALL) and rep.bye
    assert rep.jitter_ms >= 0.0
