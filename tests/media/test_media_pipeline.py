"""The pure media path end to end: sweep -> PCMU -> RTP -> lossy network -> jitter buffer
-> decoder with concealment -> correlation, with receiver statistics and RTCP alongside."""

from __future__ import annotations

import random

import numpy as np

from sipline.media.audio import ArraySink, ArraySource, cross_correlate, to_int16
from sipline.media.codecs import codec_by_name
from sipline.media.jitter import Frame, JitterBuffer
from sipline.media.rtcp import RtcpReceiverReport, parse_compound
from sipline.media.rtp import RtpPacket, RtpSender
from sipline.media.stats import ReceiverStats, SenderStats, estimate_mos
from sipline.testing import SeededEntropy


def test_sweep_survives_jitter_and_loss() -> None:
    info = codec_by_name("PCMU")
    assert info is not None
    encoder, decoder = info.make_encoder(), info.make_decoder()
    sender = RtpSender(payload_type=0, entropy=SeededEntropy(11))
    sender_stats = SenderStats(sender.ssrc, 8000)
    # A sweep, not a steady tone: a periodic signal correlates at many lags.
    t = np.arange(250 * 160) / 8000
    sweep = to_int16(12000 * np.sin(2 * np.pi * (300 * t + 270 * t * t)))
    source = ArraySource(sweep)
    rng = random.Random(5)

    played = []
    in_flight: list[tuple[float, bytes]] = []
    for i in range(250):
        now = i * 0.02
        pcm = source.read_frame()
        assert pcm is not None
        played.append(pcm)
        packet = sender.send(encoder.encode(pcm))
        sender_stats.record(len(packet.payload), packet.timestamp, now=now)
        if rng.random() < 0.03:
            continue  # lost
        in_flight.append((now + 0.03 + rng.uniform(0, 0.04), packet.serialize()))
    in_flight.sort()

    jb = JitterBuffer()
    stats = ReceiverStats(ssrc=sender.ssrc, clock_rate=8000)
    sink = ArraySink()
    for arrival, wire in in_flight:
        packet = RtpPacket.parse(wire)
        stats.update(packet.sequence_number, packet.timestamp, now=arrival)
        jb.push(packet, now=arrival)
        for item in jb.pop(now=arrival):
            if isinstance(item, Frame):
                sink.write_frame(decoder.decode(item.payload))
            else:
                sink.write_frame(decoder.conceal(item.samples))
    for item in jb.flush():
        sink.write_frame(
            decoder.decode(item.payload) if isinstance(item, Frame) else decoder.conceal(160)
        )

    reference = np.concatenate(played)
    recorded = sink.samples()
    result = cross_correlate(reference, recorded)
    assert abs(result.lag) < 160  # only a lost first packet could shift it
    assert result.peak > 0.9
    assert jb.played + jb.lost == len(recorded) // 160

    block = stats.report_block(now=5.1)
    # Late packets were received (statistics) but concealed (jitter buffer).
    assert block.packets_lost == stats.lost == jb.lost - jb.late
    report = RtcpReceiverReport(ssrc=1234, reports=[block])
    (parsed,) = parse_compound(report.serialize())
    assert parsed == report
    mos = estimate_mos(loss_percent=100 * block.fraction_lost / 256, jitter_ms=stats.jitter_ms)
    assert 3.5 < mos < 4.5
    assert sender_stats.sender_report(now=5.0, wall=1.8e9).packet_count == 250
