"""Conference rooms through a real `SipServer` and real user agents on loopback: five
participants playing five tones each hear the other four and not their own; `*6`
mutes; a wrong PIN is refused after three tries; a full room answers 486; the room
state reaches the database and a queued kick ends a participant's call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from sipline.core.timers import TimerConfig
from sipline.media.audio import ArraySink, ToneSource
from sipline.media.audio_files import read_wav
from sipline.media.codecs.opus import opus_available
from sipline.phone import CallFailed, EndedBy, MediaOptions, UserAgent
from sipline.server.config import ServerConfig, parse_listen
from sipline.server.media_services.rooms_config import RoomConfig
from sipline.server.sip_server import SipServer
from sipline.storage.conference import ConferenceStore
from sipline.storage.sqlite import SqliteStore

DOMAIN = "example.com"
HOST = "127.0.0.1"
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
TONES = (500.0, 700.0, 900.0, 1100.0, 1300.0)
USERS = [f"u{i}" for i in range(len(TONES))]


def share_at(samples: np.ndarray, hz: float, rate: int = 8000) -> float:
    """Share of the signal's energy within ±25 Hz of `hz` (Hann window)."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    total = float(spectrum.sum()) or 1.0
    return float(spectrum[np.abs(freqs - hz) <= 25].sum()) / total


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SipServer]:
    db = tmp_path / "sipline.db"
    store = SqliteStore(db)
    store.add_domain(DOMAIN)
    for user in USERS:
        store.add_user(user, DOMAIN, f"{user}-pw")
    store.close()
    config = ServerConfig(
        listen=[parse_listen(f"udp:{HOST}:0")],
        domains=[DOMAIN],
        database=db,
        rooms=[RoomConfig("locked", pin="1234"), RoomConfig("small", max_participants=1)],
    )
    srv = SipServer(config)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def _agent(server: SipServer, user: str) -> UserAgent:
    port = server.endpoint.local_addresses[0].port
    return UserAgent(
        f"{user}@{DOMAIN}",
        password=f"{user}-pw",
        server=f"{HOST}:{port}",
        listen=f"{HOST}:0",
        timers=FAST,
    )


async def _window(sinks: list[ArraySink], seconds: float) -> list[np.ndarray]:
    """What each sink records over the next `seconds`."""
    starts = [len(s.samples()) for s in sinks]
    await asyncio.sleep(seconds)
    return [s.samples()[start:] for s, start in zip(sinks, starts, strict=True)]


@pytest.mark.slow
async def test_five_tones_each_hears_the_other_four_and_mute(server: SipServer) -> None:
    agents = [_agent(server, u) for u in USERS]
    sinks = [ArraySink() for _ in USERS]
    try:
        for ua in agents:
            await ua.start()
        calls = [
            await ua.call(f"sip:room-demo@{DOMAIN}", record=sink)
            for ua, sink in zip(agents, sinks, strict=True)
        ]
        for call, hz in zip(calls, TONES, strict=True):
            await asyncio.wait_for(call.answered, 5)
            call.play(ToneSource(hz, amplitude=0.12))
        await asyncio.sleep(0.6)  # past the join sounds
        heard = await _window(sinks, 1.0)
        for i, samples in enumerate(heard):
            assert len(samples) >= 7000, f"{USERS[i]} heard too little"
            for j, hz in enumerate(TONES):
                share = share_at(samples, hz)
                if i == j:
                    assert share < 0.01, f"{USERS[i]} hears its own tone ({share:.3f})"
                else:
                    assert share > 0.1, f"{USERS[i]} misses {hz} Hz ({share:.3f})"
        store = ConferenceStore(server.config.database)
        (state,) = store.rooms()
        assert state.name == "demo" and len(state.members) == 5
        # *6: the first participant mutes itself; the others stop hearing its tone.
        await calls[0].send_dtmf("*6")
        await asyncio.sleep(0.5)
        heard = await _window(sinks, 1.0)
        for samples in heard[1:]:
            assert share_at(samples, TONES[0]) < 0.01
            assert share_at(samples, TONES[1 if samples is not heard[1] else 2]) > 0.1
        assert any(m["muted"] for m in store.rooms()[0].members)
        # A kick queued by `sipline conference kick` ends the call of member 5.
        store.queue("demo", "kick", 5)
        ended = await asyncio.wait_for(calls[4].ended, 5)
        assert ended.by is EndedBy.REMOTE
        store.close()
        for call in calls[:4]:
            await call.hangup()
    finally:
        for ua in agents:
            await ua.close()


async def test_a_wrong_pin_is_refused_after_three_tries(server: SipServer) -> None:
    async with _agent(server, "u0") as ua:
        call = await ua.call(f"sip:room-locked@{DOMAIN}")
        await asyncio.wait_for(call.answered, 5)
        for _ in range(3):
            await call.send_dtmf("99#")
        ended = await asyncio.wait_for(call.ended, 10)
        assert ended.by is EndedBy.REMOTE


async def test_the_right_pin_lets_in(server: SipServer) -> None:
    async with _agent(server, "u0") as ua:
        call = await ua.call(f"sip:room-locked@{DOMAIN}")
        await asyncio.wait_for(call.answered, 5)
        await call.send_dtmf("1234#")
        await asyncio.sleep(0.5)
        assert call.is_active
        assert len(server.services.find("room-locked").built.rooms["locked"]) == 1  # type: ignore[union-attr]
        await call.hangup()


async def test_a_full_room_is_busy(server: SipServer) -> None:
    async with _agent(server, "u0") as first, _agent(server, "u1") as second:
        call = await first.call(f"sip:room-small@{DOMAIN}")
        await asyncio.wait_for(call.answered, 5)
        late = await second.call(f"sip:room-small@{DOMAIN}")
        with pytest.raises(CallFailed) as failed:
            await asyncio.wait_for(late.answered, 5)
        assert failed.value.status == 486
        await call.hangup()


@pytest.fixture
async def recording_server(tmp_path: Path) -> AsyncIterator[SipServer]:
    db = tmp_path / "sipline.db"
    store = SqliteStore(db)
    store.add_domain(DOMAIN)
    for user in USERS:
        store.add_user(user, DOMAIN, f"{user}-pw")
    store.close()
    rooms = [RoomConfig("rec", record=tmp_path / "rec.wav", moderators=(f"u0@{DOMAIN}",))]
    config = ServerConfig(
        listen=[parse_listen(f"udp:{HOST}:0")], domains=[DOMAIN], database=db, rooms=rooms
    )
    srv = SipServer(config)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.mark.skipif(not opus_available(), reason="Opus needs PyAV with libopus")
async def test_opus_and_g711_mixed_recorded_and_a_moderator_mutes_the_others(
    recording_server: SipServer, tmp_path: Path
) -> None:
    server = recording_server
    port = server.endpoint.local_addresses[0].port
    agents = [
        UserAgent(f"{u}@{DOMAIN}", password=f"{u}-pw", server=f"{HOST}:{port}",
                  listen=f"{HOST}:0", timers=FAST,
                  media=MediaOptions(codecs=("opus",) if u == "u1" else ("PCMU",)))
        for u in USERS[:3]
    ]  # fmt: skip
    sinks = [ArraySink() for _ in agents]
    try:
        calls = []
        for ua, sink, hz in zip(agents, sinks, TONES, strict=False):
            await ua.start()
            call = await ua.call(f"sip:room-rec@{DOMAIN}", record=sink)
            await asyncio.wait_for(call.answered, 5)
            call.play(ToneSource(hz, amplitude=0.12, sample_rate=call.media.session.sample_rate,
                                 frame_size=call.media.session.frame_size))  # fmt: skip
            calls.append(call)
        assert calls[1].media.codec == "opus" and calls[0].media.codec == "PCMU"
        await asyncio.sleep(0.6)
        heard = await _window(sinks, 1.0)
        opus_heard = heard[1]  # 48 kHz: judge it at its own rate
        assert share_at(opus_heard, TONES[0], rate=48000) > 0.1
        assert share_at(opus_heard, TONES[2], rate=48000) > 0.1
        assert share_at(opus_heard, TONES[1], rate=48000) < 0.01
        assert share_at(heard[0], TONES[1]) > 0.1  # the Opus participant is heard
        assert share_at(heard[2], TONES[1]) > 0.1
        await calls[0].send_dtmf("*9")  # u0 moderates: everyone else muted
        await asyncio.sleep(0.5)
        heard = await _window(sinks, 1.0)
        assert share_at(heard[0], TONES[1]) < 0.01 and share_at(heard[0], TONES[2]) < 0.01
        assert share_at(heard[2], TONES[0]) > 0.1  # the moderator is still heard
        for call in calls:
            await call.hangup()
    finally:
        for ua in agents:
            await ua.close()
    recorded = read_wav(tmp_path / "rec.wav")
    assert len(recorded) > 2 * 8000
    middle = recorded[len(recorded) // 3 : len(recorded) // 3 + 8000]
    assert all(share_at(middle, hz) > 0.05 for hz in TONES[:3])


async def test_a_room_address_without_a_name_is_not_found(server: SipServer) -> None:
    async with _agent(server, "u0") as ua:
        call = await ua.call(f"sip:room-@{DOMAIN}")
        with pytest.raises(CallFailed) as failed:
            await asyncio.wait_for(call.answered, 5)
        assert failed.value.status == 404
