"""Opus (RFC 6716) through FFmpeg's libopus, by way of PyAV (the `av` package, extra
`[opus]`).

RFC 7587 §4.1: the RTP clock is 48 kHz and the rtpmap always says `opus/48000/2`,
whatever is actually coded; we send and decode mono. `register_opus()` adds the codec
to the registry when PyAV is installed and returns whether it did.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from sipline.media.codecs.base import Decoder, Encoder, Pcm
from sipline.media.codecs.registry import CodecInfo, codec_by_name, register_codec

__all__ = ["OpusDecoder", "OpusEncoder", "opus_available", "register_opus"]

CLOCK_RATE = 48000


def _av() -> Any:
    return importlib.import_module("av")


def opus_available() -> bool:
    try:
        av = _av()
    except ImportError:
        return False
    return "libopus" in av.codecs_available


class OpusEncoder(Encoder):
    name = "opus"
    clock_rate = CLOCK_RATE
    payload_type = None
    channels = 2  # as signalled; the stream itself is mono (RFC 7587 §7)

    def __init__(self, *, bitrate: int = 32000) -> None:
        av = _av()
        self._av = av
        ctx = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = CLOCK_RATE
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.bit_rate = bitrate
        ctx.options = {"application": "voip", "frame_duration": "20"}
        ctx.open()
        self._ctx = ctx
        self._pts = 0

    def encode(self, pcm: Pcm) -> bytes:
        samples = np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1)
        frame = self._av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = CLOCK_RATE
        frame.pts = self._pts
        self._pts += samples.shape[1]
        packets = self._ctx.encode(frame)
        return b"".join(bytes(p) for p in packets)


class OpusDecoder(Decoder):
    name = "opus"
    clock_rate = CLOCK_RATE
    payload_type = None
    channels = 2

    def __init__(self) -> None:
        av = _av()
        self._av = av
        ctx = av.CodecContext.create("libopus", "r")
        ctx.sample_rate = CLOCK_RATE
        ctx.layout = "mono"
        ctx.open()
        self._ctx = ctx

    def decode(self, payload: bytes) -> Pcm:
        if not payload:
            return np.zeros(0, dtype=np.int16)
        frames = self._ctx.decode(self._av.Packet(payload))
        parts = []
        for frame in frames:
            data = frame.to_ndarray()
            if data.dtype != np.int16:  # planar float from some builds
                data = np.clip(np.round(data * 32767), -32768, 32767).astype(np.int16)
            parts.append(data.reshape(-1, data.shape[-1])[0])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def register_opus() -> bool:
    """Make `opus` available to sessions and SDP if PyAV with libopus is installed."""
    if codec_by_name("opus") is not None:
        return True
    if not opus_available():
        return False
    register_codec(CodecInfo("opus", CLOCK_RATE, None, OpusEncoder, OpusDecoder, channels=2))
    return True
