"""One audio stream as SDP decided it, and the snapshot of its counters (sans-I/O).

`StreamConfig` is what an offer/answer exchange hands a media session; `MediaStats`
is what the session reports back: the RFC 3550 A.3/A.8 counters, the peer's view of
our stream from its RTCP report blocks, and an E-model MOS (`media_stats` builds it
from the RTCP reporter and the jitter buffer).
"""

from __future__ import annotations

from dataclasses import dataclass

from sipline.media.jitter import JitterBuffer
from sipline.media.reporting import RtcpReporter
from sipline.media.srtp import SrtpContext
from sipline.media.stats import estimate_mos

__all__ = ["Address", "MediaStats", "StreamConfig", "media_stats"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True, eq=False)
class StreamConfig:
    """What an SDP exchange decided for one audio stream, as the session needs it.

    `remote_rtp`/`remote_rtcp` are where to send (None: not yet known; RTCP defaults
    to the RTP port + 1); `codec` names a registered codec; `send`/`receive` follow
    the negotiated direction.
    """

    remote_rtp: Address | None
    payload_type: int = 0
    codec: str = "PCMU"
    remote_rtcp: Address | None = None
    ptime_ms: int = 20
    dtmf_payload_type: int | None = None
    send: bool = True
    receive: bool = True
    srtp: SrtpContext | None = None


@dataclass(frozen=True, slots=True)
class MediaStats:
    """A snapshot of a session's counters (RFC 3550 A.3, A.8) and an E-model MOS."""

    codec: str
    packets_sent: int
    octets_sent: int
    packets_received: int
    packets_lost: int
    loss_percent: float
    jitter_ms: float
    late: int
    duplicates: int
    send_late: int
    skipped: int
    remote_packets_lost: int | None
    remote_loss_percent: float | None
    remote_jitter_ms: float | None
    rtt_ms: float | None
    jitter_buffer_ms: float
    mos: float

    def summary(self) -> str:
        parts = [
            f"sent {self.packets_sent}",
            f"received {self.packets_received}",
            f"lost {self.packets_lost} ({self.loss_percent:.1f}%)",
            f"jitter {self.jitter_ms:.1f} ms",
            f"MOS {self.mos:.2f}",
        ]
        if self.rtt_ms is not None:
            parts.append(f"RTT {self.rtt_ms:.1f} ms")
        return ", ".join(parts)


def media_stats(
    reporter: RtcpReporter,
    jitter: JitterBuffer,
    *,
    codec: str,
    ptime_ms: int,
    send_late: int,
    skipped: int,
) -> MediaStats:
    """The snapshot of one stream: our counters, the peer's report and the MOS."""
    remote = reporter.remote
    rtt_ms = reporter.rtt * 1000 if reporter.rtt is not None else None
    mos = estimate_mos(
        loss_percent=reporter.loss_percent,
        jitter_ms=reporter.jitter_ms,
        network_delay_ms=(rtt_ms or 0.0) / 2,
        jitter_buffer_ms=jitter.target_delay_ms,
        ptime_ms=ptime_ms,
    )
    return MediaStats(
        codec=codec,
        packets_sent=reporter.sender.packets_sent,
        octets_sent=reporter.sender.octets_sent,
        packets_received=reporter.packets,
        packets_lost=reporter.lost,
        loss_percent=reporter.loss_percent,
        jitter_ms=reporter.jitter_ms,
        late=jitter.late,
        duplicates=jitter.duplicate,
        send_late=send_late,
        skipped=skipped,
        remote_packets_lost=remote.packets_lost if remote is not None else None,
        remote_loss_percent=100.0 * remote.fraction_lost / 256 if remote is not None else None,
        remote_jitter_ms=1000.0 * remote.jitter / reporter.clock_rate
        if remote is not None
        else None,
        rtt_ms=rtt_ms,
        jitter_buffer_ms=jitter.target_delay_ms,
        mos=mos,
    )
