"""SRTP with SDES keys across hold and resume, against baresip: both sides keep their
keys over the re-INVITEs, so our crypto context must go on (RFC 4568 §7.1.4) and
baresip must see no SRTP or SRTCP packet of ours as a replay (RFC 3711 §9.2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from interop_helpers import HOST, free_port_pair
from ua_baresip import Baresip

from sipline.media.audio import to_int16
from sipline.media.srtp import srtp_available
from sipline.media_io.audio_files import write_wav
from sipline.phone import MediaOptions, UserAgent

pytestmark = [
    pytest.mark.interop,
    pytest.mark.slow,
    pytest.mark.skipif(not srtp_available(), reason="pylibsrtp is not installed"),
]


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * 8000)) / 8000
    return to_int16(8000 * np.sin(2 * np.pi * 440 * t))


async def test_hold_and_resume_with_srtp_cause_no_replays_at_baresip(tmp_path: Path) -> None:
    microphone = tmp_path / "mic.wav"
    write_wav(microphone, _tone(20.0))
    bob = Baresip(
        "bob",
        tmp_path,
        account=f"<sip:bob@{HOST}>;answermode=auto;regint=0;audio_codecs=PCMU;mediaenc=srtp-mand",
        microphone=microphone,
        rtp_base=free_port_pair() & ~1,
        extra_modules=("srtp.so",),
    )
    media = MediaOptions(codecs=("PCMU",), srtp="mandatory", rtcp_interval_s=0.3)
    try:
        async with UserAgent("alice@example.com", listen=f"{HOST}:0", media=media) as ua:
            call = await ua.call(bob.uri, play=_tone(20.0))
            await asyncio.wait_for(call.answered, 10)
            await asyncio.sleep(1.5)
            for _ in range(2):
                assert await call.hold()
                await asyncio.sleep(1.0)
                assert await call.resume()
                await asyncio.sleep(1.5)
            assert call.media.secure
            failures = call.media.session.srtp_failures
            await call.hangup()
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
        log = bob.log(full=True)
    finally:
        bob.stop()
    assert "Using media encryption 'srtp-mand'" in log
    assert "failed to unprotect" not in log and "replay" not in log.lower(), log[-3000:]
    assert failures == 0
