"""RFC 3711 §9.2: an (SSRC, index) pair is never protected twice under one master key.

Hold and resume re-offer SDP. Whoever keeps its `a=crypto` key across the re-offer must
keep that key's crypto context (RFC 4568 §7.1.4): the SRTCP index and the RTP rollover
counter go on instead of starting again, which would repeat the keystream. Checked
in both directions (our re-offer, and our answer to a peer's re-offer that keeps its
key), for SRTCP (the index is in every packet) and for SRTP (libsrtp refuses to
protect an index its context already used, so a fresh context shows as a success).
"""

from __future__ import annotations

import struct

import pytest

from sipline.media.srtp import SrtpContext, SrtpError, srtp_available
from sipline.phone.media import CallMedia, MediaOptions
from sipline.sdp import Direction
from sipline.testing import SeededEntropy

pytestmark = pytest.mark.skipif(not srtp_available(), reason="needs pylibsrtp")

SSRC = 0x1234ABCD


def _media(seed: int) -> CallMedia:
    options = MediaOptions(srtp="mandatory")
    return CallMedia(options, entropy=SeededEntropy(seed), bind_host="127.0.0.1",
                     advertise_host="127.0.0.1")  # fmt: skip


def _context(media: CallMedia) -> SrtpContext:
    ctx = media.session.config.srtp
    assert ctx is not None
    return ctx


def _local_key(media: CallMedia) -> bytes:
    crypto = media._crypto
    assert crypto is not None
    return crypto.key


def _rtcp(ssrc: int) -> bytes:
    return struct.pack("!BBHI", 0x80, 201, 1, ssrc)  # an empty receiver report


def _rtp(ssrc: int, seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + bytes(160)


class _Sent:
    """Every (key, SSRC, index) one side protected."""

    def __init__(self) -> None:
        self.rtcp: list[tuple[bytes, int, int]] = []
        self.rtp: list[tuple[bytes, int, int]] = []

    def send(self, media: CallMedia, seq_from: int, count: int = 3) -> None:
        ctx, key = _context(media), _local_key(media)
        for _ in range(count):
            packet = ctx.protect_rtcp(_rtcp(SSRC))
            # SRTCP trailer: E flag and 31-bit index, then a 10-byte tag (…_80).
            index = struct.unpack("!I", packet[-14:-10])[0] & 0x7FFFFFFF
            self.rtcp.append((key, SSRC, index))
        for seq in range(seq_from - 1, seq_from + count):
            try:
                ctx.protect(_rtp(SSRC, seq))
            except SrtpError:
                continue  # the context knows this index: it was not sent again
            self.rtp.append((key, SSRC, seq))

    def assert_unique(self) -> None:
        assert len(set(self.rtcp)) == len(self.rtcp), self.rtcp
        assert len(set(self.rtp)) == len(self.rtp), self.rtp


def _exchange(offerer: CallMedia, answerer: CallMedia, direction: Direction) -> None:
    answer = answerer.answer(offerer.offer(direction))
    offerer.receive_answer(answer)


async def test_hold_and_resume_never_repeat_an_index_under_one_key() -> None:
    alice, bob = _media(1), _media(2)
    await alice.open()
    await bob.open()
    try:
        _hold_and_resume(alice, bob)
    finally:
        await alice.close()
        await bob.close()


def _hold_and_resume(alice: CallMedia, bob: CallMedia) -> None:
    a, b = _Sent(), _Sent()
    _exchange(alice, bob, Direction.SENDRECV)
    a.send(alice, 10)
    b.send(bob, 10)
    _exchange(alice, bob, Direction.SENDONLY)  # alice holds: our re-offer
    a.send(alice, 13)
    b.send(bob, 13)
    _exchange(bob, alice, Direction.SENDRECV)  # bob re-offers, alice answers
    a.send(alice, 16)
    b.send(bob, 16)
    _exchange(alice, bob, Direction.SENDRECV)  # resume
    a.send(alice, 19)
    b.send(bob, 19)
    a.assert_unique()
    b.assert_unique()
    # And each side still understands the other after every exchange.
    assert _context(bob).unprotect_rtcp(_context(alice).protect_rtcp(_rtcp(SSRC)))
