"""ITU-T G.711 µ-law (PCMU) and A-law (PCMA), vectorised through lookup tables.

Both laws compress a linear sample into sign, 3-bit segment (exponent) and
4-bit step within the segment (G.711 tables 1a/2a). We apply them to every
16-bit input once, at import, so encoding is a single `take`. Linear values
are 16-bit: the 14-bit µ-law and 13-bit A-law ranges of G.711 shifted left by
2 and 3 bits. Payload format: RFC 3551 §4.5.14, one octet per sample.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sipline.media.codecs.base import Decoder, Encoder, Pcm

__all__ = [
    "PcmaDecoder",
    "PcmaEncoder",
    "PcmuDecoder",
    "PcmuEncoder",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]

_U8 = npt.NDArray[np.uint8]
_I32 = npt.NDArray[np.int32]

# µ-law: the biased magnitude (|x| + 0x84) has its leading one at bit 7 + segment.
_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635
_ULAW_SEGMENT_STARTS = np.array([0x100 << s for s in range(7)], dtype=np.int32)
# A-law: upper ends of the 13-bit segments.
_ALAW_SEGMENT_ENDS = np.array([(0x20 << s) - 1 for s in range(8)], dtype=np.int32)


def _ulaw_compress(x: _I32) -> _U8:
    # Negative inputs use one's complement, as the ITU-T G.191 reference code does,
    # so x and ~x differ only in the sign bit.
    sign = np.where(x < 0, 0x80, 0x00)
    mag = np.minimum(np.where(x < 0, ~x, x), _ULAW_CLIP) + _ULAW_BIAS
    seg = np.searchsorted(_ULAW_SEGMENT_STARTS, mag, side="right")
    step = (mag >> (seg + 3)) & 0x0F
    # Codewords are transmitted complemented (G.711 table 2a, character signal).
    code: _I32 = (sign | (seg << 4) | step).astype(np.int32)
    return (code ^ 0xFF).astype(np.uint8)


def _ulaw_expand(code: _U8) -> _I32:
    u = ~code.astype(np.int32) & 0xFF
    seg = (u >> 4) & 0x07
    # Decision value midway in the step: (2 * step + 33) << seg, less the bias.
    mag = ((((u & 0x0F) << 3) + _ULAW_BIAS) << seg) - _ULAW_BIAS
    return np.where(u & 0x80, -mag, mag).astype(np.int32)


def _alaw_compress(x: _I32) -> _U8:
    # Negative inputs use one's complement so -1..-8 share the first step with 0..7.
    positive = x >= 0
    mag = np.where(positive, x, ~x) >> 3
    seg = np.searchsorted(_ALAW_SEGMENT_ENDS, mag, side="left")
    shift = np.where(seg < 2, 1, seg)
    step = (mag >> shift) & 0x0F
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | step)
    # Even bits are inverted on the line; the sign bit is 1 for positive values.
    mask = np.where(positive, 0xD5, 0x55)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _alaw_expand(code: _U8) -> _I32:
    a = code.astype(np.int32) ^ 0x55
    seg = (a >> 4) & 0x07
    step = (a & 0x0F) << 4
    # Reconstruct at the middle of the step (+8, or +0x108 with the implicit leading one).
    mag = np.where(seg == 0, step + 8, (step + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, mag, -mag).astype(np.int32)


_ALL_LINEAR = np.arange(-32768, 32768, dtype=np.int32)
_ALL_CODES = np.arange(256, dtype=np.uint8)
_ULAW_ENCODE = _ulaw_compress(_ALL_LINEAR)
_ALAW_ENCODE = _alaw_compress(_ALL_LINEAR)
_ULAW_DECODE = _ulaw_expand(_ALL_CODES).astype(np.int16)
_ALAW_DECODE = _alaw_expand(_ALL_CODES).astype(np.int16)


def _as_index(pcm: Pcm) -> npt.NDArray[np.intp]:
    return np.asarray(pcm, dtype=np.int16).astype(np.intp) + 32768


def ulaw_encode(pcm: Pcm) -> bytes:
    """µ-law codewords for int16 samples."""
    return _ULAW_ENCODE[_as_index(pcm)].tobytes()


def ulaw_decode(payload: bytes) -> Pcm:
    """int16 samples for µ-law codewords."""
    return _ULAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def alaw_encode(pcm: Pcm) -> bytes:
    """A-law codewords for int16 samples."""
    return _ALAW_ENCODE[_as_index(pcm)].tobytes()


def alaw_decode(payload: bytes) -> Pcm:
    """int16 samples for A-law codewords."""
    return _ALAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


class PcmuEncoder(Encoder):
    name = "PCMU"
    clock_rate = 8000
    payload_type = 0

    def encode(self, pcm: Pcm) -> bytes:
        return ulaw_encode(pcm)


class PcmuDecoder(Decoder):
    name = "PCMU"
    clock_rate = 8000
    payload_type = 0

    def decode(self, payload: bytes) -> Pcm:
        return ulaw_decode(payload)


class PcmaEncoder(Encoder):
    name = "PCMA"
    clock_rate = 8000
    payload_type = 8

    def encode(self, pcm: Pcm) -> bytes:
        return alaw_encode(pcm)


class PcmaDecoder(Decoder):
    name = "PCMA"
    clock_rate = 8000
    payload_type = 8

    def decode(self, payload: bytes) -> Pcm:
        return alaw_decode(payload)
