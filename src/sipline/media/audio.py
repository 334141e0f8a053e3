"""PCM helpers in pure numpy: tones, framing, resampling, sources and sinks,
and the cross-correlation that proves a signal made it end to end.

Samples are mono int16 numpy arrays throughout (`Pcm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sipline.media.codecs.base import Pcm

__all__ = [
    "ArraySink",
    "ArraySource",
    "AudioSink",
    "AudioSource",
    "CallbackSink",
    "CallbackSource",
    "Correlation",
    "NullSink",
    "ToneSource",
    "cross_correlate",
    "fit_frame",
    "frame_samples",
    "frames",
    "resample",
    "rms_dbfs",
    "silence",
    "to_int16",
    "tone",
]

_F64 = npt.NDArray[np.float64]
_FULL_SCALE = 32767


def frame_samples(sample_rate: int = 8000, ptime_ms: int = 20) -> int:
    """Samples in one packetisation interval: 160 for 20 ms at 8 kHz."""
    return sample_rate * ptime_ms // 1000


def to_int16(signal: npt.ArrayLike) -> Pcm:
    """Round and saturate floating-point samples (in int16 units) to int16."""
    x = np.asarray(signal, dtype=np.float64)
    return np.clip(np.round(x), -32768, _FULL_SCALE).astype(np.int16)


def silence(samples: int) -> Pcm:
    return np.zeros(samples, dtype=np.int16)


def tone(
    frequency_hz: float,
    *,
    duration_s: float,
    amplitude: float = 0.5,
    sample_rate: int = 8000,
    phase: float = 0.0,
) -> Pcm:
    """A sine wave; `amplitude` is a fraction of full scale."""
    n = round(duration_s * sample_rate)
    t = np.arange(n, dtype=np.float64)
    return to_int16(
        amplitude * _FULL_SCALE * np.sin(2 * math.pi * frequency_hz * t / sample_rate + phase)
    )


def frames(signal: Pcm, *, frame_size: int = 160, pad: bool = True) -> list[Pcm]:
    """Cut a signal into frames of `frame_size` samples (160 = 20 ms at 8 kHz).

    The last partial frame is zero-padded, or dropped when `pad` is False.
    """
    if frame_size <= 0:
        raise ValueError("frame_size must be positive")
    x = np.asarray(signal, dtype=np.int16)
    remainder = len(x) % frame_size
    if remainder:
        x = np.concatenate([x, silence(frame_size - remainder)]) if pad else x[: len(x) - remainder]
    return [x[i : i + frame_size] for i in range(0, len(x), frame_size)]


def rms_dbfs(signal: Pcm) -> float:
    """Root-mean-square level in dB relative to a full-scale sine (-inf for silence)."""
    x = np.asarray(signal, dtype=np.float64)
    if len(x) == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(x * x)))
    return -math.inf if rms == 0 else 20 * math.log10(rms * math.sqrt(2) / _FULL_SCALE)


# -- resampling --------------------------------------------------------------

# Windowed-sinc interpolation: each output sample is a Kaiser-windowed sinc
# sum over the input, with the cut-off at the lower of the two Nyquist rates.
# Linear interpolation would alias badly when going from 44.1/48 kHz down to
# 8 kHz; a fixed polyphase filter bank would need a rational ratio. This
# handles any ratio, costs 2 * _ZERO_CROSSINGS / cutoff taps per output
# sample, and is plenty fast for prompts and test signals.
_ZERO_CROSSINGS = 16
_KAISER_BETA = 8.6
_CHUNK = 4096


def _kaiser(u: _F64) -> _F64:
    """The Kaiser window at positions `u` in [-1, 1] (zero outside)."""
    inside = np.clip(1 - u * u, 0.0, None)
    w: _F64 = np.i0(_KAISER_BETA * np.sqrt(inside)) / np.i0(_KAISER_BETA)
    return np.where(np.abs(u) <= 1, w, 0.0)


def resample(signal: Pcm, *, from_rate: int, to_rate: int = 8000) -> Pcm:
    """Band-limited resampling of int16 PCM from `from_rate` to `to_rate` Hz."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError("sample rates must be positive")
    x = np.asarray(signal, dtype=np.float64)
    if from_rate == to_rate or len(x) == 0:
        return to_int16(x)
    ratio = from_rate / to_rate
    cutoff = min(1.0, 1 / ratio)  # as a fraction of the input Nyquist rate
    half = math.ceil(_ZERO_CROSSINGS / cutoff)
    n_out = round(len(x) * to_rate / from_rate)
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + 1)])
    out = np.empty(n_out, dtype=np.float64)
    offsets = np.arange(-half + 1, half + 1)
    for start in range(0, n_out, _CHUNK):
        positions = np.arange(start, min(n_out, start + _CHUNK)) * ratio
        base = np.floor(positions).astype(np.int64)
        taps = base[:, None] + offsets[None, :]
        distance = positions[:, None] - taps
        kernel = cutoff * np.sinc(cutoff * distance) * _kaiser(distance / half)
        out[start : start + len(positions)] = np.sum(padded[taps + half] * kernel, axis=1)
    return to_int16(out)


# -- sources and sinks -------------------------------------------------------


class AudioSource(Protocol):
    """Where outgoing audio comes from, one frame at a time."""

    def read_frame(self) -> Pcm | None:
        """The next frame, or None when the source has ended."""
        ...


class AudioSink(Protocol):
    """Where incoming audio goes, one frame at a time."""

    def write_frame(self, frame: Pcm) -> None: ...


class ArraySource:
    """Plays a signal in frames, optionally looping; pads the last frame with silence."""

    def __init__(self, signal: Pcm, *, frame_size: int = 160, loop: bool = False) -> None:
        self._frames = frames(signal, frame_size=frame_size)
        self._loop = loop
        self._next = 0

    def read_frame(self) -> Pcm | None:
        if self._next >= len(self._frames):
            if not self._loop or not self._frames:
                return None
            self._next = 0
        frame = self._frames[self._next]
        self._next += 1
        return frame


class ToneSource:
    """An endless sine, frame by frame, with the phase carried across frames."""

    def __init__(
        self,
        frequency_hz: float,
        *,
        amplitude: float = 0.5,
        sample_rate: int = 8000,
        frame_size: int = 160,
    ) -> None:
        self.frequency_hz = frequency_hz
        self.amplitude = amplitude
        self.sample_rate = sample_rate
        self.frame_size = frame_size
        self._position = 0

    def read_frame(self) -> Pcm:
        t = np.arange(self._position, self._position + self.frame_size, dtype=np.float64)
        self._position += self.frame_size
        phase = 2 * math.pi * self.frequency_hz * t / self.sample_rate
        return to_int16(self.amplitude * _FULL_SCALE * np.sin(phase))


@dataclass(slots=True)
class ArraySink:
    """Records frames; `samples()` returns everything written, concatenated."""

    chunks: list[Pcm] = field(default_factory=list)

    def write_frame(self, frame: Pcm) -> None:
        self.chunks.append(np.asarray(frame, dtype=np.int16))

    def samples(self) -> Pcm:
        if not self.chunks:
            return silence(0)
        return np.concatenate(self.chunks).astype(np.int16)


class CallbackSource:
    """Calls `produce(frame_size)` for each frame; None ends the source. A frame of
    another length is padded or cut to `frame_size`."""

    def __init__(self, produce: Callable[[int], Pcm | None], *, frame_size: int = 160) -> None:
        self._produce = produce
        self.frame_size = frame_size

    def read_frame(self) -> Pcm | None:
        frame = self._produce(self.frame_size)
        if frame is None:
            return None
        return fit_frame(np.asarray(frame, dtype=np.int16), self.frame_size)


def fit_frame(frame: Pcm, size: int) -> Pcm:
    """`frame` cut, or padded with silence, to `size` samples."""
    if len(frame) == size:
        return frame
    if len(frame) > size:
        return frame[:size]
    return np.concatenate([frame, silence(size - len(frame))])


class CallbackSink:
    def __init__(self, consume: Callable[[Pcm], None]) -> None:
        self._consume = consume

    def write_frame(self, frame: Pcm) -> None:
        self._consume(frame)


class NullSink:
    def write_frame(self, frame: Pcm) -> None:
        pass


# -- correlation -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Correlation:
    """Best alignment of a recording against a reference.

    `lag` is in samples: `recorded[n + lag]` matches `reference[n]`, so a
    positive lag means the recording is late. `peak` is the normalised
    correlation there, in [-1, 1]; near 1 means the same waveform.
    """

    lag: int
    peak: float


def cross_correlate(
    reference: Pcm, recorded: Pcm, *, min_overlap: float = 0.5, max_lag: int | None = None
) -> Correlation:
    """Find where `reference` occurs in `recorded` by normalised cross-correlation.

    Each candidate lag is scored over the overlapping part only, normalised by
    the energies of both parts there, so level changes (codec, gain) do not
    matter. Lags overlapping less than `min_overlap` of the shorter signal are
    ignored, since a handful of samples can match anything. The numerator is
    computed with one FFT convolution; the energies with cumulative sums.
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(recorded, dtype=np.float64)
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        raise ValueError("cannot correlate an empty signal")
    size = 1 << (na + nb - 1).bit_length()
    spectrum = np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size))
    raw = np.fft.irfft(spectrum, size)
    # Lags -(na-1)..(nb-1): negative ones wrap to the end of the circular result.
    lags = np.arange(-(na - 1), nb)
    numerator = raw[lags % size]
    # Overlap of reference[n] with recorded[n + lag]: n in [max(0,-lag), min(na, nb-lag)).
    lo = np.maximum(0, -lags)
    hi = np.minimum(na, nb - lags)
    overlap = hi - lo
    ca = np.concatenate([[0.0], np.cumsum(a * a)])
    cb = np.concatenate([[0.0], np.cumsum(b * b)])
    energy_a = ca[hi] - ca[lo]
    energy_b = cb[hi + lags] - cb[lo + lags]
    denominator = np.sqrt(energy_a * energy_b)
    valid = (overlap >= max(1, math.ceil(min_overlap * min(na, nb)))) & (denominator > 0)
    if max_lag is not None:
        valid &= np.abs(lags) <= max_lag
    if not valid.any():
        return Correlation(0, 0.0)
    scores: _F64 = np.where(valid, numerator / np.where(denominator > 0, denominator, 1.0), -2.0)
    best = int(np.argmax(scores))
    return Correlation(int(lags[best]), float(min(1.0, scores[best])))
