"""An RTP/RTCP media session on asyncio (RFC 3550, RFC 3551, RFC 4733, RFC 4961).

The I/O half of media: two UDP sockets (RTP on an even port, RTCP on the next one,
RFC 3550 §11, `sipline.media_io.sockets`) around the pure parts of `sipline.media`,
RTP numbering, the jitter buffer, the statistics, G.711 (or Opus), telephone-events
and RTCP.

Timing: sessions with the same packet time share one timer chain per media clock
(`sipline.media_io.pacing`), on a fixed grid (tick k at t0 + k * ptime: a late
wake-up never shifts it). Each tick sends the frames due (catching up after a stall,
skipping the timestamp past longer ones), plays out what the jitter buffer releases,
and sends RTCP when its randomised interval is up (§6.2). Symmetric RTP (RFC 4961):
we send wherever the peer's packets come from, whatever its SDP said.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable

from sipline.core.clock import Entropy
from sipline.media.audio import AudioSink, AudioSource, frame_samples, silence
from sipline.media.codecs.base import Decoder, Encoder, Pcm
from sipline.media.codecs.registry import codec_by_name
from sipline.media.dtmf import DtmfDialer, DtmfReceiver, DtmfSender
from sipline.media.jitter import Frame, JitterBuffer
from sipline.media.reporting import RtcpReporter
from sipline.media.rtcp import RtcpError, RtcpPacket, parse_compound, serialize_compound
from sipline.media.rtp import RtpError, RtpPacket, RtpSender, is_rtcp
from sipline.media.send_schedule import SendSchedule
from sipline.media.srtp import SrtpError
from sipline.media.stream import Address, MediaStats, StreamConfig, media_stats
from sipline.media_io.pacing import MediaClock, Pacer, loop_clock, pacer_for
from sipline.media_io.sockets import DEFAULT_PORT_RANGE, RtpSockets
from sipline.media_io.sources import SinkLike, SourceLike, as_sink, as_source, close_quietly

__all__ = ["MediaSession", "MediaStats", "StreamConfig"]

log = logging.getLogger("sipline.media")

# With no packet for this long the far end is silent (hold, suppression): play silence.
_IDLE_S = 0.25


class _OsEntropy:
    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)


class MediaSession:
    """One audio stream: open the sockets, `configure` from SDP, `start`, then play,
    record, send DTMF; `close` sends an RTCP BYE. See the module docstring."""

    def __init__(
        self,
        *,
        entropy: Entropy | None = None,
        symmetric: bool = True,
        jitter_min_ms: float = 20.0,
        jitter_max_ms: float = 200.0,
        rtcp_interval_s: float = 5.0,
        cname: str | None = None,
        wall: Callable[[], float] = time.time,
        clock: MediaClock | None = None,
    ) -> None:
        self.entropy: Entropy = entropy if entropy is not None else _OsEntropy()
        self.symmetric = symmetric
        self.jitter_min_ms = jitter_min_ms
        self.jitter_max_ms = jitter_max_ms
        self.rtcp_interval_s = rtcp_interval_s
        self.cname = cname or f"sipline-{self.entropy.random_bytes(6).hex()}"
        self._wall = wall
        self.config = StreamConfig(None)
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_bye: Callable[[], None] | None = None
        # (codec, frame) -> the payload another session encoded already, or None:
        # a conference's listeners of one mix share one encode (media/mixer.py).
        self.shared_payload: Callable[[str, Pcm], bytes | None] | None = None
        self.dtmf_received: list[str] = []
        self.local: Address = ("", 0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock = clock
        self._sockets: RtpSockets | None = None
        self._remote: Address | None = None
        self._remote_rtcp: Address | None = None
        self._pacer: Pacer | None = None
        self._closed = False
        self._setup_codec("PCMU", 0, 20)
        self._reporter = self._new_reporter()
        self._last_arrival: float | None = None
        self._source: AudioSource | None = None
        self._source_spec: SourceLike | None = None
        self.source_done: asyncio.Future[None] | None = None  # the source being played sent
        self._sink: AudioSink | None = None
        self._sink_spec: SinkLike | None = None
        self._dialer = DtmfDialer()
        self._dtmf_done: list[tuple[int, asyncio.Future[None]]] = []  # (digits sent, future)
        self._schedule = SendSchedule()
        self.srtp_failures = 0
        self.malformed = 0

    # -- set-up ---------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def clock(self) -> MediaClock:
        """The media clock: the one given, else the event loop's."""
        if self._clock is None:
            self._clock = loop_clock(self.loop)
        return self._clock

    @property
    def local_port(self) -> int:
        return self.local[1]

    @property
    def rtcp_port(self) -> int:
        return self.local[1] + 1

    @property
    def remote(self) -> Address | None:
        """Where RTP goes now (the latched source under symmetric RTP)."""
        return self._remote

    @property
    def ssrc(self) -> int:
        return self._rtp_sender.ssrc

    async def open(
        self,
        host: str = "0.0.0.0",
        *,
        port: int = 0,
        port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
    ) -> Address:
        """Bind RTP and RTCP sockets on `host`: at `port` and `port + 1`, or on a free
        even/odd pair drawn from `port_range`. Returns the RTP address."""
        self._sockets = await RtpSockets.open(
            self.loop,
            host,
            on_rtp=self._on_rtp,
            on_rtcp=self._on_rtcp_datagram,
            entropy=self.entropy,
            port=port,
            port_range=port_range,
        )
        self.local = self._sockets.local
        return self.local

    def _setup_codec(self, name: str, payload_type: int, ptime_ms: int) -> None:
        info = codec_by_name(name)
        if info is None:
            raise ValueError(f"codec {name} is not available")
        old = getattr(self, "_rtp_sender", None)
        self._codec_name = info.name
        self._clock_rate = info.clock_rate
        self._encoder: Encoder = info.make_encoder()
        self._decoder: Decoder = info.make_decoder()
        self._frame = frame_samples(info.clock_rate, ptime_ms)
        self._ptime_ms = ptime_ms
        # A stateless codec's silence is the same every time: encode it once.
        stateless = info.name.upper() in ("PCMU", "PCMA")
        self._silence = self._encoder.encode(silence(self._frame)) if stateless else None
        sender = RtpSender(
            payload_type=payload_type,
            entropy=self.entropy,
            clock_rate=info.clock_rate,
            ptime_ms=ptime_ms,
            ssrc=old.ssrc if old is not None else None,
        )
        if old is not None:  # the same stream goes on: keep numbering (RFC 3550 §5.1)
            sender.sequence_number = old.sequence_number
            sender.timestamp = old.timestamp
        self._rtp_sender = sender
        self._dtmf = DtmfSender(sender, payload_type=101)
        self._dtmf_rx = DtmfReceiver()
        self._jitter = JitterBuffer(
            clock_rate=info.clock_rate,
            ptime_ms=ptime_ms,
            min_delay_ms=self.jitter_min_ms,
            max_delay_ms=self.jitter_max_ms,
        )

    def configure(self, config: StreamConfig) -> None:
        """Apply an SDP outcome; may be called again (re-INVITE, hold, codec change)."""
        old = self.config
        if (config.codec.upper(), config.ptime_ms) != (self._codec_name.upper(), self._ptime_ms):
            rate_before = self._clock_rate
            self._setup_codec(config.codec, config.payload_type, config.ptime_ms)
            if rate_before != self._clock_rate:
                self._reporter = self._new_reporter()
                if self._source_spec is not None:
                    self._source = as_source(
                        self._source_spec, sample_rate=self._clock_rate, frame_size=self._frame
                    )
                if self._sink_spec is not None:
                    close_quietly(self._sink)
                    self._sink = as_sink(self._sink_spec, sample_rate=self._clock_rate)
            if self._pacer is not None:
                self._pacer.remove(self)
                self._pacer = None
                self.start()
        self._rtp_sender.payload_type = config.payload_type
        self._dtmf.payload_type = config.dtmf_payload_type or 101
        if config.remote_rtp != old.remote_rtp or self._remote is None:
            self._remote = config.remote_rtp
            host_port = config.remote_rtp
            self._remote_rtcp = config.remote_rtcp or (
                (host_port[0], host_port[1] + 1) if host_port is not None else None
            )
        if config.send and not old.send:
            self._schedule.resume(self.clock.now())
        self.config = config

    def start(self) -> None:
        """Begin sending and playing out on the shared pacing grid."""
        if self._closed or self._pacer is not None:
            return
        self._pacer = pacer_for(self.clock, self._ptime_ms)
        self._schedule.next_due = self._pacer.add(self)
        self._reporter.next_report(now=self._schedule.next_due)

    # -- audio in and out -------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self._clock_rate

    @property
    def codec_name(self) -> str:
        return self._codec_name

    @property
    def frame_size(self) -> int:
        return self._frame

    def play(self, source: SourceLike | None) -> asyncio.Future[None]:
        """Send `source` from the next frame on (None: silence). The future resolves
        when it has been played to its end, or is cancelled when replaced."""
        if self.source_done is not None and not self.source_done.done():
            self.source_done.cancel()
        close_quietly(self._source)
        self._source_spec = source
        self._source = (
            None
            if source is None
            else as_source(source, sample_rate=self._clock_rate, frame_size=self._frame)
        )
        done: asyncio.Future[None] = self.loop.create_future()
        if source is None:
            done.set_result(None)
        self.source_done = done
        return done

    def record(self, sink: SinkLike | None) -> None:
        """Give received audio to `sink` from now on (a WAV path, a sink, a callable)."""
        close_quietly(self._sink)
        self._sink_spec = sink
        self._sink = None if sink is None else as_sink(sink, sample_rate=self._clock_rate)

    def send_dtmf(
        self, digits: str, *, duration_ms: int = 100, pause_ms: int = 60
    ) -> asyncio.Future[None]:
        """Queue RFC 4733 events (resolves once the last end packet went out)."""
        self._dialer.dial(
            digits,
            duration_ms=duration_ms,
            pause_ticks=max(1, pause_ms // self._ptime_ms),
            clock_rate=self._clock_rate,
        )
        done: asyncio.Future[None] = self.loop.create_future()
        self._dtmf_done.append((self._dialer.digits_sent + len(digits), done))
        if not digits:
            done.set_result(None)
        return done

    # -- the tick ---------------------------------------------------------------------------
    def on_tick(self, now: float) -> None:
        config = self.config
        missed, send = self._schedule.due(now, self._ptime_ms / 1000)
        if missed:
            self._rtp_sender.skip(missed * self._frame)
        for _ in range(send):
            if config.send and self._remote is not None:
                self._send_frame(now)
            else:
                self._rtp_sender.skip(self._frame)
                self._consume_source()
        self._play_out(now)
        if now >= self._reporter.next_report(now=now):
            self._send_report(now)

    def _next_payload(self) -> tuple[bytes, int | None]:
        """The audio payload for this interval, or a telephone-event packet's."""
        dialer, dtmf = self._dialer, self._dtmf
        packet = dialer.tick(dtmf) if dialer.busy or dtmf.active else None
        if packet is not None:
            # The source plays on underneath, unheard, as a microphone would: what it
            # says after the key press stays in time.
            self._consume_source()
            self._resolve_dtmf()
            return packet.serialize(), None
        frame = self._consume_source()
        if frame is None:
            payload = self._silence
            if payload is None:
                payload = self._encoder.encode(silence(self._frame))
            return payload, len(payload)
        shared = self.shared_payload
        payload = shared(self._codec_name, frame) if shared is not None else None
        if payload is None:
            payload = self._encoder.encode(frame)
        return payload, len(payload)

    def _consume_source(self) -> Pcm | None:
        source = self._source
        if source is None:
            return None
        frame = source.read_frame()
        if frame is None:
            self._source = None
            done = self.source_done
            if done is not None and not done.done():
                done.set_result(None)
        return frame

    def _send_frame(self, now: float) -> None:
        data, audio_size = self._next_payload()
        if audio_size is not None:
            packet = self._rtp_sender.send(data)
            self._reporter.on_sent(audio_size, packet.timestamp, now=now)
            data = packet.serialize()
        else:
            self._reporter.on_sent(len(data) - 12, self._rtp_sender.timestamp, now=now)
        self._transmit(data)

    def _transmit(self, data: bytes) -> None:
        srtp = self.config.srtp
        if srtp is not None:
            data = srtp.protect(data)
        if self._sockets is not None and self._remote is not None:
            self._sockets.send_rtp(data, self._remote)

    def _resolve_dtmf(self) -> None:
        sent = self._dialer.digits_sent
        while self._dtmf_done and self._dtmf_done[0][0] <= sent:
            _, done = self._dtmf_done.pop(0)
            if not done.done():
                done.set_result(None)

    def _play_out(self, now: float) -> None:
        sink = self._sink
        items = self._jitter.pop(now=now)
        decoder = self._decoder
        if sink is None:
            return
        for item in items:
            if isinstance(item, Frame):
                sink.write_frame(decoder.decode(item.payload))
            else:
                sink.write_frame(decoder.conceal(item.samples))
        last = self._last_arrival
        if not items and last is not None and now - last > _IDLE_S and not len(self._jitter):
            sink.write_frame(silence(self._frame))  # the far end is quiet: time goes on

    # -- receiving -------------------------------------------------------------------------
    def _on_rtp(self, data: bytes, addr: Address) -> None:
        if len(data) >= 2 and is_rtcp(data):
            self._on_rtcp_datagram(data, addr)  # RFC 5761 multiplexing
            return
        config = self.config
        if config.srtp is not None:
            try:
                data = config.srtp.unprotect(data)
            except SrtpError:
                self.srtp_failures += 1
                return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self.malformed += 1
            return
        now = self.clock.now()
        self._reporter.on_rtp(packet.ssrc, packet.sequence_number, packet.timestamp, now=now)
        self._last_arrival = now
        if self.symmetric and addr != self._remote:
            self._remote = addr  # RFC 4961: answer where the peer really is
        if not config.receive:
            return
        pt = packet.payload_type
        if pt == config.dtmf_payload_type:
            digit = self._dtmf_rx.receive(packet)
            if digit is not None:
                self.dtmf_received.append(digit.digit)
                if self.on_dtmf is not None:
                    self.on_dtmf(digit.digit)
            return
        if pt == config.payload_type:
            self._jitter.push(packet, now=now)

    def _on_rtcp_datagram(self, data: bytes, addr: Address) -> None:
        srtp = self.config.srtp
        if srtp is not None:
            try:
                data = srtp.unprotect_rtcp(data)
            except SrtpError:
                self.srtp_failures += 1
                return
        try:
            packets = parse_compound(data)
        except RtcpError:
            self.malformed += 1
            return
        if self.symmetric:
            self._remote_rtcp = addr
        self._on_rtcp(packets)

    def _on_rtcp(self, packets: list[RtcpPacket]) -> None:
        left = self._reporter.on_rtcp(packets, now=self.clock.now(), wall=self._wall())
        if left and self.on_bye is not None:
            self.on_bye()

    # -- RTCP out (§6.4) ----------------------------------------------------------------------
    def _new_reporter(self) -> RtcpReporter:
        return RtcpReporter(
            ssrc=self._rtp_sender.ssrc,
            clock_rate=self._clock_rate,
            cname=self.cname,
            entropy=self.entropy,
            interval_s=self.rtcp_interval_s,
        )

    def _send_report(self, now: float, *, bye: bool = False) -> None:
        packets = self._reporter.report(now=now, wall=self._wall(), bye=bye)
        if self._sockets is None or self._remote_rtcp is None:
            return
        srtp = self.config.srtp
        try:
            data = serialize_compound(packets)
            if srtp is not None:
                data = srtp.protect_rtcp(data)
            self._sockets.send_rtcp(data, self._remote_rtcp)
        except (RtcpError, SrtpError) as exc:
            log.debug("RTCP not sent: %s", exc)

    # -- statistics ----------------------------------------------------------------------
    def stats(self) -> MediaStats:
        return media_stats(
            self._reporter,
            self._jitter,
            codec=self._codec_name,
            ptime_ms=self._ptime_ms,
            send_late=self._schedule.late,
            skipped=self._schedule.skipped,
        )

    @property
    def last_received(self) -> float | None:
        """Loop time of the last RTP packet from the peer (None: none yet)."""
        return self._last_arrival

    # -- the end ---------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop sending, send an RTCP BYE (§6.6), flush the sink and close the sockets."""
        if self._closed:
            return
        self._closed = True
        if self._pacer is not None:
            self._pacer.remove(self)
            self._pacer = None
        if self._loop is not None:
            self._send_report(self.clock.now(), bye=True)
        if self._sink is not None:
            for item in self._jitter.flush():
                if isinstance(item, Frame):
                    self._sink.write_frame(self._decoder.decode(item.payload))
        close_quietly(self._sink)
        close_quietly(self._source)
        if self.source_done is not None and not self.source_done.done():
            self.source_done.cancel()
        for _, done in self._dtmf_done:
            if not done.done():
                done.cancel()
        if self._sockets is not None:
            self._sockets.close()
        await asyncio.sleep(0)

    @property
    def closed(self) -> bool:
        return self._closed
