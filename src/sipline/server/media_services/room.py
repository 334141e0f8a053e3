"""A conference room at run time: its participants' audio in and out, one mix every
20 ms on the media clock (`sipline.media_io.pacing`: one timer for every session and
room of the process, on a fixed grid, never driven by packet arrival).

Each participant's session decodes what it receives through its own jitter buffer
(`MediaSession`) into a short queue here; at each tick the room takes one frame per
participant (8 kHz, the mixing rate), mixes (`sipline.media.mixer`) and queues each
listener's frame, which the listener's session sends at its next tick. Listeners of
the full mix at one codec share one encode (`MediaSession.shared_payload`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sipline.media.audio import tone
from sipline.media.codecs.base import Encoder, Pcm
from sipline.media.codecs.registry import codec_by_name
from sipline.media.mixer import Mixer, MixResult
from sipline.media_io.pacing import Pacer, loop_clock, pacer_for
from sipline.media_io.session import MediaSession
from sipline.media_io.sources import WavFileSink

if TYPE_CHECKING:
    from sipline.phone.call import Call

__all__ = ["MIX_RATE", "Member", "Room"]

log = logging.getLogger("sipline.conference")

MIX_RATE = 8000
FRAME = 160  # 20 ms at the mixing rate
_QUEUE_FRAMES = 3  # input frames held at most (60 ms): older ones are dropped
_TONE = "tone"  # the mixer key of the join/leave sounds (a talker nobody listens as)


def _down(frame: Pcm, rate: int) -> Pcm:
    """A session frame at `rate` -> the mixing rate (mean of each group: a boxcar
    low-pass, continuous across frames since a frame holds whole groups)."""
    if rate == MIX_RATE:
        return frame
    k = rate // MIX_RATE
    usable = len(frame) - len(frame) % k
    out: Pcm = frame[:usable].reshape(-1, k).mean(axis=1).astype(np.int16)
    return out


def _up(frame: Pcm, rate: int) -> Pcm:
    return frame if rate == MIX_RATE else np.repeat(frame, rate // MIX_RATE)


def _tones(*hz: float) -> Pcm:
    return np.concatenate([tone(f, duration_s=0.12, amplitude=0.25) for f in hz])


JOIN_SOUND = _tones(660, 880)
LEAVE_SOUND = _tones(880, 660)


class _Input:
    """A session's sink: decoded frames queued for the mixer."""

    def __init__(self) -> None:
        self.frames: deque[Pcm] = deque(maxlen=_QUEUE_FRAMES)

    def write_frame(self, frame: Pcm) -> None:
        self.frames.append(frame)


class _Output:
    """A session's source: the frames the mixer made for this listener; silence
    when it has none (a source that returned None would end the playing)."""

    def __init__(self, session_rate: Callable[[], int]) -> None:
        self.frames: deque[Pcm] = deque(maxlen=_QUEUE_FRAMES)
        self._rate = session_rate

    def read_frame(self) -> Pcm:
        if self.frames:
            return self.frames.popleft()
        return np.zeros(self._rate() // 50, dtype=np.int16)


@dataclass(eq=False)
class Member:
    """One participant: their call, audio queues, who they are."""

    number: int  # shown by `sipline conference show`, used by kick/mute
    session: MediaSession
    who: str  # the caller's AOR
    call: Call | None = None  # None: a bare session (the benchmark)
    moderator: bool = False
    joined_at: float = field(default_factory=time.time)
    inbox: _Input = field(default_factory=_Input)
    outbox: _Output | None = None

    @property
    def rate(self) -> int:
        return self.session.sample_rate

    @property
    def codec(self) -> str:
        return self.session.codec_name


class Room:
    """Participants of one room and its mixing clock. `on_empty` is called when the
    last participant left (the service forgets the room)."""

    def __init__(
        self,
        name: str,
        *,
        record: Path | None = None,
        on_change: Callable[[Room], None] | None = None,
        on_empty: Callable[[Room], None] | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.name = name
        self.members: dict[int, Member] = {}
        self.mixer: Mixer[object] = Mixer(FRAME)
        self.mixer.add(_TONE)
        self._sound: deque[Pcm] = deque()
        self._next_number = 1
        self._pacer = pacer
        self._on_change = on_change
        self._on_empty = on_empty
        self._record = WavFileSink(record) if record is not None else None
        self._encoders: dict[str, Encoder] = {}
        self._result: MixResult[object] | None = None
        self._full_at: dict[int, Pcm] = {}
        self._encoded: dict[str, bytes] = {}
        self._due = 0.0
        self.ticks = 0
        self.late_ticks = 0  # ticks run later than a frame after their due time
        self.mix_seconds = 0.0  # time spent mixing (the benchmark's figure)

    def __len__(self) -> int:
        return len(self.members)

    # -- joining and leaving ----------------------------------------------------------------
    def join(self, call: Call, who: str, *, moderator: bool = False) -> Member:
        member = self.add(call.media.session, who, moderator=moderator, call=call)
        call.record(member.inbox)  # the call keeps them across re-INVITEs
        call.play(member.outbox)
        return member

    def add(
        self, session: MediaSession, who: str, *, moderator: bool = False, call: Call | None = None
    ) -> Member:
        """A participant by its media session (`join` for a call)."""
        member = Member(self._next_number, session, who, call, moderator)
        self._next_number += 1
        member.outbox = _Output(lambda: session.sample_rate)
        self.members[member.number] = member
        self.mixer.add(member.number)
        session.record(member.inbox)
        session.play(member.outbox)
        session.shared_payload = self._shared_payload
        self._play_sound(JOIN_SOUND)
        if self._pacer is None:
            # Real time, not the endpoint's clock: the mix feeds RTP that the callers
            # play as it arrives, one 20 ms frame per 20 ms (sipline.media_io.pacing).
            self._pacer = pacer_for(loop_clock(), 20)
        if len(self.members) == 1:
            self._due = self._pacer.add(self)
        self._changed()
        return member

    def leave(self, member: Member) -> None:
        if self.members.pop(member.number, None) is None:
            return
        self.mixer.remove(member.number)
        member.session.shared_payload = None
        if self.members:
            self._play_sound(LEAVE_SOUND)
            self._changed()
            return
        if self._pacer is not None:
            self._pacer.remove(self)
        if self._record is not None:
            self._record.close()
            self._record = None
        self._changed()
        if self._on_empty is not None:
            self._on_empty(self)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    def _play_sound(self, sound: Pcm) -> None:
        self._sound.clear()
        self._sound.extend(sound[i : i + FRAME] for i in range(0, len(sound) - FRAME + 1, FRAME))

    # -- controls -----------------------------------------------------------------------------
    def set_muted(self, number: int, muted: bool) -> bool:
        p = self.mixer.participants.get(number)
        if p is None:
            return False
        p.muted = muted
        self._changed()
        return True

    def muted(self, number: int) -> bool:
        p = self.mixer.participants.get(number)
        return p is not None and p.muted

    # -- the clock ----------------------------------------------------------------------------
    def on_tick(self, now: float) -> None:
        started = time.perf_counter()
        if now - self._due >= 0.02:
            self.late_ticks += 1
        self._due = max(self._due + 0.02, now - 0.02)
        self.ticks += 1
        frames: dict[object, Pcm | None] = {}
        for number, member in self.members.items():
            inbox = member.inbox.frames
            frames[number] = _down(inbox.popleft(), member.rate) if inbox else None
        frames[_TONE] = self._sound.popleft() if self._sound else None
        result = self.mixer.mix(frames)
        self._result = result
        self._full_at = {MIX_RATE: result.full}
        self._encoded = {}
        for number, member in self.members.items():
            heard = result.for_(number)
            rate = member.rate
            if result.is_full(heard) and rate != MIX_RATE:
                shared = self._full_at.get(rate)
                if shared is None:
                    shared = self._full_at[rate] = _up(heard, rate)
                heard = shared
            elif rate != MIX_RATE:
                heard = _up(heard, rate)
            assert member.outbox is not None
            member.outbox.frames.append(heard)
        if self._record is not None:
            self._record.write_frame(result.full)
        self.mix_seconds += time.perf_counter() - started

    def _shared_payload(self, codec: str, frame: Pcm) -> bytes | None:
        """One encode of the full mix per codec per tick, for every listener of it."""
        if not any(frame is full for full in self._full_at.values()):
            return None
        payload = self._encoded.get(codec)
        if payload is None:
            encoder = self._encoders.get(codec)
            if encoder is None:
                info = codec_by_name(codec)
                if info is None:
                    return None
                encoder = self._encoders[codec] = info.make_encoder()
            payload = self._encoded[codec] = encoder.encode(frame)
        return payload
