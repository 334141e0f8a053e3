"""An RTP/RTCP media session on asyncio (RFC 3550, RFC 3551, RFC 4733, RFC 4961).

The I/O half of `sipline.media`: two UDP sockets (RTP on an even port, RTCP on the
next one, RFC 3550 §11) around the pure parts, RTP numbering, the jitter buffer, the
statistics, G.711 (or Opus), telephone-events and RTCP.

Timing: every session with the same packet time shares one `loop.call_at` chain per
event loop (`_Pacer`), ticking on a fixed grid (tick k at t0 + k * ptime, so a late
wake-up never shifts the schedule). On each tick a session sends the frames that are
due (catching up a few after a stall, skipping the timestamp past longer ones), plays
out what the jitter buffer releases, and sends RTCP when its randomised interval is
up (§6.2). Symmetric RTP (RFC 4961): we send to wherever the peer's packets come from,
so a peer behind NAT is reached whatever its SDP said.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sipline.core.clock import Entropy
from sipline.media.audio import AudioSink, AudioSource, frame_samples, silence
from sipline.media.codecs.base import Decoder, Encoder, Pcm
from sipline.media.codecs.registry import codec_by_name
from sipline.media.dtmf import DtmfError, DtmfReceiver, DtmfSender, digit_to_event
from sipline.media.jitter import Frame, JitterBuffer
from sipline.media.pacing import MAX_CATCH_UP, Pacer, pacer_for
from sipline.media.reporting import RtcpReporter
from sipline.media.rtcp import RtcpError, RtcpPacket, parse_compound, serialize_compound
from sipline.media.rtp import RtpError, RtpPacket, RtpSender, is_rtcp
from sipline.media.sources import SinkLike, SourceLike, as_sink, as_source, close_quietly
from sipline.media.srtp import SrtpContext, SrtpError
from sipline.media.stats import estimate_mos

__all__ = ["MediaSession", "MediaStats", "StreamConfig"]

log = logging.getLogger("sipline.media")

Address = tuple[str, int]

# With no packet for this long the far end is silent (hold, suppression): play silence.
_IDLE_S = 0.25
_RECV_BUFFER = 1 << 18


class _OsEntropy:
    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)


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


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, deliver: Callable[[bytes, Address], None]) -> None:
        self._deliver = deliver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._deliver(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("media socket: %s", exc)  # ICMP port unreachable while the peer starts


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
        self._rtp: _Datagrams | None = None
        self._rtcp: _Datagrams | None = None
        self._remote: Address | None = None
        self._remote_rtcp: Address | None = None
        self._pacer: Pacer | None = None
        self._closed = False
        self._setup_codec("PCMU", 0, 20)
        self._reporter = self._new_reporter()
        self._last_arrival: float | None = None
        self._source: AudioSource | None = None
        self._source_spec: SourceLike | None = None
        self._source_done: asyncio.Future[None] | None = None
        self._sink: AudioSink | None = None
        self._sink_spec: SinkLike | None = None
        self._dtmf_queue: deque[tuple[str, int]] = deque()  # (digit or "", ticks of pause)
        self._dtmf_done: list[tuple[int, asyncio.Future[None]]] = []
        self._dtmf_sent = 0
        self._pause_ticks = 0
        self._due = 0.0
        self.send_late = 0
        self.skipped = 0
        self.srtp_failures = 0
        self.malformed = 0

    # -- set-up ---------------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

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
        self, host: str = "0.0.0.0", *, port: int = 0, port_range: tuple[int, int] = (16384, 32766)
    ) -> Address:
        """Bind RTP and RTCP sockets on `host`: at `port` and `port + 1`, or on a free
        even/odd pair drawn from `port_range`. Returns the RTP address."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        pair: tuple[socket.socket, socket.socket] | None = None
        if port:
            pair = _bind_pair(family, host, port)
        else:
            low, high = port_range
            span = max(1, (high - low) // 2)
            start = int.from_bytes(self.entropy.random_bytes(4), "big") % span
            for i in range(min(span, 200)):
                candidate = low + 2 * ((start + i) % span)
                with contextlib.suppress(OSError):
                    pair = _bind_pair(family, host, candidate)
                    break
        if pair is None:
            raise OSError(f"no free RTP port pair on {host}")
        rtp_sock, rtcp_sock = pair
        loop = self.loop
        _, self._rtp = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._on_rtp), sock=rtp_sock
        )
        _, self._rtcp = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._on_rtcp_datagram), sock=rtcp_sock
        )
        name = rtp_sock.getsockname()
        self.local = (str(name[0]), int(name[1]))
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
            self._due = max(self._due, self.loop.time())
        self.config = config

    def start(self) -> None:
        """Begin sending and playing out on the shared pacing grid."""
        if self._closed or self._pacer is not None:
            return
        self._pacer = pacer_for(self.loop, self._ptime_ms)
        self._due = self._pacer.add(self)
        self._reporter.next_report(now=self._due)

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
        if self._source_done is not None and not self._source_done.done():
            self._source_done.cancel()
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
        self._source_done = done
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
        ticks = max(1, pause_ms // self._ptime_ms)
        if not 0 < self._clock_rate * duration_ms // 1000 <= 0xFFFF:
            raise DtmfError(f"duration {duration_ms} ms does not fit one event")
        for digit in digits:
            digit_to_event(digit)  # raises DtmfError for a key that does not exist
        for digit in digits:
            self._dtmf_queue.append((digit, duration_ms))
            self._dtmf_queue.append(("", ticks))
        done: asyncio.Future[None] = self.loop.create_future()
        self._dtmf_done.append((self._dtmf_sent + len(digits), done))
        if not digits:
            done.set_result(None)
        return done

    # -- the tick ---------------------------------------------------------------------------
    def _on_tick(self, now: float) -> None:
        config = self.config
        step = self._ptime_ms / 1000
        if self._due < now - MAX_CATCH_UP * step:
            missed = int((now - self._due) // step)
            self.skipped += missed
            self._rtp_sender.skip(missed * self._frame)
            self._due += missed * step
        while self._due <= now + 1e-4:
            if now - self._due >= step:
                self.send_late += 1
            self._due += step
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
        if not self._dtmf.active:
            if self._pause_ticks:
                self._pause_ticks -= 1
            elif self._dtmf_queue:
                digit, value = self._dtmf_queue.popleft()
                if digit:
                    self._dtmf.send_digit(digit, duration_ms=value)
                else:
                    self._pause_ticks = value
        if self._dtmf.active:
            packet = self._dtmf.tick()
            # The source plays on underneath, unheard, as a microphone would: what it
            # says after the key press stays in time.
            self._consume_source()
            if packet is not None:
                if not self._dtmf.active:
                    self._digit_sent()
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
            done = self._source_done
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
        rtp = self._rtp
        if rtp is not None and rtp.transport is not None and self._remote is not None:
            rtp.transport.sendto(data, self._remote)

    def _digit_sent(self) -> None:
        self._dtmf_sent += 1
        while self._dtmf_done and self._dtmf_done[0][0] <= self._dtmf_sent:
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
        now = self.loop.time()
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
        left = self._reporter.on_rtcp(packets, now=self.loop.time(), wall=self._wall())
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

    def _send_rtcp(self, packets: list[RtcpPacket]) -> None:
        data = serialize_compound(packets)
        srtp = self.config.srtp
        if srtp is not None:
            data = srtp.protect_rtcp(data)
        rtcp = self._rtcp
        if rtcp is not None and rtcp.transport is not None and self._remote_rtcp is not None:
            rtcp.transport.sendto(data, self._remote_rtcp)

    def _send_report(self, now: float, *, bye: bool = False) -> None:
        packets = self._reporter.report(now=now, wall=self._wall(), bye=bye)
        if self._remote_rtcp is None:
            return
        try:
            self._send_rtcp(packets)
        except (RtcpError, SrtpError) as exc:
            log.debug("RTCP not sent: %s", exc)

    # -- statistics ----------------------------------------------------------------------
    def stats(self) -> MediaStats:
        rep = self._reporter
        remote = rep.remote
        rtt_ms = rep.rtt * 1000 if rep.rtt is not None else None
        mos = estimate_mos(
            loss_percent=rep.loss_percent,
            jitter_ms=rep.jitter_ms,
            network_delay_ms=(rtt_ms or 0.0) / 2,
            jitter_buffer_ms=self._jitter.target_delay_ms,
            ptime_ms=self._ptime_ms,
        )
        return MediaStats(
            codec=self._codec_name,
            packets_sent=rep.sender.packets_sent,
            octets_sent=rep.sender.octets_sent,
            packets_received=rep.packets,
            packets_lost=rep.lost,
            loss_percent=rep.loss_percent,
            jitter_ms=rep.jitter_ms,
            late=self._jitter.late,
            duplicates=self._jitter.duplicate,
            send_late=self.send_late,
            skipped=self.skipped,
            remote_packets_lost=remote.packets_lost if remote is not None else None,
            remote_loss_percent=100.0 * remote.fraction_lost / 256 if remote is not None else None,
            remote_jitter_ms=1000.0 * remote.jitter / self._clock_rate
            if remote is not None
            else None,
            rtt_ms=rtt_ms,
            jitter_buffer_ms=self._jitter.target_delay_ms,
            mos=mos,
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
            self._send_report(self.loop.time(), bye=True)
        if self._sink is not None:
            for item in self._jitter.flush():
                if isinstance(item, Frame):
                    self._sink.write_frame(self._decoder.decode(item.payload))
        close_quietly(self._sink)
        close_quietly(self._source)
        if self._source_done is not None and not self._source_done.done():
            self._source_done.cancel()
        for _, done in self._dtmf_done:
            if not done.done():
                done.cancel()
        for proto in (self._rtp, self._rtcp):
            if proto is not None and proto.transport is not None:
                proto.transport.close()
        await asyncio.sleep(0)

    @property
    def closed(self) -> bool:
        return self._closed


def _bind_pair(family: int, host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """RTP at `port`, RTCP at `port + 1` (RFC 3550 §11), or OSError."""
    socks: list[socket.socket] = []
    try:
        for p in (port, port + 1):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            socks.append(sock)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECV_BUFFER)
            sock.bind((host, p))
            sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks[0], socks[1]
