"""Audio files in, WAV files out.

16-bit PCM WAV goes through the standard library's `wave` module; every other format
(WAVE_FORMAT_EXTENSIBLE as sox writes it, float or 24/32-bit WAV, MP3, Ogg, FLAC, ...)
through FFmpeg by PyAV. This is the file-I/O edge of the media layer; everything it
returns is the mono int16 PCM the pure modules work on. A file that cannot be read
raises `AudioFileError`, whose message is one line naming the file and the cause.
"""

from __future__ import annotations

import importlib
import os
import wave
from os import PathLike
from typing import Any, BinaryIO

import numpy as np

from sipline.media.audio import resample
from sipline.media.codecs.base import Pcm

__all__ = ["AudioFileError", "check_audio_file", "read_audio", "read_wav", "write_wav"]


class AudioFileError(ValueError):
    """An audio file that is missing, unreadable, or holds no audio we can decode."""


WavTarget = str | PathLike[str] | BinaryIO


def _openable(f: WavTarget) -> str | BinaryIO:
    # `wave.open` takes path-like objects only from Python 3.12 on.
    return os.fspath(f) if isinstance(f, str | PathLike) else f


def read_wav(source: WavTarget, *, target_rate: int | None = 8000) -> Pcm:
    """Read an audio file (any format `read_audio` knows) as mono int16.

    Channels are averaged; the result is resampled to `target_rate` unless that
    is None. Raises `AudioFileError`.
    """
    try:
        with wave.open(_openable(source), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):  # not plain PCM WAV: FFmpeg reads the rest
        if not isinstance(source, str | PathLike):
            source.seek(0)
        return read_audio(source, target_rate=target_rate)
    except OSError as exc:
        raise AudioFileError(f"{_name(source)}: {exc.strerror or exc}") from None
    if width != 2:  # 8, 24 or 32-bit PCM: FFmpeg converts
        if not isinstance(source, str | PathLike):
            source.seek(0)
        return read_audio(source, target_rate=target_rate)
    samples = np.frombuffer(data, dtype="<i2").astype(np.float64)
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels]
        samples = samples.reshape(-1, channels).mean(axis=1)
    mono = np.clip(np.round(samples), -32768, 32767).astype(np.int16)
    if target_rate is None or target_rate == rate:
        return mono
    return resample(mono, from_rate=rate, to_rate=target_rate)


def _name(source: WavTarget) -> str:
    return os.fspath(source) if isinstance(source, str | PathLike) else "audio file"


def _av() -> Any:
    try:
        return importlib.import_module("av")
    except ImportError:
        raise AudioFileError("reading this audio format needs PyAV (pip install av)") from None


def read_audio(
    source: WavTarget, *, target_rate: int | None = 8000, max_seconds: float | None = None
) -> Pcm:
    """Decode the first audio stream of any file FFmpeg reads, as mono int16 at
    `target_rate` (the file's own rate when None). `max_seconds` stops early (a probe).
    Raises `AudioFileError`."""
    av = _av()
    name = _name(source)
    try:
        container = av.open(_openable(source), "r")
    except (av.FFmpegError, OSError) as exc:
        raise AudioFileError(f"{name}: {_reason(exc)}") from None
    chunks: list[Pcm] = []
    try:
        if not container.streams.audio:
            raise AudioFileError(f"{name}: no audio in this file")
        stream = container.streams.audio[0]
        rate = target_rate or stream.rate or 8000
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        limit = None if max_seconds is None else round(max_seconds * rate)
        got = 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                got += len(chunk)
            if limit is not None and got >= limit:
                break
        else:
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except (av.FFmpegError, OSError) as exc:
        raise AudioFileError(f"{name}: {_reason(exc)}") from None
    finally:
        container.close()
    if not chunks:
        raise AudioFileError(f"{name}: no audio samples in this file")
    return np.concatenate(chunks).astype(np.int16)


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without the errno and the file name it repeats."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(": '", 1)[0].strip() or type(exc).__name__


def check_audio_file(path: str | PathLike[str]) -> None:
    """Raise `AudioFileError` (one line) unless `path` is a readable audio file: the
    check a command makes before it starts a call to play it."""
    if os.path.isdir(path):
        raise AudioFileError(f"{os.fspath(path)}: is a directory, not an audio file")
    if _is_plain_wav(path):
        read_wav(path, target_rate=None)
    else:
        read_audio(path, max_seconds=0.1)


def _is_plain_wav(path: str | PathLike[str]) -> bool:
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            return bool(wav.getsampwidth() == 2)
    except (wave.Error, EOFError, OSError):
        return False


def write_wav(target: WavTarget, samples: Pcm, *, sample_rate: int = 8000) -> None:
    """Write mono int16 samples as a 16-bit PCM WAV file."""
    with wave.open(_openable(target), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())
