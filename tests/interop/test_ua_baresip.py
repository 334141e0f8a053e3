"""The sipline user agent and baresip, both registered with `sipline serve`, calling
each other: audio both ways where each side's recording matches what the other played
(cross-correlation of known sweeps), DTMF each way, hold and resume from either side,
BYE from either side, and a call that survives 5% packet loss in a relay with the loss
in its statistics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from interop_helpers import HOST, ServeProcess, checked, free_port_pair, start_serve
from ua_baresip import Baresip

from sipline.core.timers import TimerConfig
from sipline.media.audio import ArraySink, cross_correlate, to_int16
from sipline.media.codecs.base import Pcm
from sipline.media_io.audio_files import read_wav, write_wav
from sipline.phone import (
    CallHeld,
    CallResumed,
    DtmfReceived,
    EndedBy,
    UserAgent,
)
from sipline.sdp import Direction
from sipline.storage.sqlite import SqliteStore
from sipline.testing.relay import LossyRelay, relay_pair

pytestmark = pytest.mark.interop

DOMAIN = "example.com"
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
RATE = 8000


def sweep(seconds: float, f0: float, rate: float) -> Pcm:
    t = np.arange(round(seconds * RATE)) / RATE
    return to_int16(10000 * np.sin(2 * np.pi * (f0 * t + rate * t * t)))


OURS = sweep(2.5, 300, 300)  # what sipline plays: 300 Hz rising
THEIRS = sweep(12.0, 1800, -50)  # baresip's microphone: 1800 Hz falling, slowly


def bindings(server: ServeProcess) -> set[str]:
    store = SqliteStore(server.workdir / "sipline.db")
    try:
        return {b.aor for b in store.all_bindings()}
    finally:
        store.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    store = SqliteStore(workdir / "sipline.db")
    if not store.has_domain(DOMAIN):
        store.add_domain(DOMAIN)
    for name, password in USERS.items():
        store.add_user(name, DOMAIN, password)
    store.close()
    # baresip 1.0.0 answers MD5 challenges only (see ua_baresip.py).
    config = f'[server]\ndomains = ["{DOMAIN}"]\n[auth]\nalgorithms = ["MD5"]\n'
    proc = start_serve(workdir, config, tls=False)
    with checked(proc):
        yield proc


@pytest.fixture
def bob(server: ServeProcess, tmp_path: Path) -> Iterator[Baresip]:
    microphone = tmp_path / "bob-mic.wav"
    write_wav(microphone, THEIRS)
    agent = Baresip(
        "bob",
        tmp_path,
        account=(
            f'<sip:bob@{DOMAIN}>;auth_pass={USERS["bob"]};outbound="sip:{HOST}:{server.port}"'
            ";answermode=auto;regint=600;audio_codecs=PCMU"
        ),
        microphone=microphone,
        rtp_base=free_port_pair() & ~1,
    )
    try:
        deadline = time.monotonic() + 15
        while f"bob@{DOMAIN}" not in bindings(server):
            assert time.monotonic() < deadline, agent.log()
            time.sleep(0.1)
        yield agent
    finally:
        agent.stop()


def alice(server: ServeProcess, **kwargs: object) -> UserAgent:
    return UserAgent(
        f"alice@{DOMAIN}",
        password=USERS["alice"],
        server=f"{HOST}:{server.port}",
        listen=f"{HOST}:0",
        timers=TimerConfig(t1=0.1),
        **kwargs,  # type: ignore[arg-type]
    )


def assert_heard(reference: Pcm, recorded: Pcm, minimum: float = 0.85) -> None:
    match = cross_correlate(reference, recorded, min_overlap=0.9)
    assert match.peak > minimum, match
    assert 0 <= match.lag < RATE  # what we recorded is the reference, under a second late


def assert_heard_in_pieces(reference: Pcm, recorded: Pcm, *, piece_s: float = 0.5) -> None:
    """Each half second of `reference` is in `recorded`, in order. baresip (without its
    plc module) records no audio for a lost packet, so after each loss the rest comes
    20 ms early: a single correlation over the whole would smear."""
    size = round(piece_s * RATE)
    lags = []
    for start in range(0, len(reference) - size + 1, size):
        match = cross_correlate(reference[start : start + size], recorded, min_overlap=1.0)
        if match.peak > 0.8:
            lags.append(match.lag - start)
    pieces = len(reference) // size
    assert len(lags) >= 0.8 * pieces, (len(lags), pieces)
    assert lags == sorted(lags, reverse=True) or max(lags) - min(lags) < RATE // 2, lags


async def _packets_stall(call: object, seconds: float = 0.6) -> bool:
    stats = call.stats  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)
    before = stats().packets_received
    await asyncio.sleep(seconds)
    return bool(stats().packets_received <= before + 1)


async def test_sipline_calls_baresip(server: ServeProcess, bob: Baresip) -> None:
    heard = ArraySink()
    async with alice(server) as ua:
        call = await ua.call(f"sip:bob@{DOMAIN}", play=OURS, record=heard)
        await asyncio.wait_for(call.answered, 10)
        await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
        assert call.playback is not None
        await asyncio.wait_for(asyncio.shield(call.playback), 10)
        await asyncio.sleep(0.5)
        # DTMF from us, as RFC 4733 events: baresip logs each key it decodes.
        await call.send_dtmf("159#")
        for key in "159#":
            await asyncio.to_thread(bob.wait_log, f"received event: '{key}' (end=1)")
        # We hold, baresip goes quiet (it answers recvonly), we resume.
        assert await call.hold()
        assert call.media.direction is Direction.SENDONLY
        assert await _packets_stall(call)
        assert await call.resume()
        before = call.stats().packets_received
        await asyncio.sleep(0.5)
        assert call.stats().packets_received > before + 10
        await call.hangup()
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
        assert call.end_reason is not None and call.end_reason.by is EndedBy.LOCAL
    assert_heard(OURS, bob.decoded())
    assert_heard(THEIRS[: 2 * RATE], heard.samples())


async def test_baresip_calls_sipline(server: ServeProcess, bob: Baresip, tmp_path: Path) -> None:
    recording = tmp_path / "alice-heard.wav"

    async def answer(call: object) -> None:
        await call.answer(play=OURS, record=recording)  # type: ignore[attr-defined]

    async with alice(server, on_call=answer) as ua:
        await asyncio.to_thread(bob.command, "dial", f"sip:alice@{DOMAIN}")
        await asyncio.to_thread(bob.wait_event, "CALL_ESTABLISHED")
        (call,) = ua.calls
        await asyncio.wait_for(call.answered, 5)
        await asyncio.sleep(3.0)  # the sweep, and some of theirs
        # DTMF from baresip reaches us as RFC 4733 events.
        for key in "73":
            await asyncio.to_thread(bob.command, "sndcode", key)
            await asyncio.sleep(0.3)
        digits = [e.digit for e in call.history if isinstance(e, DtmfReceived)]
        assert digits == ["7", "3"], call.history
        # baresip holds us, then resumes.
        await asyncio.to_thread(bob.command, "hold")
        await _wait(lambda: any(isinstance(e, CallHeld) and e.by_remote for e in call.history))
        assert call.media.direction is Direction.RECVONLY
        await asyncio.to_thread(bob.command, "resume")
        await _wait(lambda: any(isinstance(e, CallResumed) and e.by_remote for e in call.history))
        assert call.media.direction is Direction.SENDRECV
        # BYE from baresip ends our side too.
        await asyncio.to_thread(bob.command, "hangup")
        ended = await asyncio.wait_for(call.ended, 10)
        assert ended.by is EndedBy.REMOTE
        await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
    assert_heard(OURS, bob.decoded())
    assert_heard(THEIRS[: 2 * RATE], read_wav(recording))


async def test_a_lossy_call_survives_and_reports_the_loss(
    server: ServeProcess, bob: Baresip
) -> None:
    relays: list[LossyRelay] = []

    async def through_relay(address: tuple[str, int]) -> tuple[str, int]:
        rtp, rtcp = await relay_pair(address, loss=0.05, seed=11)
        relays.extend((rtp, rtcp))
        return rtp.public

    heard = ArraySink()
    try:
        async with alice(server, media_mapper=through_relay) as ua:
            played = sweep(5.0, 300, 120)
            call = await ua.call(f"sip:bob@{DOMAIN}", play=played, record=heard)
            await asyncio.wait_for(call.answered, 10)
            assert call.playback is not None
            await asyncio.wait_for(asyncio.shield(call.playback), 15)
            await asyncio.sleep(1.0)
            stats = call.stats()
            assert call.is_active  # 5% loss does not end a call
            await call.hangup()
            await asyncio.to_thread(bob.wait_event, "CALL_CLOSED")
        rtp = relays[0]
        assert rtp.forwarded[0] > 200 and rtp.forwarded[1] > 200, rtp.forwarded  # both ways
        assert stats.packets_lost > 0 and 1.0 < stats.loss_percent < 12.0, stats
        assert abs(stats.packets_lost - rtp.dropped[0]) <= 3, (stats, rtp.dropped)
        assert stats.mos < 4.3
        assert_heard_in_pieces(played, bob.decoded())
        assert_heard(THEIRS[: 2 * RATE], heard.samples(), minimum=0.8)
    finally:
        for relay in relays:
            relay.close()


async def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
