"""Tones, framing, resampling, sources/sinks, cross-correlation and WAV files."""

from __future__ import annotations

import io
import math
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.media.audio import (
    ArraySink,
    ArraySource,
    ToneSource,
    cross_correlate,
    frame_samples,
    frames,
    resample,
    rms_dbfs,
    silence,
    to_int16,
    tone,
)
from sipline.media.codecs import ulaw_decode, ulaw_encode
from sipline.media_io.audio_files import read_wav, write_wav


def peak_frequency(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64) * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[int(np.argmax(spectrum))])


def test_tone_level_and_frequency() -> None:
    t = tone(1000, duration_s=0.5, amplitude=0.5)
    assert t.dtype == np.int16
    assert len(t) == 4000
    assert np.abs(t).max() == pytest.approx(0.5 * 32767, abs=1)
    assert rms_dbfs(t) == pytest.approx(20 * math.log10(0.5), abs=0.05)
    assert peak_frequency(t, 8000) == pytest.approx(1000, abs=2)


def test_levels_and_saturation() -> None:
    assert rms_dbfs(silence(160)) == -math.inf
    assert rms_dbfs(silence(0)) == -math.inf
    assert to_int16([40000.0, -40000.0, 1.4]).tolist() == [32767, -32768, 1]
    assert frame_samples() == 160
    assert frame_samples(16000, 30) == 480


def test_framing() -> None:
    signal = np.arange(350, dtype=np.int16)
    padded = frames(signal)
    assert [len(f) for f in padded] == [160, 160, 160]
    assert padded[2][30:].tolist() == [0] * 130
    assert [len(f) for f in frames(signal, pad=False)] == [160, 160]
    assert frames(silence(0)) == []
    with pytest.raises(ValueError, match="positive"):
        frames(signal, frame_size=0)


def test_tone_source_is_continuous_across_frames() -> None:
    source = ToneSource(440, amplitude=0.3)
    joined = np.concatenate([source.read_frame() for _ in range(10)])
    assert np.array_equal(joined, tone(440, duration_s=0.2, amplitude=0.3))


def test_array_source_and_sink() -> None:
    signal = np.arange(400, dtype=np.int16)
    source = ArraySource(signal)
    sink = ArraySink()
    assert sink.samples().tolist() == []
    while (frame := source.read_frame()) is not None:
        sink.write_frame(frame)
    recorded = sink.samples()
    assert len(recorded) == 480
    assert np.array_equal(recorded[:400], signal)
    looping = ArraySource(signal, loop=True)
    got = [looping.read_frame() for _ in range(4)]
    assert got[0] is not None
    assert got[3] is not None
    assert np.array_equal(got[3], got[0])
    assert ArraySource(silence(0), loop=True).read_frame() is None


@pytest.mark.parametrize("from_rate", [44100, 48000, 16000, 11025])
def test_resample_keeps_in_band_tones(from_rate: int) -> None:
    t = tone(1000, duration_s=0.5, amplitude=0.5, sample_rate=from_rate)
    out = resample(t, from_rate=from_rate, to_rate=8000)
    assert len(out) == 4000
    assert peak_frequency(out, 8000) == pytest.approx(1000, abs=3)
    core = out[200:-200]
    assert rms_dbfs(core) == pytest.approx(rms_dbfs(t), abs=0.2)


def test_resample_removes_what_does_not_fit() -> None:
    # 6 kHz is above the 4 kHz Nyquist rate of 8 kHz: it must not alias to 2 kHz.
    t = tone(6000, duration_s=0.5, amplitude=0.5, sample_rate=48000)
    out = resample(t, from_rate=48000, to_rate=8000)
    assert rms_dbfs(out[200:-200]) < rms_dbfs(t) - 50


def test_resample_up_and_identity() -> None:
    t = tone(500, duration_s=0.1)
    up = resample(t, from_rate=8000, to_rate=16000)
    assert len(up) == 1600
    assert peak_frequency(up, 16000) == pytest.approx(500, abs=10)
    assert np.array_equal(resample(t, from_rate=8000, to_rate=8000), t)
    assert len(resample(silence(0), from_rate=44100)) == 0
    with pytest.raises(ValueError, match="positive"):
        resample(t, from_rate=0)


def test_cross_correlation_finds_delay_through_g711() -> None:
    rng = np.random.default_rng(1)
    played = to_int16(rng.normal(0, 4000, 4000))
    delay = 1234
    recorded = np.concatenate([silence(delay), played, silence(500)])
    # Through the codec, at a lower level, with some noise.
    recorded = ulaw_decode(
        ulaw_encode(to_int16(recorded * 0.3 + rng.normal(0, 100, len(recorded))))
    )
    result = cross_correlate(played, recorded)
    assert result.lag == delay
    assert result.peak > 0.9


def test_cross_correlation_negative_lag_and_unrelated_signals() -> None:
    rng = np.random.default_rng(2)
    played = to_int16(rng.normal(0, 4000, 2000))
    late_start = played[300:]  # the recording missed the first 300 samples
    assert cross_correlate(played, late_start).lag == -300
    noise = to_int16(rng.normal(0, 4000, 3000))
    assert cross_correlate(played, noise).peak < 0.2
    assert cross_correlate(played, silence(3000)).peak == 0.0
    assert cross_correlate(played, played, max_lag=0).lag == 0
    with pytest.raises(ValueError, match="empty"):
        cross_correlate(silence(0), played)


@given(st.integers(0, 600))
def test_cross_correlation_lag_property(delay: int) -> None:
    rng = np.random.default_rng(delay)
    played = to_int16(rng.normal(0, 3000, 800))
    recorded = np.concatenate([silence(delay), played, silence(100)]).astype(np.int16)
    result = cross_correlate(played, recorded)
    assert result.lag == delay
    assert result.peak == pytest.approx(1.0)


def test_wav_round_trip(tmp_path: Path) -> None:
    t = tone(700, duration_s=0.2)
    path = tmp_path / "tone.wav"
    write_wav(path, t)
    assert np.array_equal(read_wav(path), t)
    assert np.array_equal(read_wav(str(path), target_rate=None), t)


def test_wav_stereo_high_rate_to_mono_8k() -> None:
    left = tone(1000, duration_s=0.3, amplitude=0.4, sample_rate=44100)
    right = tone(1000, duration_s=0.3, amplitude=0.2, sample_rate=44100)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())
    buffer.seek(0)
    mono = read_wav(buffer)
    assert len(mono) == 2400
    assert peak_frequency(mono, 8000) == pytest.approx(1000, abs=4)
    assert np.abs(mono[200:-200]).max() == pytest.approx(0.3 * 32767, rel=0.02)


def test_wav_of_other_widths_is_converted() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)  # 8-bit PCM is unsigned: 128 is silence
        w.setframerate(8000)
        w.writeframes(bytes([128, 192] * 40))
    buffer.seek(0)
    samples = read_wav(buffer)
    assert len(samples) == 80 and set(samples.tolist()) == {0, 16384}
