"""The sipline user agent calling baresip directly (no server): SRTP keyed with SDES
(RFC 4568) and Opus, audio both ways matched by cross-correlation."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest
from interop_helpers import HOST, free_port_pair
from ua_baresip import Baresip

from sipline.media.audio import ArraySink, cross_correlate, to_int16
from sipline.media.codecs.base import Pcm
from sipline.media.codecs.opus import opus_available
from sipline.media.srtp import srtp_available
from sipline.media_io.audio_files import write_wav
from sipline.phone import MediaOptions, UserAgent

pytestmark = pytest.mark.interop


def sweep(seconds: float, f0: float, rate: float, sample_rate: int = 8000) -> Pcm:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return to_int16(10000 * np.sin(2 * np.pi * (f0 * t + rate * t * t)))


def write_stereo(path: Path, samples: Pcm, rate: int) -> None:
    """baresip's aufile wants the codec's own format: 48 kHz stereo for Opus."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(samples, 2).astype("<i2").tobytes())


async def _call(bob: Baresip, media: MediaOptions, played: Pcm) -> tuple[Pcm, object]:
    heard = ArraySink()
    async with UserAgent("alice@example.com", listen=f"{HOST}:0", media=media) as ua:
        call = await ua.call(bob.uri, play=played, record=heard)
        await asyncio.wait_for(call.answered, 10)
        assert call.playback is not None
        await asyncio.wait_for(asyncio.shield(call.playback), 10)
        await asyncio.sleep(0.5)
        stats = call.stats()
        secure = call.media.secure
        codec = call.media.codec
        await call.hangup()
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
    assert stats.packets_received > 50 and stats.packets_lost == 0, stats
    return heard.samples(), (secure, codec)


@pytest.mark.skipif(not srtp_available(), reason="pylibsrtp is not installed")
async def test_srtp_with_sdes_keys_against_baresip(tmp_path: Path) -> None:
    microphone = tmp_path / "mic.wav"
    theirs = sweep(8.0, 1800, -50)
    write_wav(microphone, theirs)
    bob = Baresip(
        "bob",
        tmp_path,
        account=f"<sip:bob@{HOST}>;answermode=auto;regint=0;audio_codecs=PCMU;mediaenc=srtp-mand",
        microphone=microphone,
        rtp_base=free_port_pair() & ~1,
        extra_modules=("srtp.so",),
    )
    try:
        ours = sweep(2.0, 300, 300)
        heard, (secure, codec) = await _call(
            bob, MediaOptions(codecs=("PCMU",), srtp="mandatory"), ours
        )
        assert secure and codec == "PCMU"
        assert "Using media encryption 'srtp-mand'" in bob.log(full=True)
        # Only decrypted packets decode to the sweep: the keys were exchanged right.
        assert cross_correlate(theirs[:16000], heard, min_overlap=0.9).peak > 0.9
        assert cross_correlate(ours, bob.decoded(), min_overlap=0.9).peak > 0.9
    finally:
        bob.stop()


@pytest.mark.skipif(not opus_available(), reason="PyAV with libopus is not installed")
async def test_opus_against_baresip(tmp_path: Path) -> None:
    rate = 48000
    microphone = tmp_path / "mic.wav"
    theirs = sweep(8.0, 1800, -50, rate)
    write_stereo(microphone, theirs, rate)
    bob = Baresip(
        "bob",
        tmp_path,
        account=f"<sip:bob@{HOST}>;answermode=auto;regint=0;audio_codecs=opus/48000/2",
        microphone=microphone,
        rtp_base=free_port_pair() & ~1,
        extra_modules=("opus.so",),
    )
    try:
        ours = sweep(2.0, 300, 300, rate)
        heard, (_, codec) = await _call(bob, MediaOptions(codecs=("opus",)), ours)
        assert codec == "opus"
        # Opus is not waveform-exact, but a sweep survives it well.
        assert cross_correlate(theirs[:rate], heard, min_overlap=0.9).peak > 0.8
        assert cross_correlate(ours, bob.decoded(), min_overlap=0.9).peak > 0.8
    finally:
        bob.stop()
