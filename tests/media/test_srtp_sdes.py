"""RFC 4568 crypto attributes: parse, format, choose; libsrtp round trips and failures."""

from __future__ import annotations

import base64

import pytest

from sipline.media.rtp import RtpPacket
from sipline.media.srtp import (
    CryptoAttribute,
    SrtpContext,
    SrtpError,
    new_crypto,
    select_crypto,
    srtp_available,
)
from sipline.testing import SeededEntropy

# RFC 4568 §9.1's example line.
EXAMPLE = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4"
KEY = base64.b64encode(bytes(range(30))).decode()


def test_parse_and_format_round_trip() -> None:
    line = f"2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^31"
    crypto = CryptoAttribute.parse(line)
    assert crypto.tag == 2 and crypto.suite == "AES_CM_128_HMAC_SHA1_32"
    assert crypto.key == bytes(range(30)) and crypto.lifetime == "2^31"
    assert crypto.supported
    assert crypto.value() == line
    assert CryptoAttribute.parse(crypto.value()) == crypto


@pytest.mark.parametrize(
    "line",
    [
        "x AES_CM_128_HMAC_SHA1_80 inline:AAAA",
        "1 AES_CM_128_HMAC_SHA1_80",
        "1 AES_CM_128_HMAC_SHA1_80 uri:sip:keys",
        "1 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64",
        EXAMPLE,  # an MKI, which we do not support
    ],
)
def test_malformed_or_unsupported_lines_raise(line: str) -> None:
    with pytest.raises(SrtpError):
        CryptoAttribute.parse(line)


def test_selection_skips_what_we_cannot_use() -> None:
    offered = [
        f"1 F8_128_HMAC_SHA1_80 inline:{KEY}",  # a suite we do not know
        f"2 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP",  # a session parameter
        "3 AES_CM_128_HMAC_SHA1_80 inline:AAAA",  # a key of the wrong length
        "garbage",
        f"4 AES_CM_128_HMAC_SHA1_80 inline:{KEY}",
    ]
    chosen = select_crypto(offered)
    assert chosen is not None and chosen.tag == 4
    assert select_crypto(offered[:4]) is None


def test_new_keys_are_random_and_suite_checked() -> None:
    entropy = SeededEntropy(3)
    a, b = new_crypto(1, entropy=entropy), new_crypto(1, entropy=entropy)
    assert a.key != b.key and len(a.key) == 30 and a.supported
    with pytest.raises(SrtpError):
        new_crypto(1, entropy=entropy, suite="NULL")


@pytest.mark.skipif(not srtp_available(), reason="pylibsrtp is not installed")
def test_protect_unprotect_rtp_and_rtcp_and_reject_tampering() -> None:
    mine, theirs = new_crypto(1, entropy=SeededEntropy(1)), new_crypto(1, entropy=SeededEntropy(2))
    alice, bob = SrtpContext(mine, theirs), SrtpContext(theirs, mine)
    rtp = RtpPacket(0, 1, 160, 0x1234, bytes(160)).serialize()
    protected = alice.protect(rtp)
    assert protected != rtp and len(protected) == len(rtp) + 10  # 80-bit tag
    assert bob.unprotect(protected) == rtp
    with pytest.raises(SrtpError):
        bob.unprotect(protected)  # a replay
    tampered = bytearray(alice.protect(RtpPacket(0, 2, 320, 0x1234, bytes(160)).serialize()))
    tampered[20] ^= 1
    with pytest.raises(SrtpError):
        bob.unprotect(bytes(tampered))
    rtcp = bytes.fromhex("80c90001") + (0x1234).to_bytes(4, "big")
    assert bob.unprotect_rtcp(alice.protect_rtcp(rtcp)) == rtcp
    with pytest.raises(SrtpError):
        bob.unprotect_rtcp(rtcp + bytes(14))
    with pytest.raises(SrtpError):
        SrtpContext(mine, CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_32", theirs.key))
    with pytest.raises(SrtpError):
        SrtpContext(mine, CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", b"short"))
