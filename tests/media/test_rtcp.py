"""RTCP packets (RFC 3550 §6) and NTP helpers."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.media.rtcp import (
    NTP_UNIX_OFFSET,
    RtcpByePacket,
    RtcpError,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSdesChunk,
    RtcpSdesPacket,
    RtcpSenderReport,
    RtcpUnknownPacket,
    SdesItem,
    dlsr_from_seconds,
    ntp_from_unix,
    ntp_middle,
    parse_compound,
    round_trip_time,
    serialize_compound,
    unix_from_ntp,
)

SR_WIRE = bytes.fromhex(
    "81c8000c"  # V=2 RC=1 PT=200 length=12
    "11223344"  # SSRC
    "e3a0c0b1 80000000"  # NTP
    "00000fa0"  # RTP ts 4000
    "00000032 00001f40"  # 50 packets, 8000 octets
    "55667788"  # report block SSRC
    "40fffffe"  # fraction 64/256, cumulative lost -2
    "00010010"  # extended highest seq: 1 cycle, seq 16
    "0000000a"  # jitter 10
    "a0c0b180 00008000"  # LSR, DLSR 0.5 s
)
SDES_WIRE = bytes.fromhex("81ca0003 11223344 0103616263 000000")
BYE_WIRE = bytes.fromhex("81cb0003 11223344 04627965 21000000")


def test_sender_report_golden() -> None:
    (sr,) = parse_compound(SR_WIRE)
    assert sr == RtcpSenderReport(
        ssrc=0x11223344,
        ntp_timestamp=0xE3A0C0B180000000,
        rtp_timestamp=4000,
        packet_count=50,
        octet_count=8000,
        reports=[
            RtcpReportBlock(
                ssrc=0x55667788,
                fraction_lost=64,
                packets_lost=-2,
                highest_sequence=0x10010,
                jitter=10,
                lsr=0xA0C0B180,
                dlsr=0x8000,
            )
        ],
    )
    assert sr.serialize() == SR_WIRE


def test_compound_golden() -> None:
    wire = SR_WIRE + SDES_WIRE + BYE_WIRE
    sr, sdes, bye = parse_compound(wire)
    assert isinstance(sdes, RtcpSdesPacket)
    assert sdes == RtcpSdesPacket.with_cname(0x11223344, "abc")
    assert sdes.chunks[0].cname == "abc"
    assert bye == RtcpByePacket([0x11223344], b"bye!")
    assert serialize_compound([sr, sdes, bye]) == wire


def test_receiver_report_and_unknown() -> None:
    rr = RtcpReceiverReport(5, [RtcpReportBlock(6, packets_lost=(1 << 23) - 1)])
    app = RtcpUnknownPacket(204, 3, b"nameDATA")
    wire = serialize_compound([rr, app])
    assert wire[:4] == bytes.fromhex("81c90007")
    assert parse_compound(wire) == [rr, app]


def test_sdes_items_and_padding() -> None:
    chunk = RtcpSdesChunk(
        1, [(SdesItem.CNAME, b"user@host"), (SdesItem.TOOL, b"sipline"), (SdesItem.NOTE, b"")]
    )
    sdes = RtcpSdesPacket([chunk, RtcpSdesChunk(2)], padding=8)
    wire = sdes.serialize()
    assert len(wire) % 4 == 0
    assert wire[0] & 0x20
    assert parse_compound(wire) == [sdes]
    assert RtcpSdesChunk(3, [(SdesItem.NAME, b"x")]).cname is None


def test_bye_without_reason() -> None:
    bye = RtcpByePacket([1, 2])
    assert parse_compound(bye.serialize()) == [bye]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x81\xc8",
        bytes.fromhex("41c80000"),  # version 1
        bytes.fromhex("81c80001 00000000"),  # length runs past
        bytes.fromhex("81c80000"),  # SR too short
        bytes.fromhex("81c90000"),  # RR too short
        bytes.fromhex("82c90001 00000001"),  # report blocks run past
        bytes.fromhex("a1c90001 00000000") + bytes.fromhex("80c90001 00000000"),  # pad not last
        bytes.fromhex("a0c90001 00000000"),  # padding count 0
        bytes.fromhex("a0c90001 00000009"),  # padding count too large
        bytes.fromhex("81ca0000"),  # SDES chunk missing
        bytes.fromhex("81ca0001 00000001"),  # SDES not terminated
        bytes.fromhex("81ca0002 00000001 01056162"),  # SDES item runs past
        bytes.fromhex("82cb0001 00000001"),  # BYE sources run past
        bytes.fromhex("81cb0002 00000001 05616263"),  # BYE reason runs past
    ],
)
def test_malformed(data: bytes) -> None:
    with pytest.raises(RtcpError):
        parse_compound(data)


@given(st.binary(max_size=120))
def test_parse_raises_only_rtcp_error(data: bytes) -> None:
    with contextlib.suppress(RtcpError):
        parse_compound(data)


@given(st.binary(max_size=60))
def test_fuzz_with_valid_headers(body: bytes) -> None:
    # Valid common headers around arbitrary bodies reach the per-type parsers.
    body = body + bytes(-len(body) % 4)
    for packet_type in (200, 201, 202, 203):
        for count in (0, 1, 2, 31):
            data = bytes([0x80 | count, packet_type]) + (len(body) // 4).to_bytes(2, "big") + body
            with contextlib.suppress(RtcpError):
                parse_compound(data)


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    RtcpReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    packets_lost=st.integers(-(1 << 23), (1 << 23) - 1),
    highest_sequence=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
words = st.binary(max_size=12).map(lambda b: b + bytes(-len(b) % 4))
any_packet: st.SearchStrategy[RtcpPacket] = st.one_of(
    st.builds(
        RtcpSenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, (1 << 64) - 1),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=st.lists(blocks, max_size=3),
        extension=words,
    ),
    st.builds(RtcpReceiverReport, ssrc=u32, reports=st.lists(blocks, max_size=3), extension=words),
    st.builds(
        RtcpSdesPacket,
        chunks=st.lists(
            st.builds(
                RtcpSdesChunk,
                ssrc=u32,
                items=st.lists(st.tuples(st.integers(1, 8), st.binary(max_size=20)), max_size=3),
            ),
            max_size=3,
        ),
    ),
    st.builds(RtcpByePacket, sources=st.lists(u32, max_size=4), reason=st.binary(max_size=30)),
    st.builds(
        RtcpUnknownPacket, packet_type=st.integers(204, 223), count=st.integers(0, 31), body=words
    ),
)


@given(st.lists(any_packet, min_size=1, max_size=4))
def test_compound_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_compound(serialize_compound(packets)) == packets


@pytest.mark.parametrize(
    "packet",
    [
        RtcpReceiverReport(1, [RtcpReportBlock(2)] * 32),
        RtcpReceiverReport(1, [RtcpReportBlock(2, fraction_lost=256)]),
        RtcpReceiverReport(1, [RtcpReportBlock(2, packets_lost=1 << 23)]),
        RtcpReceiverReport(1, [RtcpReportBlock(1 << 32)]),
        RtcpReceiverReport(1 << 32),
        RtcpReceiverReport(1, extension=b"abc"),
        RtcpReceiverReport(1, padding=3),
        RtcpSenderReport(1, ntp_timestamp=1 << 64),
        RtcpSenderReport(1, packet_count=-1),
        RtcpSdesPacket([RtcpSdesChunk(1, [(0, b"")])]),
        RtcpSdesPacket([RtcpSdesChunk(1, [(1, bytes(256))])]),
        RtcpSdesPacket([RtcpSdesChunk(-1)]),
        RtcpByePacket([1], bytes(256)),
        RtcpByePacket([-1]),
        RtcpUnknownPacket(256),
    ],
)
def test_serialize_rejects(packet: RtcpPacket) -> None:
    with pytest.raises(RtcpError):
        packet.serialize()


def test_padding_only_on_last() -> None:
    with pytest.raises(RtcpError):
        serialize_compound([RtcpReceiverReport(1, padding=4), RtcpByePacket([1])])


def test_ntp_conversion() -> None:
    assert ntp_from_unix(0.0) == NTP_UNIX_OFFSET << 32
    assert ntp_from_unix(1.5) == ((NTP_UNIX_OFFSET + 1) << 32) | 0x80000000
    assert unix_from_ntp(ntp_from_unix(1_790_000_000.25)) == 1_790_000_000.25
    assert ntp_middle(0x1122334455667788) == 0x33445566
    assert dlsr_from_seconds(0.5) == 0x8000
    assert dlsr_from_seconds(-1) == 0


def test_round_trip_time() -> None:
    # RFC 3550 §6.4.1 figure 2 style: SR sent at t, echoed after DLSR, back at t + rtt + dlsr.
    sent = 1_790_000_000.0
    lsr = ntp_middle(ntp_from_unix(sent))
    dlsr = dlsr_from_seconds(1.25)
    rtt = round_trip_time(arrival_wall=sent + 1.25 + 0.080, lsr=lsr, dlsr=dlsr)
    assert rtt == pytest.approx(0.080, abs=1e-4)
    assert round_trip_time(arrival_wall=sent, lsr=0, dlsr=0) is None
    # A report that appears to come back before it was sent: clocks disagree.
    assert round_trip_time(arrival_wall=sent, lsr=lsr, dlsr=dlsr) is None
