"""RTP reception and sending statistics (RFC 3550 Appendix A) and an estimated MOS.

`ReceiverStats` follows A.1 (sequence validation with probation, cycles), A.3
(expected, lost, fraction lost per interval) and A.8 (interarrival jitter);
arrival times come in as `now`. `SenderStats` counts what we sent and builds
the sender info of an SR. `estimate_mos` is a simplified ITU-T G.107 E-model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipline.media.rtcp import (
    RtcpReportBlock,
    RtcpSenderReport,
    dlsr_from_seconds,
    ntp_from_unix,
    ntp_middle,
)
from sipline.media.rtp import ts_add

__all__ = [
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "ReceiverStats",
    "SenderStats",
    "estimate_mos",
    "mos_from_r",
    "r_factor",
]

# RFC 3550 A.1 suggested values.
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2
_SEQ_MOD = 1 << 16


@dataclass(slots=True)
class ReceiverStats:
    """What we know about one remote source, per RFC 3550 A.1, A.3 and A.8.

    Feed every packet of the source to `update` with its arrival time `now`
    (seconds, any monotonic origin). Packets are counted only once the source
    has been validated by `MIN_SEQUENTIAL` packets in sequence.
    """

    ssrc: int
    clock_rate: int
    max_seq: int = 0
    cycles: int = 0
    base_seq: int = 0
    bad_seq: int = _SEQ_MOD + 1
    probation: int = MIN_SEQUENTIAL
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    jitter: float = 0.0
    _transit: float | None = field(default=None, repr=False)
    _started: bool = field(default=False, repr=False)
    _lsr: int = field(default=0, repr=False)
    _sr_received_at: float | None = field(default=None, repr=False)

    def update(self, sequence_number: int, timestamp: int, *, now: float) -> bool:
        """Account for one packet; False if it is not (yet) valid (A.1 `update_seq`)."""
        seq = sequence_number
        if not self._started:
            # A.1: a new source starts on probation, as if `seq - 1` had been seen.
            self._started = True
            self._init_seq(seq)
            self.max_seq = (seq - 1) % _SEQ_MOD
            self.probation = MIN_SEQUENTIAL
        udelta = (seq - self.max_seq) % _SEQ_MOD
        if self.probation:
            if seq == (self.max_seq + 1) % _SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    return self._count(timestamp, now)
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            # In order, possibly with a permissible gap.
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD
            self.max_seq = seq
        elif udelta <= _SEQ_MOD - MAX_MISORDER:
            # A very large jump: believe it only when the next packet follows it,
            # which means the sender restarted its numbering.
            if seq != self.bad_seq:
                self.bad_seq = (seq + 1) % _SEQ_MOD
                return False
            self._init_seq(seq)
        # Otherwise a duplicate or reordered packet: counted, max_seq kept.
        return self._count(timestamp, now)

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def _count(self, timestamp: int, now: float) -> bool:
        self.received += 1
        # A.8: transit time in timestamp units; its origin cancels out in differences.
        arrival = now * self.clock_rate
        transit = arrival - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            # Timestamps wrap at 2**32: take the short way round.
            d = min(d, abs(d - (1 << 32)))
            self.jitter += (d - self.jitter) / 16
        self._transit = transit
        return True

    @property
    def extended_max_seq(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected since validation (A.3)."""
        if self.probation:
            return 0
        return self.extended_max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost; negative when duplicates outnumber losses (A.3)."""
        return self.expected - self.received

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000 / self.clock_rate

    def on_sender_report(self, ntp_timestamp: int, *, now: float) -> None:
        """Remember an SR from this source for the LSR/DLSR fields of our next report."""
        self._lsr = ntp_middle(ntp_timestamp)
        self._sr_received_at = now

    def report_block(self, *, now: float) -> RtcpReportBlock:
        """A report block for this source, starting a new reporting interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        # The field is 24-bit signed: clamp rather than wrap (§6.4.1).
        lost = max(-(1 << 23), min((1 << 23) - 1, self.lost))
        dlsr = 0
        if self._sr_received_at is not None:
            dlsr = dlsr_from_seconds(now - self._sr_received_at)
        return RtcpReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=lost,
            highest_sequence=self.extended_max_seq & 0xFFFFFFFF,
            jitter=min(int(self.jitter), 0xFFFFFFFF),
            lsr=self._lsr,
            dlsr=dlsr,
        )


@dataclass(slots=True)
class SenderStats:
    """Counters for one outgoing stream and the sender info of its SRs (§6.4.1)."""

    ssrc: int
    clock_rate: int
    packets_sent: int = 0
    octets_sent: int = 0
    _last_timestamp: int | None = field(default=None, repr=False)
    _last_sent_at: float = field(default=0.0, repr=False)

    def record(self, payload_size: int, timestamp: int, *, now: float) -> None:
        """Count one sent packet: `payload_size` excludes header and padding (§6.4.1)."""
        self.packets_sent += 1
        self.octets_sent += payload_size
        self._last_timestamp = timestamp
        self._last_sent_at = now

    def sender_report(
        self, *, now: float, wall: float, reports: list[RtcpReportBlock] | None = None
    ) -> RtcpSenderReport:
        """An SR whose RTP timestamp matches the NTP time `wall` (taken at monotonic `now`).

        §6.4.1: the RTP timestamp is extrapolated from the last packet sent,
        so it need not equal any packet's timestamp.
        """
        rtp_ts = 0
        if self._last_timestamp is not None:
            elapsed = round((now - self._last_sent_at) * self.clock_rate)
            rtp_ts = ts_add(self._last_timestamp, elapsed)
        return RtcpSenderReport(
            ssrc=self.ssrc,
            ntp_timestamp=ntp_from_unix(wall),
            rtp_timestamp=rtp_ts,
            packet_count=self.packets_sent & 0xFFFFFFFF,
            octet_count=self.octets_sent & 0xFFFFFFFF,
            reports=list(reports or []),
        )


# -- E-model (ITU-T G.107) ---------------------------------------------------

# G.107 default basic signal-to-noise ratio less simultaneous impairment (Ro - Is).
_R_DEFAULT = 93.2


def r_factor(
    *,
    loss_percent: float,
    one_way_delay_ms: float,
    ie: float = 0.0,
    bpl: float = 25.1,
    burst_r: float = 1.0,
) -> float:
    """The transmission rating R of ITU-T G.107 (06/2015), simplified.

    R = (Ro - Is) - Id - Ie,eff + A with the G.107 default parameters
    (Ro - Is = 93.2, A = 0), where:
    * Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)  (G.107 §7.6); for
      G.711, Ie = 0 and Bpl = 25.1 with packet loss concealment, 4.3 without
      (ITU-T G.113 Appendix I); BurstR = 1 for random loss;
    * Id is the widely used fit of G.107's delay impairment for echo-free
      connections, Id = 0.024 Ta + 0.11 (Ta - 177.3) H(Ta - 177.3), Ta the
      mouth-to-ear delay in ms (Cole and Rosenbluth, 2001).
    """
    ppl = max(0.0, min(100.0, loss_percent))
    ie_eff = ie + (95 - ie) * ppl / (ppl / burst_r + bpl)
    ta = max(0.0, one_way_delay_ms)
    i_d = 0.024 * ta + (0.11 * (ta - 177.3) if ta > 177.3 else 0.0)
    return _R_DEFAULT - i_d - ie_eff


def mos_from_r(r: float) -> float:
    """Estimated conversational MOS from R (ITU-T G.107 Annex B, formula B-4)."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def estimate_mos(
    *,
    loss_percent: float,
    jitter_ms: float,
    network_delay_ms: float = 0.0,
    jitter_buffer_ms: float | None = None,
    ptime_ms: float = 20.0,
    ie: float = 0.0,
    bpl: float = 25.1,
) -> float:
    """MOS from packet loss and jitter through the G.107 E-model (see `r_factor`).

    The mouth-to-ear delay adds the network delay, one packetisation interval
    and the jitter buffer, which when unknown is taken as twice the jitter
    (a buffer deep enough to absorb it). Defaults describe G.711 with PLC.
    """
    buffer_ms = 2 * jitter_ms if jitter_buffer_ms is None else jitter_buffer_ms
    delay = network_delay_ms + ptime_ms + buffer_ms
    return mos_from_r(r_factor(loss_percent=loss_percent, one_way_delay_ms=delay, ie=ie, bpl=bpl))
