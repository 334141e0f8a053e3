"""G.711 µ-law and A-law, and the codec registry."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sipline.media.codecs import (
    CodecInfo,
    Decoder,
    PcmaDecoder,
    PcmaEncoder,
    PcmuDecoder,
    PcmuEncoder,
    alaw_decode,
    alaw_encode,
    codec_by_name,
    codec_by_payload_type,
    codec_names,
    register_codec,
    ulaw_decode,
    ulaw_encode,
)

ALL_CODES = bytes(range(256))
ALL_LINEAR = np.arange(-32768, 32768).astype(np.int16)


def pcm(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int16)


def test_known_values() -> None:
    assert ulaw_encode(pcm(0)) == b"\xff"
    assert alaw_encode(pcm(0)) == b"\xd5"
    assert alaw_encode(pcm(-1)) == b"\x55"
    # Negative inputs are complemented before quantising (ITU-T G.191), so -1 is µ-law -0.
    assert ulaw_encode(pcm(-1, -4, -5, -12, -13)) == bytes([0x7F, 0x7F, 0x7E, 0x7E, 0x7D])
    # Extremes: G.711's largest reconstruction levels, scaled to 16 bits.
    assert ulaw_decode(b"\x80\x00").tolist() == [32124, -32124]
    assert alaw_decode(b"\xaa\x2a").tolist() == [32256, -32256]
    assert ulaw_encode(pcm(32767, -32768)) == b"\x80\x00"
    assert alaw_encode(pcm(32767, -32768)) == b"\xaa\x2a"
    # First segment: µ-law steps of 8 (2 in 14-bit units), A-law steps of 16 centred at 8.
    assert ulaw_decode(bytes([0xFF, 0xFE, 0xFD, 0xF0])).tolist() == [0, 8, 16, 120]
    assert alaw_decode(bytes([0xD5, 0xD4, 0x55])).tolist() == [8, 24, -8]
    # Both µ-law zeros decode to 0.
    assert ulaw_decode(b"\x7f\xff").tolist() == [0, 0]


def test_decode_encode_identity_on_every_codeword() -> None:
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES
    # µ-law has a positive (0xFF) and a negative (0x7F) zero; both decode to 0,
    # which encodes as 0xFF. Every other codeword survives the round trip.
    again = ulaw_encode(ulaw_decode(ALL_CODES))
    assert again == ALL_CODES[:0x7F] + b"\xff" + ALL_CODES[0x80:]


def test_encode_decode_error_bounded() -> None:
    x = ALL_LINEAR.astype(np.int64)
    for encode, decode, clip in (
        (ulaw_encode, ulaw_decode, 32124),
        (alaw_encode, alaw_decode, 32256),
    ):
        y = decode(encode(ALL_LINEAR)).astype(np.int64)
        inside = np.abs(x) <= clip
        # Half a quantisation step: 4..8 near zero, about |x| / 32 in higher segments.
        assert np.all(np.abs(y - x)[inside] <= 8 + np.abs(x[inside]) / 32)
        # Beyond the largest level the codec saturates.
        assert np.all(np.abs(y[~inside]) == clip)
        # Monotonic: a larger input never decodes smaller.
        assert np.all(np.diff(y) >= 0)


def test_matches_audioop_where_available() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop  # noqa: PLC0415
        except ImportError:
            pytest.skip("audioop was removed in Python 3.13")
    raw = ALL_LINEAR.astype("<i2").tobytes()
    # audioop (Sun's classic code) negates negative µ-law inputs where the ITU-T
    # G.191 reference, which we follow, complements them: compare from 0 up.
    positive = ALL_LINEAR[ALL_LINEAR >= 0]
    assert ulaw_encode(positive) == audioop.lin2ulaw(positive.astype("<i2").tobytes(), 2)
    assert alaw_encode(ALL_LINEAR) == audioop.lin2alaw(raw, 2)
    assert ulaw_decode(ALL_CODES).astype("<i2").tobytes() == audioop.ulaw2lin(ALL_CODES, 2)
    assert alaw_decode(ALL_CODES).astype("<i2").tobytes() == audioop.alaw2lin(ALL_CODES, 2)


@given(arrays(np.int16, st.integers(0, 400)))
def test_codec_classes(samples: np.ndarray) -> None:
    for enc, dec in ((PcmuEncoder(), PcmuDecoder()), (PcmaEncoder(), PcmaDecoder())):
        payload = enc.encode(samples)
        assert len(payload) == len(samples)
        out = dec.decode(payload)
        assert out.dtype == np.int16
        # Decoded samples are fixed points of encode-then-decode.
        assert np.array_equal(dec.decode(enc.encode(out)), out)


def test_conceal_is_silence_by_default() -> None:
    out = PcmuDecoder().conceal(160)
    assert out.dtype == np.int16
    assert out.shape == (160,)
    assert not out.any()


def test_registry() -> None:
    pcmu = codec_by_name("pcmu")
    assert pcmu is not None
    assert (pcmu.name, pcmu.clock_rate, pcmu.payload_type, pcmu.channels) == ("PCMU", 8000, 0, 1)
    assert isinstance(pcmu.make_encoder(), PcmuEncoder)
    assert codec_by_payload_type(8) is codec_by_name("PCMA")
    assert codec_by_payload_type(18) is None
    assert codec_by_name("G729") is None  # never registered (opus may be, by its extra)
    assert codec_names()[:2] == ["PCMU", "PCMA"]
    for info in (codec_by_name("PCMU"), codec_by_name("PCMA")):
        assert info is not None
        enc, dec = info.make_encoder(), info.make_decoder()
        assert (enc.name, enc.payload_type, dec.clock_rate) == (info.name, info.payload_type, 8000)


def test_register_dynamic_codec() -> None:
    class Silent(Decoder):
        name = "L16-TEST"
        clock_rate = 16000
        payload_type = None

        def decode(self, payload: bytes) -> np.ndarray:
            return np.frombuffer(payload, dtype=">i2").astype(np.int16)

    info = CodecInfo("L16-TEST", 16000, None, PcmuEncoder, Silent)
    register_codec(info)
    assert codec_by_name("l16-test") is info
    with pytest.raises(ValueError, match="static payload types"):
        register_codec(CodecInfo("BAD", 8000, 101, PcmuEncoder, Silent))
