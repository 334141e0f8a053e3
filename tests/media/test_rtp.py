"""RTP packets (RFC 3550 §5.1), sequence arithmetic and the sender."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.media.rtp import (
    RtpError,
    RtpExtension,
    RtpPacket,
    RtpSender,
    is_rtcp,
    seq_add,
    seq_diff,
    seq_lt,
    ts_add,
    ts_diff,
    unwrap_seq,
)
from sipline.testing import SeededEntropy

# A PCMU packet: V=2, M=1, PT=0, seq=0x1234, ts=0xDEADBEEF, SSRC=0x01020304, 4 payload octets.
GOLDEN = bytes.fromhex("80 80 1234 deadbeef 01020304 fffefdfc")


def test_parse_golden() -> None:
    p = RtpPacket.parse(GOLDEN)
    assert p == RtpPacket(
        payload_type=0,
        sequence_number=0x1234,
        timestamp=0xDEADBEEF,
        ssrc=0x01020304,
        payload=b"\xff\xfe\xfd\xfc",
        marker=True,
    )
    assert p.serialize() == GOLDEN


def test_csrc_extension_and_padding() -> None:
    p = RtpPacket(
        payload_type=96,
        sequence_number=1,
        timestamp=2,
        ssrc=3,
        payload=b"abc",
        csrc=[10, 11],
        extension=RtpExtension(0xBEDE, b"\x10\xaa\x00\x00"),
        padding=4,
    )
    wire = p.serialize()
    # V=2, P=1, X=1, CC=2.
    assert wire[0] == 0b1011_0010
    assert wire[12:20] == bytes.fromhex("0000000a 0000000b")
    assert wire[20:24] == bytes.fromhex("bede 0001")
    assert wire[-4:] == b"\x00\x00\x00\x04"
    assert RtpPacket.parse(wire) == p


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "short"),
        (bytes.fromhex("80 00 0001 00000000 00000000")[:11], "short"),
        (bytes.fromhex("40 00 0001 00000000 00000000"), "version"),
        (bytes.fromhex("82 00 0001 00000000 00000000 00000001"), "CSRC"),
        (bytes.fromhex("90 00 0001 00000000 00000000 bede"), "extension header"),
        (bytes.fromhex("90 00 0001 00000000 00000000 bede0002 00000000"), "extension"),
        (bytes.fromhex("a0 00 0001 00000000 00000000 00"), "padding"),
        (bytes.fromhex("a0 00 0001 00000000 00000000 0005"), "padding"),
    ],
)
def test_malformed(data: bytes, why: str) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(data)


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(payload_type=128),
        RtpPacket(sequence_number=65536),
        RtpPacket(timestamp=-1),
        RtpPacket(ssrc=1 << 32),
        RtpPacket(csrc=list(range(16))),
        RtpPacket(csrc=[1 << 32]),
        RtpPacket(extension=RtpExtension(1, b"abc")),
        RtpPacket(extension=RtpExtension(1 << 16)),
        RtpPacket(padding=256),
    ],
)
def test_serialize_rejects_out_of_range(packet: RtpPacket) -> None:
    with pytest.raises(RtpError):
        packet.serialize()


@given(st.binary(max_size=80))
def test_parse_raises_only_rtp_error(data: bytes) -> None:
    try:
        p = RtpPacket.parse(data)
    except RtpError:
        return
    # Whatever parses serialises back to the same header and payload.
    again = RtpPacket.parse(p.serialize())
    assert again == p


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    extension=st.none()
    | st.builds(
        RtpExtension,
        st.integers(0, 0xFFFF),
        st.binary(max_size=16).map(lambda b: b + bytes(-len(b) % 4)),
    ),
    padding=st.integers(0, 255),
)


@given(packets)
def test_round_trip(p: RtpPacket) -> None:
    assert RtpPacket.parse(p.serialize()) == p


def test_sequence_arithmetic() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_add(0, -1) == 65535
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(100, 100) == 0
    assert seq_diff(32767, 0) == 32767
    assert seq_diff(32768, 0) == -32768
    assert seq_lt(65535, 0)
    assert not seq_lt(0, 65535)
    assert unwrap_seq(2, 65534) == 65538
    assert unwrap_seq(65534, 65538) == 65534
    assert ts_add(0xFFFFFFFF, 2) == 1
    assert ts_diff(1, 0xFFFFFFFF) == 2
    assert ts_diff(0xFFFFFFFF, 1) == -2


@given(st.integers(0, 0xFFFF), st.integers(-32768, 32767))
def test_seq_diff_inverts_seq_add(a: int, n: int) -> None:
    assert seq_diff(seq_add(a, n), a) == n


def test_is_rtcp() -> None:
    assert is_rtcp(bytes([0x80, 200, 0, 6]))
    assert not is_rtcp(GOLDEN)
    assert not is_rtcp(b"\x80")


def test_sender_numbering_and_marker() -> None:
    sender = RtpSender(payload_type=0, entropy=SeededEntropy(7))
    again = RtpSender(payload_type=0, entropy=SeededEntropy(7))
    assert (sender.ssrc, sender.sequence_number, sender.timestamp) == (
        again.ssrc,
        again.sequence_number,
        again.timestamp,
    )
    assert sender.samples_per_packet == 160
    seq0, ts0 = sender.sequence_number, sender.timestamp
    p1 = sender.send(b"\xff" * 160)
    p2 = sender.send(b"\xff" * 160)
    assert p1.marker and not p2.marker
    assert (p1.sequence_number, p1.timestamp) == (seq0, ts0)
    assert p2.sequence_number == seq_add(seq0, 1)
    assert p2.timestamp == ts_add(ts0, 160)
    assert p1.ssrc == p2.ssrc == sender.ssrc
    # Silence suppression: time passes unsent, the next packet starts a talkspurt.
    sender.skip(800)
    p3 = sender.send(b"\xff" * 160)
    assert p3.marker
    assert p3.sequence_number == seq_add(seq0, 2)
    assert p3.timestamp == ts_add(ts0, 320 + 800)
    p4 = sender.send(b"", samples=80, marker=True)
    assert p4.marker
    assert sender.timestamp == ts_add(p4.timestamp, 80)


def test_sender_wraps_and_validates() -> None:
    sender = RtpSender(payload_type=8, entropy=SeededEntropy(1), ssrc=42, ptime_ms=30)
    assert sender.ssrc == 42
    assert sender.samples_per_packet == 240
    sender.sequence_number = 65535
    sender.timestamp = 0xFFFFFF00
    sender.send(b"x")
    p = sender.send(b"y")
    assert p.sequence_number == 0
    assert p.timestamp == (0xFFFFFF00 + 240) & 0xFFFFFFFF
    with pytest.raises(ValueError, match="positive"):
        RtpSender(payload_type=0, entropy=SeededEntropy(), clock_rate=0)
    with pytest.raises(RtpError):
        RtpSender(payload_type=200, entropy=SeededEntropy())
