"""Codecs by name and by RTP payload type.

Static payload types (RFC 3551 table 4) map straight to a codec; dynamic ones
(96..127, e.g. Opus per RFC 7587) are bound by SDP, so those codecs register
with `payload_type=None` and are found by name. Optional codecs register
themselves when their extra is installed by calling `register_codec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sipline.media.codecs.base import Decoder, Encoder
from sipline.media.codecs.g711 import PcmaDecoder, PcmaEncoder, PcmuDecoder, PcmuEncoder

__all__ = [
    "CodecInfo",
    "codec_by_name",
    "codec_by_payload_type",
    "codec_names",
    "register_codec",
    "unregister_codec",
]


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """What SDP needs to know about a codec (its rtpmap), and how to make one."""

    name: str
    clock_rate: int
    payload_type: int | None
    make_encoder: Callable[[], Encoder]
    make_decoder: Callable[[], Decoder]
    channels: int = 1


_BY_NAME: dict[str, CodecInfo] = {}
_BY_PAYLOAD_TYPE: dict[int, CodecInfo] = {}


def register_codec(info: CodecInfo) -> None:
    """Make a codec available; a later registration under the same name replaces it."""
    if info.payload_type is not None and not 0 <= info.payload_type <= 95:
        raise ValueError("static payload types are 0..95; dynamic codecs use None")
    _BY_NAME[info.name.upper()] = info
    if info.payload_type is not None:
        _BY_PAYLOAD_TYPE[info.payload_type] = info


def unregister_codec(name: str) -> None:
    """Forget a codec (an optional one whose extra is being unloaded, or a test's)."""
    info = _BY_NAME.pop(name.upper(), None)
    if info is not None and info.payload_type is not None:
        _BY_PAYLOAD_TYPE.pop(info.payload_type, None)


def codec_by_name(name: str) -> CodecInfo | None:
    """Look up a codec by its rtpmap encoding name, case-insensitively (RFC 4566 §6)."""
    return _BY_NAME.get(name.upper())


def codec_by_payload_type(payload_type: int) -> CodecInfo | None:
    """Look up a codec by static payload type."""
    return _BY_PAYLOAD_TYPE.get(payload_type)


def codec_names() -> list[str]:
    """Registered codec names, in registration order (our default preference)."""
    return [info.name for info in _BY_NAME.values()]


register_codec(CodecInfo("PCMU", 8000, 0, PcmuEncoder, PcmuDecoder))
register_codec(CodecInfo("PCMA", 8000, 8, PcmaEncoder, PcmaDecoder))
