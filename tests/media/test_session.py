"""The asyncio media session over real loopback sockets: audio both ways checked by
cross-correlation, DTMF, RTCP, loss through a relay, symmetric RTP, hold, sources and
sinks, SRTP and Opus.

Most tests run the sessions on a stepped media clock (`Timers` on a `FakeClock`):
packets still cross real sockets, but media time moves only when the test moves it.
Real time is kept for what is about real time: pacing, round-trip time, and loss
through the relay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from media_helpers import HOST, chirp, relay_pair

from sipline.media.audio import ArraySink, ToneSource, cross_correlate, resample
from sipline.media.codecs.base import Pcm
from sipline.media.codecs.opus import opus_available, register_opus
from sipline.media.codecs.registry import unregister_codec
from sipline.media.dtmf import DtmfError
from sipline.media.srtp import SrtpContext, new_crypto, srtp_available
from sipline.media_io.audio_files import read_wav, write_wav
from sipline.media_io.session import MediaSession, StreamConfig
from sipline.media_io.sources import FrameQueueSink
from sipline.runtime.timers import Timers
from sipline.testing import FakeClock, SeededEntropy, advance


async def _pair(
    clock: FakeClock | None = None, **kwargs: object
) -> tuple[MediaSession, MediaSession]:
    """Two sessions sending to each other, on `clock` (stepped) or on the loop's."""
    media_clock = Timers(clock) if clock is not None else None
    wall = clock.wall if clock is not None else time.time
    a = MediaSession(entropy=SeededEntropy(1), rtcp_interval_s=0.5, clock=media_clock, wall=wall)
    b = MediaSession(entropy=SeededEntropy(2), rtcp_interval_s=0.5, clock=media_clock, wall=wall)
    await a.open(HOST)
    await b.open(HOST)
    a.configure(StreamConfig(b.local, dtmf_payload_type=101, **kwargs))  # type: ignore[arg-type]
    b.configure(StreamConfig(a.local, dtmf_payload_type=101, **kwargs))  # type: ignore[arg-type]
    return a, b


async def _step_until(
    clock: FakeClock, condition: Callable[[], bool], limit_s: float = 5.0
) -> None:
    """Move media time on 20 ms at a time until `condition` holds (at most `limit_s`)."""
    end = clock.now + limit_s
    while not condition():
        if clock.now >= end:
            raise AssertionError(f"condition not met in {limit_s} s of media time")
        await advance(clock, 0.02, turns=3)


async def _wait_for(condition: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_ports_are_an_even_rtp_port_and_the_next_one_for_rtcp() -> None:
    s = MediaSession()
    host, port = await s.open(HOST)
    assert host == HOST and port % 2 == 0 and s.rtcp_port == port + 1
    other = MediaSession()
    with pytest.raises(OSError):
        await other.open(HOST, port=port)
    await s.close()
    await other.close()


async def test_audio_both_ways_matches_what_was_played_and_rtcp_measures_the_path() -> None:
    a, b = await _pair()
    heard_by_a, heard_by_b = ArraySink(), ArraySink()
    a.record(heard_by_a)
    b.record(heard_by_b)
    to_b, to_a = chirp(1.6), chirp(1.6, f0=900, rate=-200)
    done = [a.play(to_b), b.play(to_a)]
    a.start()
    b.start()
    await asyncio.wait_for(asyncio.gather(*done), 10)
    await asyncio.sleep(0.5)
    for reference, heard in ((to_b, heard_by_b), (to_a, heard_by_a)):
        match = cross_correlate(reference, heard.samples())
        assert match.peak > 0.95, match
    sa, sb = a.stats(), b.stats()
    assert sa.packets_sent >= 80 and sb.packets_received >= 80
    assert sb.packets_lost == 0 and sb.loss_percent == 0.0
    assert sa.rtt_ms is not None and sa.rtt_ms < 200
    assert sa.remote_packets_lost == 0 and sa.remote_loss_percent == 0.0
    assert 4.0 < sb.mos <= 4.5 and sb.codec == "PCMU"
    assert "MOS" in sb.summary()
    await a.close()
    await b.close()


async def test_pacing_keeps_real_time_without_drift() -> None:
    a, b = await _pair()
    a.start()
    b.start()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.sleep(2.0)
    elapsed = loop.time() - began
    stats = a.stats()
    # One packet per 20 ms, give or take the ticks at both ends of the window; a stall
    # of the machine may make the session skip frames, but never lose the time.
    assert abs(stats.packets_sent + stats.skipped - elapsed / 0.02) <= 3, (stats, elapsed)
    assert stats.skipped <= 10
    await a.close()
    await b.close()


async def test_dtmf_digits_arrive_once_each_in_order() -> None:
    clock = FakeClock()
    a, b = await _pair(clock)
    heard: list[str] = []
    b.on_dtmf = heard.append
    a.start()
    b.start()
    sent = a.send_dtmf("0123456789*#AD", duration_ms=40, pause_ms=40)
    await _step_until(clock, sent.done, 10)
    await _step_until(clock, lambda: len(heard) == 14)
    assert "".join(heard) == "0123456789*#AD" == "".join(b.dtmf_received)
    with pytest.raises(DtmfError):
        a.send_dtmf("X")
    with pytest.raises(DtmfError):
        a.send_dtmf("1", duration_ms=10_000)
    assert a.send_dtmf("").done()
    await a.close()
    await b.close()


async def test_loss_through_a_relay_is_counted_and_the_audio_survives() -> None:
    # b sits behind the relay as behind a NAT; a keeps to b's public address (no
    # latching of its own), b answers whoever reaches it (symmetric RTP).
    a = MediaSession(entropy=SeededEntropy(3), rtcp_interval_s=0.5, symmetric=False)
    b = MediaSession(entropy=SeededEntropy(4), rtcp_interval_s=0.5)
    await a.open(HOST)
    await b.open(HOST)
    rtp, rtcp = await relay_pair(b.local, loss=0.05, seed=7)
    a.configure(StreamConfig(rtp.public, remote_rtcp=rtcp.public))
    b.configure(StreamConfig(a.local))
    heard = ArraySink()
    b.record(heard)
    played = chirp(3.0)
    done = a.play(played)
    a.start()
    b.start()
    await asyncio.wait_for(done, 15)
    await asyncio.sleep(0.8)
    sb = b.stats()
    dropped = rtp.dropped[0]
    assert 3 <= dropped <= 25  # 5% of ~150 packets, seeded
    assert abs(sb.packets_lost - dropped) <= 2, (sb.packets_lost, dropped)
    assert 2.0 < sb.loss_percent < 15.0
    assert sb.mos < 4.4  # the E-model sees the loss
    match = cross_correlate(played, heard.samples())
    assert match.peak > 0.8, match
    # b latched onto the relay (symmetric RTP), so its RTCP reached a through it.
    assert b.remote == rtp.inner
    await _wait_for(lambda: a.stats().remote_packets_lost is not None, 3)
    assert (a.stats().remote_packets_lost or 0) > 0
    for s in (a, b):
        await s.close()
    rtp.close()
    rtcp.close()


async def test_symmetric_rtp_answers_where_packets_come_from() -> None:
    clock = FakeClock()
    a, b = await _pair(clock)
    b.configure(StreamConfig(("127.0.0.1", 9), dtmf_payload_type=101))  # a wrong address
    a.start()
    b.start()
    await _step_until(clock, lambda: a.stats().packets_received > 20)
    assert b.remote == a.local
    await a.close()
    await b.close()


async def test_without_symmetric_rtp_the_sdp_address_is_kept() -> None:
    clock = FakeClock()
    a = MediaSession(symmetric=False, clock=Timers(clock))
    b = MediaSession(symmetric=False, clock=a.clock)
    await a.open(HOST)
    await b.open(HOST)
    a.configure(StreamConfig(b.local))
    b.configure(StreamConfig(("127.0.0.1", 9)))
    a.start()
    b.start()
    await _step_until(clock, lambda: b.stats().packets_received > 10)
    assert b.remote == ("127.0.0.1", 9) and a.stats().packets_received == 0
    await a.close()
    await b.close()


async def test_hold_stops_sending_and_resume_starts_again() -> None:
    clock = FakeClock()
    a, b = await _pair(clock)
    a.start()
    b.start()
    await _step_until(clock, lambda: b.stats().packets_received > 10)
    a.configure(StreamConfig(b.local, send=False))
    await advance(clock, 0.1, turns=3)
    held = b.stats().packets_received
    await advance(clock, 0.5, turns=3)
    assert b.stats().packets_received == held
    a.configure(StreamConfig(b.local))
    await _step_until(clock, lambda: b.stats().packets_received > held + 10)
    # While held the timestamps kept counting, so nothing looked lost on resume.
    assert b.stats().packets_lost == 0
    await a.close()
    await b.close()


async def test_receive_off_ignores_incoming_audio() -> None:
    clock = FakeClock()
    a, b = await _pair(clock)
    b.configure(StreamConfig(a.local, receive=False))
    heard = ArraySink()
    b.record(heard)
    a.start()
    b.start()
    await advance(clock, 0.4, turns=3)
    assert b.stats().packets_received > 5  # counted...
    assert all(not np.any(c) for c in heard.chunks)  # ...but never played
    await a.close()
    await b.close()


async def test_wav_files_in_and_out_resampled(tmp_path: Path) -> None:
    clock = FakeClock()
    a, b = await _pair(clock)
    source = tmp_path / "prompt16k.wav"
    signal16k = chirp(1.0, sample_rate=16000)
    write_wav(source, signal16k, sample_rate=16000)
    recording = tmp_path / "heard.wav"
    b.record(recording)
    done = a.play(source)
    a.start()
    b.start()
    await _step_until(clock, done.done, 10)
    await advance(clock, 0.3, turns=3)
    await a.close()
    await b.close()
    heard = read_wav(recording)
    reference = resample(signal16k, from_rate=16000, to_rate=8000)
    assert cross_correlate(reference, heard).peak > 0.9


async def test_async_iterator_source_and_frame_queue_sink() -> None:
    clock = FakeClock()
    a, b = await _pair(clock)
    played = chirp(0.8)

    async def produce() -> AsyncIterator[Pcm]:
        for i in range(0, len(played), 100):  # chunks that are not frames
            yield played[i : i + 100]
            await asyncio.sleep(0)

    queue = FrameQueueSink()
    b.record(queue)
    done = a.play(produce())
    a.start()
    b.start()
    await _step_until(clock, done.done, 10)
    await advance(clock, 0.3, turns=3)
    await b.close()
    frames = [frame async for frame in queue]
    heard = np.concatenate(frames)
    assert cross_correlate(played, heard).peak > 0.95
    await a.close()


async def test_replacing_a_source_cancels_the_first_play() -> None:
    clock = FakeClock()
    a, b = await _pair(clock)
    a.start()
    b.start()
    first = a.play(chirp(5.0))
    second = a.play(lambda n: None)  # a callable source that ends at once
    await _step_until(clock, second.done, 0.1)
    assert first.cancelled()
    with pytest.raises(TypeError):
        a.play(42)  # type: ignore[arg-type]
    await a.close()
    await b.close()


async def test_rtcp_bye_tells_the_other_side() -> None:
    clock = FakeClock()
    a, b = await _pair(clock)
    left = asyncio.Event()
    b.on_bye = left.set
    a.start()
    b.start()
    await _step_until(clock, lambda: b.stats().packets_received > 5)
    await a.close()
    await _step_until(clock, left.is_set, 0.1)
    await b.close()
    assert b.closed


@pytest.mark.skipif(not srtp_available(), reason="pylibsrtp is not installed")
async def test_srtp_with_sdes_keys_protects_both_ways() -> None:
    ka = new_crypto(1, entropy=SeededEntropy(10))
    kb = new_crypto(1, entropy=SeededEntropy(11))
    clock = FakeClock()
    a = MediaSession(rtcp_interval_s=0.5, clock=Timers(clock), wall=clock.wall)
    b = MediaSession(rtcp_interval_s=0.5, clock=a.clock, wall=clock.wall)
    await a.open(HOST)
    await b.open(HOST)
    a.configure(StreamConfig(b.local, srtp=SrtpContext(ka, kb)))
    b.configure(StreamConfig(a.local, srtp=SrtpContext(kb, ka)))
    heard = ArraySink()
    b.record(heard)
    played = chirp(1.0)
    done = a.play(played)
    a.start()
    b.start()
    await _step_until(clock, done.done, 10)
    await advance(clock, 0.6, turns=3)
    assert cross_correlate(played, heard.samples()).peak > 0.95
    assert a.stats().rtt_ms is not None  # SRTCP got through too
    assert a.srtp_failures == b.srtp_failures == 0
    # A wrong key: every packet fails its authentication check and is dropped.
    wrong = new_crypto(1, entropy=SeededEntropy(12))
    b.configure(StreamConfig(a.local, srtp=SrtpContext(kb, wrong)))
    await _step_until(clock, lambda: b.srtp_failures > 5)
    await a.close()
    await b.close()


@pytest.fixture
def opus() -> Iterator[None]:
    if not opus_available():
        pytest.skip("PyAV with libopus is not installed")
    assert register_opus()
    yield
    unregister_codec("opus")


@pytest.mark.usefixtures("opus")
async def test_opus_at_48_khz() -> None:
    clock = FakeClock()
    a, b = await _pair(clock, codec="opus", payload_type=111)
    assert a.sample_rate == 48000 and a.frame_size == 960
    heard = ArraySink()
    b.record(heard)
    played = chirp(1.0, sample_rate=48000)
    done = a.play(played)
    a.start()
    b.start()
    await _step_until(clock, done.done, 10)
    await advance(clock, 0.3, turns=3)
    assert cross_correlate(played, heard.samples()).peak > 0.7
    assert b.stats().codec == "opus"
    await a.close()
    await b.close()


async def test_pcma_and_a_tone_generator() -> None:
    clock = FakeClock()
    a, b = await _pair(clock, codec="PCMA", payload_type=8)
    heard = ArraySink()
    b.record(heard)
    a.play(ToneSource(1000, amplitude=0.3))
    a.start()
    b.start()
    await _step_until(clock, lambda: len(heard.chunks) > 30)
    samples = heard.samples()[-4000:].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(int(np.argmax(spectrum)) * 8000 / len(samples) - 1000) < 10  # the tone's pitch
    assert b.stats().codec == "PCMA"
    await a.close()
    await b.close()
