"""The voicemail prompts as audio: spoken by espeak-ng when it is installed (rendered
once per text, then kept in memory), else short tone patterns, so the service works
on a bare system."""

from __future__ import annotations

import io
import logging
import shutil
import subprocess

import numpy as np

from sipline.media.audio import silence, tone
from sipline.media.codecs.base import Pcm
from sipline.media_io.audio_files import AudioFileError, read_wav

__all__ = ["BEEP_HZ", "Prompts"]

log = logging.getLogger("sipline.voicemail")

BEEP_HZ = 1000.0
TEXTS = {
    "greeting": "The person you called is not available. Please leave a message after the tone.",
    "pin": "Please enter your PIN, then press the hash key.",
    "bad-pin": "That PIN is not right. Please enter your PIN, then press the hash key.",
    "menu": "Press 1 to repeat, 4 for the previous message, 6 or hash for the next, 7 to delete.",
    "no-messages": "You have no messages. Goodbye.",
    "no-more": "No more messages. Goodbye.",
    "goodbye": "Goodbye.",
}
# Tone patterns for each prompt when no speech synthesiser is installed: (Hz, seconds).
_TONES: dict[str, tuple[tuple[float, float], ...]] = {
    "greeting": ((440.0, 0.4), (0.0, 0.2), (440.0, 0.4)),
    "pin": ((480.0, 0.2), (0.0, 0.1), (480.0, 0.2)),
    "bad-pin": ((300.0, 0.6),),
    "menu": ((520.0, 0.15),),
    "no-messages": ((350.0, 0.5),),
    "no-more": ((350.0, 0.5),),
    "goodbye": ((350.0, 0.3),),
}


def _tones(pattern: tuple[tuple[float, float], ...]) -> Pcm:
    parts = [
        tone(hz, duration_s=s, amplitude=0.3) if hz else silence(round(s * 8000))
        for hz, s in pattern
    ]
    return np.concatenate(parts).astype(np.int16)


def _speak(text: str, timeout_s: float = 10.0) -> Pcm | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "--stdout", "-s", "150", text],
            capture_output=True,
            timeout=timeout_s,
            check=True,
        )
        return read_wav(io.BytesIO(done.stdout))
    except (OSError, subprocess.SubprocessError, AudioFileError) as exc:
        log.warning("espeak-ng could not speak a prompt (%s): using tones", exc)
        return None


class Prompts:
    """`get(name)` -> 8 kHz samples; `speech=False` keeps to tones."""

    def __init__(self, *, speech: bool = True) -> None:
        self.speech = speech
        self._cache: dict[str, Pcm] = {}

    def get(self, name: str) -> Pcm:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        if name == "beep":
            pcm = tone(BEEP_HZ, duration_s=0.3, amplitude=0.4)
        else:
            spoken = _speak(TEXTS[name]) if self.speech and name in TEXTS else None
            pcm = spoken if spoken is not None else _tones(_TONES.get(name, ((350.0, 0.3),)))
        self._cache[name] = pcm
        return pcm
