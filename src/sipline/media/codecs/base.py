"""Encoder and decoder bases: PCM in and out as int16 numpy arrays.

A codec instance holds whatever state its algorithm needs (none for G.711),
so a session makes one encoder and one decoder per stream.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

__all__ = ["Decoder", "Encoder", "Pcm"]

Pcm = npt.NDArray[np.int16]


class Encoder(ABC):
    """Turns mono int16 PCM at `clock_rate` into one RTP payload."""

    name: str
    clock_rate: int
    payload_type: int | None
    channels: int = 1

    @abstractmethod
    def encode(self, pcm: Pcm) -> bytes:
        """Encode one frame of samples (typically 20 ms)."""


class Decoder(ABC):
    """Turns one RTP payload back into mono int16 PCM at `clock_rate`."""

    name: str
    clock_rate: int
    payload_type: int | None
    channels: int = 1

    @abstractmethod
    def decode(self, payload: bytes) -> Pcm:
        """Decode one payload."""

    def conceal(self, samples: int) -> Pcm:
        """PCM for a lost frame of `samples` samples.

        The default is silence; codecs with their own concealment override it.
        """
        return np.zeros(samples, dtype=np.int16)
