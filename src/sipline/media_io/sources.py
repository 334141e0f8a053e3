"""Audio sources and sinks for a media session: WAV files, tones, arrays, callbacks and
async iterators of PCM frames (the pure ones live in `sipline.media.audio`; here are
those that read or write files or run on the event loop, and the adapters).

A session asks its source for one frame per packetisation interval (`read_frame`, None
once it has ended) and hands each decoded frame to its sink (`write_frame`). Anything
that could be a source or a sink goes through `as_source` / `as_sink`, which adapt it
to the session's sample rate and frame size:

- a path (str or `Path`) to a WAV file: read and resampled (source), written as the
  call goes (sink);
- a numpy array of int16 samples at the session rate (source);
- an object with `read_frame` / `write_frame` (used as is);
- a callable: `f(frame_size) -> frame | None` as a source, `f(frame)` as a sink;
- an async iterable of frames of any length (source), consumed by a task and cut
  into frames; while it is slow the session sends silence.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import wave
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from sipline.media.audio import (
    ArraySource,
    AudioSink,
    AudioSource,
    CallbackSink,
    CallbackSource,
    ToneSource,
    fit_frame,
    silence,
)
from sipline.media.codecs.base import Pcm
from sipline.media_io.audio_files import read_wav

__all__ = [
    "AsyncIteratorSource",
    "FrameQueueSink",
    "SinkLike",
    "SourceLike",
    "ToneSource",
    "WavFileSink",
    "as_sink",
    "as_source",
    "close_quietly",
    "wav_source",
]

SourceLike = str | Path | Pcm | AudioSource | Callable[[int], Pcm | None] | AsyncIterable[Pcm]
SinkLike = str | Path | AudioSink | Callable[[Pcm], None]


def wav_source(
    path: str | Path, *, sample_rate: int = 8000, frame_size: int = 160, loop: bool = False
) -> ArraySource:
    """A WAV file (any rate and channel count) played at `sample_rate`."""
    return ArraySource(read_wav(path, target_rate=sample_rate), frame_size=frame_size, loop=loop)


class AsyncIteratorSource:
    """Frames from an async iterable, pulled by a task into a bounded buffer.

    Chunks of any length are cut into frames of `frame_size`; the buffer holds
    `buffer_frames` frames ahead so a producer faster than real time waits. While the
    buffer is empty the session gets silence; once the iterable ends (and the buffer
    drains) `read_frame` returns None.
    """

    def __init__(
        self, frames: AsyncIterable[Pcm], *, frame_size: int = 160, buffer_frames: int = 25
    ) -> None:
        self.frame_size = frame_size
        self._iterable = frames
        self._buffer: collections.deque[Pcm] = collections.deque()
        self._pending = np.zeros(0, dtype=np.int16)
        self._space = asyncio.Event()
        self._space.set()
        self._limit = buffer_frames
        self._task: asyncio.Task[None] | None = None
        self._ended = False
        self.error: BaseException | None = None

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pull())

    async def _pull(self) -> None:
        try:
            async for chunk in self._iterable:
                data = np.concatenate([self._pending, np.asarray(chunk, dtype=np.int16)])
                n = len(data) // self.frame_size * self.frame_size
                for i in range(0, n, self.frame_size):
                    self._buffer.append(data[i : i + self.frame_size])
                self._pending = data[n:]
                while len(self._buffer) >= self._limit:
                    self._space.clear()
                    await self._space.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing producer ends the source, not the call
            self.error = exc
        finally:
            if len(self._pending):  # what was produced is still played
                self._buffer.append(fit_frame(self._pending, self.frame_size))
            self._ended = True

    def read_frame(self) -> Pcm | None:
        self._start()
        if self._buffer:
            frame = self._buffer.popleft()
            self._space.set()
            return frame
        if self._ended:
            return None
        return silence(self.frame_size)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class WavFileSink:
    """Writes frames to a 16-bit mono WAV file as they come; `close` finishes it."""

    def __init__(self, path: str | Path, *, sample_rate: int = 8000) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._wav: wave.Wave_write | None = wave.open(str(self.path), "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self.samples_written = 0

    def write_frame(self, frame: Pcm) -> None:
        if self._wav is None:
            return
        self._wav.writeframesraw(np.asarray(frame, dtype="<i2").tobytes())
        self.samples_written += len(frame)

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()  # rewrites the header with the final length
            self._wav = None


class FrameQueueSink:
    """Received frames as an async iterator (`async for frame in sink`).

    Holds at most `max_frames` (older ones are dropped when the consumer lags);
    iteration ends after `close`.
    """

    def __init__(self, *, max_frames: int = 500) -> None:
        self._queue: collections.deque[Pcm] = collections.deque(maxlen=max_frames)
        self._ready = asyncio.Event()
        self._closed = False

    def write_frame(self, frame: Pcm) -> None:
        self._queue.append(frame)
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[Pcm]:
        return self

    async def __anext__(self) -> Pcm:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()


def as_source(spec: SourceLike, *, sample_rate: int = 8000, frame_size: int = 160) -> AudioSource:
    """Adapt anything `SourceLike` to an `AudioSource` (see the module docstring)."""
    if isinstance(spec, str | Path):
        return wav_source(spec, sample_rate=sample_rate, frame_size=frame_size)
    if isinstance(spec, np.ndarray):
        return ArraySource(spec.astype(np.int16), frame_size=frame_size)
    if hasattr(spec, "read_frame"):
        return cast(AudioSource, spec)
    if hasattr(spec, "__aiter__"):
        return AsyncIteratorSource(cast(AsyncIterable[Pcm], spec), frame_size=frame_size)
    if callable(spec):
        return CallbackSource(spec, frame_size=frame_size)
    raise TypeError(f"cannot play {type(spec).__name__}: give a WAV path, samples or a source")


def as_sink(spec: SinkLike, *, sample_rate: int = 8000) -> AudioSink:
    """Adapt anything `SinkLike` to an `AudioSink`: a path records a WAV file."""
    if isinstance(spec, str | Path):
        return WavFileSink(spec, sample_rate=sample_rate)
    if hasattr(spec, "write_frame"):
        return cast(AudioSink, spec)
    if callable(spec):
        return CallbackSink(spec)
    raise TypeError(f"cannot record to {type(spec).__name__}: give a WAV path or a sink")


def close_quietly(thing: Any) -> None:
    """Close a source or sink that has a `close` (files, tasks); ignore errors."""
    close = getattr(thing, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()
