"""The bridge's WebRTC side on its own: the PCM queue between two clocks, and the answer
to a browser that offers video as well (a plain phone has none: inactive, not decoded)."""

from __future__ import annotations

import numpy as np
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from sipline.sdp import Direction
from sipline.server.bridge.plan import audio_direction
from sipline.server.bridge.webrtc import PcmFifo, WebRtcPeer, use_media_address


def test_the_fifo_pads_short_reads_with_silence() -> None:
    fifo = PcmFifo(limit=100)
    fifo.push(np.arange(1, 31, dtype=np.int16))
    first = fifo.pull(20)
    assert first.tolist() == list(range(1, 21))
    second = fifo.pull(20)
    assert second.tolist() == list(range(21, 31)) + [0] * 10
    assert len(fifo) == 0


def test_the_fifo_drops_the_oldest_past_its_limit() -> None:
    fifo = PcmFifo(limit=50)
    for start in range(0, 100, 20):
        fifo.push(np.arange(start, start + 20, dtype=np.int16))
    assert len(fifo) == 50
    assert fifo.pull(50).tolist() == list(range(50, 100))


async def test_a_video_offer_gets_audio_only() -> None:
    use_media_address(["127.0.0.1"])
    browser = RTCPeerConnection()
    browser.addTrack(AudioStreamTrack())
    browser.addTrack(VideoStreamTrack())
    await browser.setLocalDescription(await browser.createOffer())
    peer = WebRtcPeer(lambda samples: None)
    try:
        answer = await peer.answer(browser.localDescription.sdp)
    finally:
        await peer.close()
        await browser.close()
    audio, video = answer.split("m=video", 1)
    assert audio_direction(audio) is Direction.SENDRECV
    assert "a=inactive" in video and "a=sendrecv" not in video
    candidates = [ln for ln in audio.splitlines() if ln.startswith("a=candidate:")]
    assert candidates and all(" 127.0.0.1 " in c for c in candidates)
