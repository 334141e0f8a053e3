"""A browser's media side for bridge tests: an aiortc peer connection that plays a
tone and keeps what it hears (48 kHz mono), as a browser phone's would."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48000
FRAME = 960


class ToneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, hz: float) -> None:
        super().__init__()
        self.hz = hz
        self._start: float | None = None
        self._n = 0

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.time()
        else:
            await asyncio.sleep(self._start + self._n / RATE - time.time())
        t = (np.arange(FRAME) + self._n) / RATE
        samples = (0.3 * 32767 * np.sin(2 * np.pi * self.hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.pts = self._n
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        self._n += FRAME
        return frame


class BrowserPeer:
    """Offer or answer like a browser; `heard()` is the received audio."""

    def __init__(self, hz: float) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ToneTrack(hz))
        self.chunks: list[np.ndarray] = []
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        mono = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                for out in mono.resample(frame):
                    self.chunks.append(out.to_ndarray().reshape(-1))

    def heard(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)

    async def offer(self) -> bytes:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp.encode()

    async def answer(self, offer: bytes) -> bytes:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer.decode(), "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp.encode()

    async def accept(self, answer: bytes) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer.decode(), "answer"))

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        await self.pc.close()
