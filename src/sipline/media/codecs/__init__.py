"""Audio codecs behind a common encoder/decoder interface, and their registry.

Pure (numpy; Opus through PyAV when installed); used by the rest of `sipline.media`,
`sipline.media_io`, the user agent and the server's media services.
"""

from sipline.media.codecs.base import Decoder, Encoder, Pcm
from sipline.media.codecs.g711 import (
    PcmaDecoder,
    PcmaEncoder,
    PcmuDecoder,
    PcmuEncoder,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from sipline.media.codecs.registry import (
    CodecInfo,
    codec_by_name,
    codec_by_payload_type,
    codec_names,
    register_codec,
)

__all__ = [
    "CodecInfo",
    "Decoder",
    "Encoder",
    "Pcm",
    "PcmaDecoder",
    "PcmaEncoder",
    "PcmuDecoder",
    "PcmuEncoder",
    "alaw_decode",
    "alaw_encode",
    "codec_by_name",
    "codec_by_payload_type",
    "codec_names",
    "register_codec",
    "ulaw_decode",
    "ulaw_encode",
]
