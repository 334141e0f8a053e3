"""Adapting what users pass as audio: paths, arrays, callables, async iterators, sinks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from sipline.media.audio import ArraySink, CallbackSink, CallbackSource, NullSink, ToneSource
from sipline.media.codecs.base import Pcm
from sipline.media_io.audio_files import read_wav
from sipline.media_io.sources import (
    AsyncIteratorSource,
    WavFileSink,
    as_sink,
    as_source,
    close_quietly,
)


def test_callback_source_pads_and_cuts_to_the_frame() -> None:
    lengths = iter([10, 400, 160])
    src = CallbackSource(lambda n: np.ones(next(lengths), dtype=np.int16), frame_size=160)
    assert [len(src.read_frame()) for _ in range(3)] == [160, 160, 160]  # type: ignore[arg-type]
    done = CallbackSource(lambda n: None)
    assert done.read_frame() is None


def test_as_source_and_as_sink_accept_the_documented_shapes(tmp_path: Path) -> None:
    tone = ToneSource(440)
    assert as_source(tone) is tone
    array = as_source(np.arange(320, dtype=np.int16), frame_size=160)
    assert len(array.read_frame()) == 160  # type: ignore[arg-type]
    sink = ArraySink()
    assert as_sink(sink) is sink
    got: list[Pcm] = []
    as_sink(got.append).write_frame(np.zeros(3, dtype=np.int16))
    assert len(got) == 1
    with pytest.raises(TypeError):
        as_sink(3)  # type: ignore[arg-type]
    path = tmp_path / "out.wav"
    wav = as_sink(path, sample_rate=16000)
    assert isinstance(wav, WavFileSink)
    wav.write_frame(np.full(160, 1000, dtype=np.int16))
    close_quietly(wav)
    wav.write_frame(np.zeros(160, dtype=np.int16))  # after close: ignored
    assert wav.samples_written == 160
    assert len(read_wav(path, target_rate=None)) == 160
    NullSink().write_frame(np.zeros(1, dtype=np.int16))
    CallbackSink(got.append).write_frame(np.zeros(1, dtype=np.int16))
    close_quietly(object())  # nothing to close: fine


async def _turns(n: int) -> None:
    """Let the event loop run the producer's task (no time needs to pass)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_async_source_buffers_a_fast_producer_and_reports_its_failure() -> None:
    produced = 0

    async def fast() -> AsyncIterator[Pcm]:
        nonlocal produced
        for _ in range(100):
            produced += 1
            yield np.ones(160, dtype=np.int16)

    src = AsyncIteratorSource(fast(), buffer_frames=5)
    assert not np.any(src.read_frame())  # nothing yet: silence while it starts
    await _turns(20)
    assert produced <= 6  # it waits for room instead of racing ahead
    assert np.all(src.read_frame() == 1)
    src.close()

    async def broken() -> AsyncIterator[Pcm]:
        yield np.ones(80, dtype=np.int16)
        raise RuntimeError("producer failed")

    bad = AsyncIteratorSource(broken(), frame_size=160)
    bad.read_frame()
    await _turns(20)
    frame = bad.read_frame()  # the half frame left over, padded
    assert frame is not None and np.count_nonzero(frame) == 80
    assert bad.read_frame() is None and isinstance(bad.error, RuntimeError)
