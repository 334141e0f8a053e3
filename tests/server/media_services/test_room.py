"""A room without sockets: sessions' decoded frames in, ticks driven by hand, each
listener's frame and encoded payload out (one encode of the full mix per codec)."""

from __future__ import annotations

import numpy as np
import pytest

from sipline.media.codecs.g711 import ulaw_decode
from sipline.media.codecs.opus import opus_available, register_opus
from sipline.media_io.session import MediaSession, StreamConfig
from sipline.server.media_services.room import FRAME, JOIN_SOUND, Room


class _ManualPacer:
    """Stands in for the media clock: the test calls `on_tick` itself."""

    def __init__(self) -> None:
        self.members: list[object] = []

    def add(self, session: object) -> float:
        self.members.append(session)
        return 0.0

    def remove(self, session: object) -> None:
        self.members.remove(session)


def _const(value: int, n: int = FRAME) -> np.ndarray:
    return np.full(n, value, dtype=np.int16)


async def _room(n: int) -> tuple[Room, list[MediaSession], _ManualPacer]:
    pacer = _ManualPacer()
    room = Room("t", pacer=pacer)  # type: ignore[arg-type]
    sessions = [MediaSession() for _ in range(n)]
    for i, s in enumerate(sessions):
        room.add(s, f"p{i}")
    room._sound.clear()  # no join sound in these frames
    return room, sessions, pacer


async def test_each_listener_gets_mix_minus_and_listeners_share_one_encode() -> None:
    room, sessions, pacer = await _room(4)
    assert pacer.members == [room]  # one clock entry per room, not per participant
    members = list(room.members.values())
    members[0].inbox.write_frame(_const(3000))
    members[1].inbox.write_frame(_const(-2000))
    room.on_tick(0.0)
    out = [m.outbox.frames[0] for m in members]  # type: ignore[union-attr]
    assert (out[0] == -2000).all() and (out[1] == 3000).all()
    assert (out[2] == 1000).all() and out[2] is out[3]  # the full mix, one array
    encodes = []
    payloads = []
    for s in sessions:
        s._encoder = _Counting(s._encoder, encodes)  # type: ignore[method-assign]
        payloads.append(s._next_payload()[0])
    assert payloads[2] == payloads[3]
    assert len(encodes) == 2  # the two talkers' own mixes; the listeners' came from the room
    assert abs(int(ulaw_decode(payloads[2])[0]) - 1000) < 40


async def test_join_sound_and_leave_stop_the_clock() -> None:
    pacer = _ManualPacer()
    room = Room("t", pacer=pacer)  # type: ignore[arg-type]
    a, b = MediaSession(), MediaSession()
    first = room.add(a, "a")
    room.add(b, "b")
    room.on_tick(0.0)
    heard = first.outbox.frames[-1]  # type: ignore[union-attr]
    assert np.array_equal(heard, JOIN_SOUND[:FRAME])
    room.leave(first)
    assert pacer.members == [room]
    (second,) = room.members.values()
    room.leave(second)
    assert pacer.members == []  # nobody left: no more ticks


@pytest.mark.skipif(not opus_available(), reason="Opus needs PyAV with libopus")
async def test_an_opus_listener_gets_the_mix_at_48_khz() -> None:
    register_opus()
    room, sessions, _ = await _room(2)
    sessions[1].configure(StreamConfig(None, 111, "opus"))
    first, second = room.members.values()
    first.inbox.write_frame(_const(1000))
    room.on_tick(0.0)
    frame = second.outbox.frames[-1]  # type: ignore[union-attr]
    assert len(frame) == 960 and (frame == 1000).all()


class _Counting:
    def __init__(self, inner: object, calls: list[int]) -> None:
        self.inner = inner
        self.calls = calls

    def encode(self, pcm: np.ndarray) -> bytes:
        self.calls.append(1)
        return self.inner.encode(pcm)  # type: ignore[attr-defined,no-any-return]
