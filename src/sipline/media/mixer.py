"""The conference mixer, sans-I/O: one call per 20 ms frame, pure numpy.

As Asterisk's ConfBridge and FreeSWITCH's mod_conference do, audio is mixed in 16-bit
linear: the talkers' frames are summed in 32 bits, and each listener gets the sum
clipped to 16 bits (saturation, not wrap-around). A talker gets the sum minus its own
frame, so nobody hears their own voice back; everyone not talking gets the same
array object, the full mix, so one encode per codec serves them all
(`MixResult.is_full`). Silence detection keeps silent participants out of the sum: a
frame below `threshold_dbfs` (after a short hangover, so word endings are not cut)
costs one energy measure and no arithmetic in the mix.

Participants are keys of any hashable type. Talk gains scale what a participant says
(muted: 0, out of the sum), listen gains what they hear (a listener with a gain other
than 1 gets their own copy). Frames are int16 arrays of one size at one rate; the
caller decodes and resamples.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from sipline.media.codecs.base import Pcm

__all__ = ["MixResult", "Mixer", "Participant", "gain_for_step", "saturate"]

K = TypeVar("K", bound=Hashable)

_INT16_MIN, _INT16_MAX = -32768, 32767
DEFAULT_THRESHOLD_DBFS = -50.0  # quieter than this is silence (a line's noise floor)
DEFAULT_HANGOVER_FRAMES = 10  # 200 ms of talk state kept after the last loud frame
VOLUME_STEP_DB = 3.0
MAX_VOLUME_STEPS = 4  # ±12 dB


def saturate(mix: np.ndarray) -> Pcm:
    """32-bit sum -> int16, clipped at full scale."""
    out: Pcm = np.clip(mix, _INT16_MIN, _INT16_MAX).astype(np.int16)
    return out


def gain_for_step(step: int) -> float:
    """Volume steps of 3 dB (DTMF volume keys) as a linear gain."""
    return float(10 ** (step * VOLUME_STEP_DB / 20))


@dataclass(slots=True)
class Participant:
    muted: bool = False
    talk_step: int = 0  # volume steps of what they say
    listen_step: int = 0  # ... and of what they hear
    hangover: int = 0  # frames left in the talking state
    talking: bool = False
    frames_in: int = 0  # frames given, and of those mixed (not silent): the cost counters
    frames_mixed: int = 0


@dataclass(slots=True)
class MixResult(Generic[K]):
    """One frame's outcome: `full` (every talker) and `minus[k]` for each talker `k`."""

    full: Pcm
    minus: dict[K, Pcm] = field(default_factory=dict)
    gains: dict[K, float] = field(default_factory=dict)

    def for_(self, key: K) -> Pcm:
        """What `key` hears: the mix without its own voice, at its listening volume."""
        frame = self.minus.get(key, self.full)
        gain = self.gains.get(key)
        if gain is not None:
            return saturate(frame.astype(np.float32) * gain)
        return frame

    def is_full(self, frame: Pcm) -> bool:
        """Is this the shared full mix (so its encoding can be shared too)?"""
        return frame is self.full

    @property
    def talkers(self) -> list[K]:
        return list(self.minus)


class Mixer(Generic[K]):
    """Mixes one frame per call; holds each participant's talk state and gains."""

    def __init__(
        self,
        frame_size: int = 160,
        *,
        threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS,
        hangover_frames: int = DEFAULT_HANGOVER_FRAMES,
    ) -> None:
        self.frame_size = frame_size
        # Mean square of a full-scale int16 sine is 32767**2 / 2 (0 dBFS by rms_dbfs).
        self._threshold_ms = (32768.0**2) * 10 ** (threshold_dbfs / 10)
        self.hangover_frames = hangover_frames
        self.participants: dict[K, Participant] = {}
        self._silence = np.zeros(frame_size, dtype=np.int16)

    def add(self, key: K) -> Participant:
        return self.participants.setdefault(key, Participant())

    def remove(self, key: K) -> None:
        self.participants.pop(key, None)

    def _is_talking(self, p: Participant, frame: Pcm) -> bool:
        f = frame.astype(np.float32)
        if float(np.dot(f, f)) / len(f) >= self._threshold_ms:
            p.hangover = self.hangover_frames
        elif p.hangover > 0:
            p.hangover -= 1
        else:
            return False
        return True

    def mix(self, frames: Mapping[K, Pcm | None]) -> MixResult[K]:
        """`frames`: each participant's decoded frame this interval (None: nothing
        arrived). Participants not in `frames` are listeners only this time."""
        total: np.ndarray | None = None
        talking: list[tuple[K, np.ndarray]] = []
        for key, frame in frames.items():
            p = self.participants.get(key)
            if p is None or frame is None:
                continue
            p.frames_in += 1
            p.talking = not p.muted and self._is_talking(p, frame)
            if not p.talking:
                continue  # silent or muted: no part of the sum
            p.frames_mixed += 1
            own = frame.astype(np.int32)
            if p.talk_step:
                own = (own * gain_for_step(p.talk_step)).astype(np.int32)
            talking.append((key, own))
            total = own.copy() if total is None else np.add(total, own, out=total)
        if total is None:
            result: MixResult[K] = MixResult(self._silence)
        else:
            result = MixResult(saturate(total))
            if len(talking) == 1:
                # Alone talking: they hear the others, i.e. silence.
                result.minus[talking[0][0]] = self._silence
            else:
                for key, own in talking:
                    result.minus[key] = saturate(total - own)
        for key, p in self.participants.items():
            if p.listen_step:
                result.gains[key] = gain_for_step(p.listen_step)
        return result
