"""WAV files in and out, through the standard library's `wave` module.

This is the file-I/O edge of the media layer; everything it returns is the
mono int16 PCM the pure modules work on.
"""

from __future__ import annotations

import os
import wave
from os import PathLike
from typing import BinaryIO

import numpy as np

from sipline.media.audio import resample
from sipline.media.codecs.base import Pcm

__all__ = ["read_wav", "write_wav"]

WavTarget = str | PathLike[str] | BinaryIO


def _openable(f: WavTarget) -> str | BinaryIO:
    # `wave.open` takes path-like objects only from Python 3.12 on.
    return os.fspath(f) if isinstance(f, str | PathLike) else f


def read_wav(source: WavTarget, *, target_rate: int | None = 8000) -> Pcm:
    """Read a 16-bit PCM WAV file (any rate, any channel count) as mono int16.

    Channels are averaged; the result is resampled to `target_rate` unless that
    is None. Other sample widths raise `ValueError`.
    """
    with wave.open(_openable(source), "rb") as wav:
        channels = wav.getnchannels()
        width = wav.getsampwidth()
        rate = wav.getframerate()
        data = wav.readframes(wav.getnframes())
    if width != 2:
        raise ValueError(f"only 16-bit PCM WAV is supported, not {8 * width}-bit")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float64)
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels]
        samples = samples.reshape(-1, channels).mean(axis=1)
    mono = np.clip(np.round(samples), -32768, 32767).astype(np.int16)
    if target_rate is None or target_rate == rate:
        return mono
    return resample(mono, from_rate=rate, to_rate=target_rate)


def write_wav(target: WavTarget, samples: Pcm, *, sample_rate: int = 8000) -> None:
    """Write mono int16 samples as a 16-bit PCM WAV file."""
    with wave.open(_openable(target), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())
