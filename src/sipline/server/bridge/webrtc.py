"""The WebRTC side of a bridged call, on aiortc: one `RTCPeerConnection` (ICE, DTLS-SRTP,
rtcp-mux, Opus), audio in and out as 48 kHz mono PCM.

aiortc is the maintained Python WebRTC stack (ICE by aioice, SRTP by pylibsrtp, Opus
by libopus through PyAV, which sipline already uses). Its host candidates are the
bridge's media address only (`use_media_address`): a server names one address to
browsers, as an ICE-lite endpoint would, rather than every interface it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Callable

import aioice.ice
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from sipline.media.codecs.base import Pcm

__all__ = ["RATE", "PcmFifo", "WebRtcPeer", "use_media_address"]

log = logging.getLogger("sipline.bridge")
# aioice logs every connectivity check at INFO: a line per candidate pair and call.
logging.getLogger("aioice").setLevel(logging.WARNING)

RATE = 48000  # the PCM rate on this side: Opus's own
_FRAME = RATE // 50  # 20 ms
_MAX_BACKLOG = RATE // 5  # keep at most 200 ms queued: latency, not completeness


def use_media_address(hosts: list[str]) -> None:
    """Gather ICE host candidates on `hosts` only (aioice asks one module function for the
    addresses of every interface, loopback excepted; a server names its media address)."""
    chosen = list(hosts)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [
        h for h in chosen if (":" in h and use_ipv6) or (":" not in h and use_ipv4)
    ]


class PcmFifo:
    """Mono int16 samples between two clocks: what one side delivers, the other takes
    at its own pace. Short reads are padded with silence; past `limit` samples the
    oldest are dropped, so a faster writer costs no growing delay."""

    def __init__(self, limit: int = _MAX_BACKLOG) -> None:
        self.limit = limit
        self._chunks: list[Pcm] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, samples: Pcm) -> None:
        if len(samples) == 0:
            return
        self._chunks.append(samples)
        self._size += len(samples)
        excess = self._size - self.limit
        while excess > 0 and self._chunks:
            head = self._chunks[0]
            if len(head) <= excess:
                self._chunks.pop(0)
                self._size -= len(head)
                excess -= len(head)
            else:
                self._chunks[0] = head[excess:]
                self._size -= excess
                excess = 0

    def pull(self, n: int) -> Pcm:
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        while filled < n and self._chunks:
            head = self._chunks[0]
            take = min(n - filled, len(head))
            out[filled : filled + take] = head[:take]
            filled += take
            if take == len(head):
                self._chunks.pop(0)
            else:
                self._chunks[0] = head[take:]
        self._size -= filled
        return out


class _FifoTrack(MediaStreamTrack):
    """An audio track that sends what is in a `PcmFifo`, 20 ms at a time, silence when it
    is empty (paced on the wall clock, as aiortc's own `AudioStreamTrack`)."""

    kind = "audio"

    def __init__(self, fifo: PcmFifo) -> None:
        super().__init__()
        self.fifo = fifo
        self._start: float | None = None
        self._timestamp = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._timestamp += _FRAME
            await asyncio.sleep(self._start + self._timestamp / RATE - time.time())
        samples = self.fifo.pull(_FRAME)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.pts = self._timestamp
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class WebRtcPeer:
    """One peer connection: `answer` a browser's offer or `offer` to one and `accept` its
    answer. Received audio goes to `on_audio` (48 kHz mono); `outgoing` is sent."""

    def __init__(self, on_audio: Callable[[Pcm], None]) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.outgoing = PcmFifo()
        self._track = _FifoTrack(self.outgoing)
        self._on_audio = on_audio
        self._readers: list[asyncio.Task[None]] = []
        self.last_media: float | None = None  # loop time of the last frame received
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._readers.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        to_mono = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                self.last_media = loop.time()
                for out in to_mono.resample(frame):
                    self._on_audio(out.to_ndarray().reshape(-1).astype(np.int16))

    @property
    def local_sdp(self) -> str:
        description = self.pc.localDescription
        return description.sdp if description is not None else ""

    async def answer(self, offer: str) -> str:
        """Take a browser's offer (RFC 8829 §5.3); our answer, candidates gathered."""
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        audio = False
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio" and not audio:
                transceiver.sender.replaceTrack(self._track)
                transceiver.direction = "sendrecv"
                audio = True
            else:  # video, a second audio stream: a plain phone has neither
                transceiver.direction = "inactive"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.local_sdp

    async def offer(self) -> str:
        """Our offer to a browser (one audio stream), candidates gathered."""
        self.pc.addTrack(self._track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.local_sdp

    async def accept(self, answer: str) -> None:
        """The browser's answer to our offer."""
        if self.pc.signalingState == "have-local-offer":
            await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def close(self) -> None:
        self._track.stop()
        for reader in self._readers:
            reader.cancel()
        try:
            await self.pc.close()
        except Exception as exc:  # a peer connection half set up: nothing more to free
            log.debug("closing a peer connection: %s", exc)
