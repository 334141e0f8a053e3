"""RFC 4733 telephone-events and Q.23 tones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.media.dtmf import (
    DTMF_FREQUENCIES,
    DtmfDialer,
    DtmfDigit,
    DtmfError,
    DtmfReceiver,
    DtmfSender,
    TelephoneEvent,
    digit_to_event,
    dtmf_tone,
    event_to_digit,
)
from sipline.media.rtp import RtpPacket, RtpSender, seq_add, ts_add
from sipline.testing import SeededEntropy


def test_payload_golden() -> None:
    # Event 5, E=1, volume 10, duration 800 (RFC 4733 §2.3 layout).
    wire = bytes.fromhex("05 8a 0320")
    ev = TelephoneEvent.parse(wire)
    assert ev == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert ev.digit == "5"
    assert ev.serialize() == wire
    # The reserved bit is ignored; extra redundant blocks are ignored.
    assert TelephoneEvent.parse(bytes.fromhex("0b4a0000 01020304")) == TelephoneEvent(
        11, False, 10, 0
    )


@given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 0xFFFF))
def test_payload_round_trip(event: int, end: bool, volume: int, duration: int) -> None:
    ev = TelephoneEvent(event, end, volume, duration)
    assert TelephoneEvent.parse(ev.serialize()) == ev


@pytest.mark.parametrize(
    "ev", [TelephoneEvent(256), TelephoneEvent(1, volume=64), TelephoneEvent(1, duration=1 << 16)]
)
def test_payload_rejects(ev: TelephoneEvent) -> None:
    with pytest.raises(DtmfError):
        ev.serialize()
    with pytest.raises(DtmfError):
        TelephoneEvent.parse(b"\x01\x02\x03")


def test_event_codes() -> None:
    assert [digit_to_event(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert digit_to_event("a") == 12
    assert digit_to_event("flash") == 16
    assert event_to_digit(11) == "#"
    assert event_to_digit(16) == "flash"
    assert event_to_digit(40) is None
    for bad in ("E", "12", ""):
        with pytest.raises(DtmfError):
            digit_to_event(bad)


def make_sender() -> tuple[RtpSender, DtmfSender]:
    rtp = RtpSender(payload_type=0, entropy=SeededEntropy(4))
    return rtp, DtmfSender(rtp, payload_type=101)


def drain(sender: DtmfSender) -> list[RtpPacket]:
    out = []
    while (p := sender.tick()) is not None:
        out.append(p)
    return out


def test_sender_packet_train() -> None:
    rtp, dtmf = make_sender()
    rtp.send(b"\xff" * 160)  # some audio first
    seq, ts = rtp.sequence_number, rtp.timestamp
    assert not dtmf.active
    assert dtmf.tick() is None
    dtmf.send_digit("7", duration_ms=100)
    assert dtmf.active
    packets = drain(dtmf)
    assert not dtmf.active
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    # Updates every 20 ms, then the end packet three times (§2.5.1.4).
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {7}
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert {p.timestamp for p in packets} == {ts}
    assert {p.payload_type for p in packets} == {101}
    assert {p.ssrc for p in packets} == {rtp.ssrc}
    assert [p.sequence_number for p in packets] == [seq_add(seq, i) for i in range(7)]
    # Audio resumes after the event, on the same numbering and clock.
    after = rtp.send(b"\xff" * 160)
    assert after.sequence_number == seq_add(seq, 7)
    assert after.timestamp == ts_add(ts, 7 * 160)


def test_dialer_spaces_digits_with_pauses_on_the_packet_grid() -> None:
    _, dtmf = make_sender()
    dialer = DtmfDialer()
    dialer.dial("12", duration_ms=40, pause_ticks=2, clock_rate=8000)
    # Per tick: an event packet (digit), or None (audio goes on).
    ticks = [dialer.tick(dtmf) for _ in range(14)]
    shape = "".join("." if p is None else str(TelephoneEvent.parse(p.payload).event) for p in ticks)
    # 40 ms: one update, then the end packet 3 times; after each digit the tick that
    # takes up the pause and the 2 ticks of it carry audio.
    assert shape == "1111...2222..."
    assert dialer.digits_sent == 2
    assert dialer.tick(dtmf) is None


def test_dialer_checks_the_whole_string_before_queueing() -> None:
    _, dtmf = make_sender()
    dialer = DtmfDialer()
    with pytest.raises(DtmfError):
        dialer.dial("1X", duration_ms=100, pause_ticks=1, clock_rate=8000)
    with pytest.raises(DtmfError):
        dialer.dial("1", duration_ms=10_000, pause_ticks=1, clock_rate=8000)
    assert dialer.tick(dtmf) is None and dialer.digits_sent == 0


def test_sender_queues_digits_and_rounds_durations() -> None:
    _, dtmf = make_sender()
    dtmf.send_digit("1", duration_ms=50)
    dtmf.send_digit("#", duration_ms=40)
    packets = drain(dtmf)
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [(e.event, e.duration, e.end) for e in events] == [
        (1, 160, False),
        (1, 320, False),
        (1, 400, True),
        (1, 400, True),
        (1, 400, True),
        (11, 160, False),
        (11, 320, True),
        (11, 320, True),
        (11, 320, True),
    ]
    assert packets[0].marker and packets[5].marker
    assert packets[5].timestamp == ts_add(packets[0].timestamp, 5 * 160)
    for bad in (0, 9000):
        with pytest.raises(DtmfError):
            dtmf.send_digit("1", duration_ms=bad)


def receive_all(receiver: DtmfReceiver, packets: list[RtpPacket]) -> list[str]:
    return [d.digit for p in packets if (d := receiver.receive(p)) is not None]


def train(digits: str) -> list[RtpPacket]:
    _, dtmf = make_sender()
    for d in digits:
        dtmf.send_digit(d)
    return drain(dtmf)


def test_receiver_reports_each_digit_once() -> None:
    packets = train("123")
    receiver = DtmfReceiver()
    first = receiver.receive(packets[0])
    assert first == DtmfDigit("1", 1, packets[0].timestamp, 10)
    assert receive_all(receiver, packets[1:]) == ["2", "3"]
    # Retransmissions change nothing.
    assert receive_all(receiver, packets) == []


def test_receiver_survives_lost_start_and_only_end_packets() -> None:
    packets = train("45")
    receiver = DtmfReceiver()
    without_start = packets[1:7]
    only_ends = [p for p in packets[7:] if TelephoneEvent.parse(p.payload).end]
    assert receive_all(receiver, without_start + only_ends) == ["4", "5"]


@given(st.data())
def test_receiver_any_order_loss_duplication(data: st.DataObject) -> None:
    digits = data.draw(st.text("0123456789*#ABCD", min_size=1, max_size=4))
    packets = train(digits)
    per_event = 7
    # Keep at least one packet of each event; reorder only within an event.
    kept: list[RtpPacket] = []
    for k in range(len(digits)):
        group = packets[k * per_event : (k + 1) * per_event]
        chosen = data.draw(st.lists(st.sampled_from(group), min_size=1, max_size=10))
        kept += chosen
    assert receive_all(DtmfReceiver(), kept) == list(digits)


def test_receiver_ignores_malformed_and_non_dtmf_events() -> None:
    receiver = DtmfReceiver()
    assert receiver.receive(RtpPacket(payload_type=101, payload=b"\x01")) is None
    assert receiver.malformed == 1
    tone_event = TelephoneEvent(70, volume=10, duration=160).serialize()
    assert receiver.receive(RtpPacket(payload_type=101, timestamp=5, payload=tone_event)) is None


def test_receiver_long_event_segments_are_one_digit() -> None:
    receiver = DtmfReceiver()
    first = TelephoneEvent(9, False, 10, 0xFFFF).serialize()
    second = TelephoneEvent(9, True, 10, 1000).serialize()
    packets = [
        RtpPacket(payload_type=101, timestamp=100, ssrc=1, payload=first),
        RtpPacket(payload_type=101, timestamp=100 + 0xFFFF, ssrc=1, payload=second),
    ]
    assert receive_all(receiver, packets) == ["9"]
    # The same key pressed again later is a new digit.
    again = RtpPacket(payload_type=101, timestamp=200_000, ssrc=1, payload=second)
    assert receive_all(receiver, [again]) == ["9"]


def goertzel_power(signal: np.ndarray, frequency: float, rate: int = 8000) -> float:
    n = np.arange(len(signal))
    ref = np.exp(-2j * np.pi * frequency * n / rate)
    return float(abs(np.dot(signal.astype(np.float64), ref)) ** 2)


def test_tone_has_the_q23_frequencies() -> None:
    tone = dtmf_tone("8", duration_ms=100)
    assert tone.dtype == np.int16
    assert len(tone) == 800
    assert np.abs(tone).max() <= 0.5 * 32767 + 1
    powers = {f: goertzel_power(tone, f) for f in (697, 770, 852, 941, 1209, 1336, 1477, 1633)}
    strongest = sorted(powers, key=powers.__getitem__)[-2:]
    assert sorted(strongest) == sorted(DTMF_FREQUENCIES["8"]) == [852, 1336]
    with pytest.raises(DtmfError):
        dtmf_tone("x")
