"""The RTCP side of one RTP session (RFC 3550 §6), sans-I/O.

An `RtcpReporter` is told what was sent (`on_sent`) and received (`on_rtp`,
`on_rtcp`) with the time, and says when the next report is due (`next_report`)
and what it holds (`report`: an SR while we send, else an RR, with SDES CNAME).
It keeps the reception statistics across a change of remote SSRC, the peer's view
of our stream from its report blocks, and the round-trip time (§6.4.1).
Report intervals are randomised (§6.3.1) with an injected `Entropy`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipline.core.clock import Entropy
from sipline.media.rtcp import (
    RtcpByePacket,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpSdesPacket,
    RtcpSenderReport,
    round_trip_time,
)
from sipline.media.stats import ReceiverStats, SenderStats

__all__ = ["RemoteReport", "RtcpReporter"]

# §6.3.1: the randomised interval is divided by e - 3/2 to compensate for its bias.
_COMPENSATION = 2.71828 - 1.5


@dataclass(frozen=True, slots=True)
class RemoteReport:
    """What the peer said about our stream in its last report block."""

    fraction_lost: int  # 8-bit fixed point
    packets_lost: int
    jitter: int  # timestamp units


class RtcpReporter:
    """Counters and report scheduling for one local SSRC and its remote source."""

    def __init__(
        self, *, ssrc: int, clock_rate: int, cname: str, entropy: Entropy, interval_s: float = 5.0
    ) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.cname = cname
        self.interval_s = interval_s
        self._entropy = entropy
        self.sender = SenderStats(ssrc, clock_rate)
        self.receiver: ReceiverStats | None = None
        self.packets = 0  # every RTP packet accepted from the peer, validated or not
        self._validated_before = 0
        self._lost_before = 0
        self.remote: RemoteReport | None = None
        self.rtt: float | None = None
        self.bye = False
        self._next: float | None = None

    # -- input ------------------------------------------------------------------------
    def on_sent(self, payload_size: int, timestamp: int, *, now: float) -> None:
        self.sender.record(payload_size, timestamp, now=now)

    def on_rtp(self, ssrc: int, sequence_number: int, timestamp: int, *, now: float) -> None:
        """A packet from the peer; a new SSRC starts new statistics (§8.2), keeping totals."""
        stats = self.receiver
        if stats is None or stats.ssrc != ssrc:
            if stats is not None:
                self._validated_before += stats.received
                self._lost_before += max(0, stats.lost)
            stats = self.receiver = ReceiverStats(ssrc, self.clock_rate)
        stats.update(sequence_number, timestamp, now=now)
        self.packets += 1

    def on_rtcp(self, packets: list[RtcpPacket], *, now: float, wall: float) -> bool:
        """Account for a received compound packet; True when it says the peer left (BYE)."""
        left = False
        stats = self.receiver
        for packet in packets:
            if isinstance(packet, RtcpSenderReport | RtcpReceiverReport):
                if (
                    isinstance(packet, RtcpSenderReport)
                    and stats is not None
                    and packet.ssrc == stats.ssrc
                ):
                    stats.on_sender_report(packet.ntp_timestamp, now=now)
                for block in packet.reports:
                    if block.ssrc != self.ssrc:
                        continue
                    self.remote = RemoteReport(
                        block.fraction_lost, block.packets_lost, block.jitter
                    )
                    rtt = round_trip_time(arrival_wall=wall, lsr=block.lsr, dlsr=block.dlsr)
                    if rtt is not None:
                        self.rtt = rtt
            elif (
                isinstance(packet, RtcpByePacket)
                and stats is not None
                and stats.ssrc in packet.sources
            ):
                self.bye = left = True
        return left

    # -- scheduling -------------------------------------------------------------------
    def _interval(self, initial: bool) -> float:
        base = self.interval_s / 2 if initial else self.interval_s
        r = int.from_bytes(self._entropy.random_bytes(2), "big") / 65535
        return base * (0.5 + r) / _COMPENSATION

    def next_report(self, *, now: float) -> float:
        """When the next report is due; the first comes after half an interval (§6.2)."""
        if self._next is None:
            self._next = now + self._interval(initial=True)
        return self._next

    def report(self, *, now: float, wall: float, bye: bool = False) -> list[RtcpPacket]:
        """The compound packet to send now (§6.1), and the next one is scheduled."""
        self._next = now + self._interval(initial=False)
        stats = self.receiver
        blocks = [stats.report_block(now=now)] if stats is not None and stats.received else []
        first: RtcpPacket
        if self.sender.packets_sent:
            first = self.sender.sender_report(now=now, wall=wall, reports=blocks)
        else:
            first = RtcpReceiverReport(self.ssrc, blocks)
        packets: list[RtcpPacket] = [first, RtcpSdesPacket.with_cname(self.ssrc, self.cname)]
        if bye:
            packets.append(RtcpByePacket([self.ssrc]))
        return packets

    # -- totals -----------------------------------------------------------------------
    @property
    def validated(self) -> int:
        current = self.receiver.received if self.receiver is not None else 0
        return self._validated_before + current

    @property
    def lost(self) -> int:
        current = max(0, self.receiver.lost) if self.receiver is not None else 0
        return self._lost_before + current

    @property
    def loss_percent(self) -> float:
        expected = self.validated + self.lost
        return 100.0 * self.lost / expected if expected else 0.0

    @property
    def jitter_ms(self) -> float:
        return self.receiver.jitter_ms if self.receiver is not None else 0.0
