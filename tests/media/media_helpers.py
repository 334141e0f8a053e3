"""Helpers for media tests on loopback: test signals, and the lossy UDP relay."""

from __future__ import annotations

import numpy as np

from sipline.media.audio import to_int16
from sipline.media.codecs.base import Pcm
from sipline.testing.relay import LossyRelay, relay_pair

__all__ = ["HOST", "LossyRelay", "chirp", "relay_pair"]

HOST = "127.0.0.1"


def chirp(
    seconds: float, *, f0: float = 300.0, rate: float = 400.0, sample_rate: int = 8000
) -> Pcm:
    """A rising sweep: unlike a steady tone it correlates at one lag only."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return to_int16(12000 * np.sin(2 * np.pi * (f0 * t + rate * t * t)))
