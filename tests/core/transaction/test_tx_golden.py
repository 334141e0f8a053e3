"""Golden tables: (now, input) -> (messages sent, events, next deadline), exact numbers.

No sleeps and no event loop: time is whatever `now` says, and `handle_timers` is
called exactly at each deadline the layer announces.
"""

from __future__ import annotations

from txhelpers import Recorder, ack_for, request, response

from sipline.core.transaction import TransactionLayer

INV = "INVITE"


def test_invite_udp_timer_a_then_b() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request()
    rec.at(0.0, "send INVITE", lambda: layer.send_request(inv, target="p1", reliable=False, now=0))
    rec.timers_until(100.0)
    assert rec.rows == [
        (0.0, "send INVITE", [INV], [], 0.5),
        (0.5, "timers", [INV], [], 1.5),
        (1.5, "timers", [INV], [], 3.5),
        (3.5, "timers", [INV], [], 7.5),
        (7.5, "timers", [INV], [], 15.5),
        (15.5, "timers", [INV], [], 31.5),
        (31.5, "timers", [INV], [], 32.0),
        (32.0, "timers", [], ["TimedOut B", "Terminated"], None),
    ]
    assert layer.live_count == 0
    assert layer.stats.retransmissions_sent == 6
    assert layer.stats.timeouts == 1


def test_invite_retransmissions_reuse_the_same_bytes() -> None:
    layer = TransactionLayer()
    layer.send_request(request(), target="p1", reliable=False, now=0)
    first = layer.datagrams_to_send()[0]
    layer.handle_timers(now=0.5)
    again = layer.datagrams_to_send()[0]
    assert again.data is first.data  # serialised once
    assert (again.destination, again.reliable, again.key) == ("p1", False, first.key)


def test_invite_tcp_no_timer_a() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request(transport="TCP")
    rec.at(0.0, "send INVITE", lambda: layer.send_request(inv, target="p1", reliable=True, now=0))
    rec.timers_until(100.0)
    assert rec.rows == [
        (0.0, "send INVITE", [INV], [], 32.0),
        (32.0, "timers", [], ["TimedOut B", "Terminated"], None),
    ]


def test_non_invite_udp_timer_e_capped_at_t2_then_f() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    opt = request("OPTIONS")
    rec.at(0.0, "send", lambda: layer.send_request(opt, target="p1", reliable=False, now=0))
    rec.timers_until(100.0)
    times = [row[0] for row in rec.rows]
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    assert all(row[2] == ["OPTIONS"] for row in rec.rows[:-1])
    assert rec.rows[-1] == (32.0, "timers", [], ["TimedOut F", "Terminated"], None)


def test_non_invite_after_provisional_e_is_t2() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    reg = request("REGISTER")
    rec.at(0.0, "send", lambda: layer.send_request(reg, target="r", reliable=False, now=0))
    rec.timers_until(0.5)
    trying = response(reg, 100)
    rec.at(0.7, "100", lambda: layer.receive(trying, source="r", reliable=False, now=0.7))
    rec.timers_until(14.0)
    assert rec.rows == [
        (0.0, "send", ["REGISTER"], [], 0.5),
        (0.5, "timers", ["REGISTER"], [], 1.5),
        (0.7, "100", [], ["ResponseReceived 100"], 1.5),  # the armed E keeps its deadline
        (1.5, "timers", ["REGISTER"], [], 5.5),  # then T2, not 2 s
        (5.5, "timers", ["REGISTER"], [], 9.5),
        (9.5, "timers", ["REGISTER"], [], 13.5),
        (13.5, "timers", ["REGISTER"], [], 17.5),
    ]
    ok = response(reg, 200)
    rec.at(14.0, "200", lambda: layer.receive(ok, source="r", reliable=False, now=14.0))
    rec.at(15.0, "200 again", lambda: layer.receive(ok, source="r", reliable=False, now=15.0))
    rec.timers_until(100.0)
    assert rec.rows[-3:] == [
        (14.0, "200", [], ["ResponseReceived 200"], 19.0),  # Timer K = T4
        (15.0, "200 again", [], [], 19.0),  # absorbed
        (19.0, "timers", [], ["Terminated"], None),
    ]


def test_non_invite_tcp_no_e_and_k_zero() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    bye = request("BYE", transport="TCP")
    rec.at(0.0, "send", lambda: layer.send_request(bye, target="b", reliable=True, now=0))
    ok = response(bye, 200)
    rec.at(3.0, "200", lambda: layer.receive(ok, source="b", reliable=True, now=3.0))
    assert rec.rows == [
        (0.0, "send", ["BYE"], [], 32.0),
        (3.0, "200", [], ["ResponseReceived 200", "Terminated"], None),
    ]


def test_timer_d_udp_acks_each_retransmitted_final() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request()
    busy = response(inv, 486)
    rec.at(0.0, "send", lambda: layer.send_request(inv, target="p", reliable=False, now=0))
    rec.at(0.2, "486", lambda: layer.receive(busy, source="p", reliable=False, now=0.2))
    rec.at(2.0, "486 again", lambda: layer.receive(busy, source="p", reliable=False, now=2.0))
    rec.timers_until(100.0)
    assert rec.rows == [
        (0.0, "send", [INV], [], 0.5),
        (0.2, "486", ["ACK"], ["ResponseReceived 486"], 32.2),
        (2.0, "486 again", ["ACK"], [], 32.2),  # ACK again, not passed up
        (32.2, "timers", [], ["Terminated"], None),
    ]


def test_timer_d_tcp_is_zero() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request(transport="TCP")
    busy = response(inv, 486)
    rec.at(0.0, "send", lambda: layer.send_request(inv, target="p", reliable=True, now=0))
    rec.at(1.0, "486", lambda: layer.receive(busy, source="p", reliable=True, now=1.0))
    assert rec.rows == [
        (0.0, "send", [INV], [], 32.0),
        (1.0, "486", ["ACK"], ["ResponseReceived 486", "Terminated"], None),
    ]


def test_invite_accepted_passes_2xx_retransmissions_until_m() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request()
    ok = response(inv, 200)
    rec.at(0.0, "send", lambda: layer.send_request(inv, target="p", reliable=False, now=0))
    rec.at(0.1, "200", lambda: layer.receive(ok, source="p", reliable=False, now=0.1))
    rec.at(0.6, "200 again", lambda: layer.receive(ok, source="p", reliable=False, now=0.6))
    rec.timers_until(100.0)
    assert rec.rows == [
        (0.0, "send", [INV], [], 0.5),
        (0.1, "200", [], ["ResponseReceived 200"], 32.1),  # no ACK: the TU sends it
        (0.6, "200 again", [], ["ResponseReceived 200"], 32.1),  # RFC 6026: passed up
        (32.1, "timers", [], ["Terminated"], None),
    ]


def test_server_invite_trying_g_then_h() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request()
    rec.at(0.0, "INVITE", lambda: layer.receive(inv, source="a", reliable=False, now=0))
    rec.timers_until(0.2)
    busy = response(inv, 486)
    rec.at(0.3, "TU 486", lambda: layer.send_response(busy, now=0.3))
    rec.timers_until(100.0)
    assert rec.rows[:3] == [
        (0.0, "INVITE", [], ["RequestReceived INVITE"], 0.2),
        (0.2, "timers", ["100"], [], None),  # §17.2.1: the TU was silent for 200 ms
        (0.3, "TU 486", ["486"], [], 0.8),
    ]
    g = [row[0] for row in rec.rows[3:-1]]
    assert g == [0.8, 1.8, 3.8, 7.8, 11.8, 15.8, 19.8, 23.8, 27.8, 31.8]
    assert all(row[2] == ["486"] for row in rec.rows[3:-1])
    assert rec.rows[-1] == (32.3, "timers", [], ["TimedOut H", "Terminated"], None)


def test_server_invite_g_schedule_from_zero() -> None:
    layer = TransactionLayer()
    inv = request()
    layer.receive(inv, source="a", reliable=False, now=0)
    layer.send_response(response(inv, 603), now=0)
    deadlines = []
    while (d := layer.next_deadline()) is not None:
        deadlines.append(d)
        layer.handle_timers(now=d)
    assert deadlines[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]
    assert deadlines[-1] == 32.0  # Timer H


def test_server_invite_ack_timer_i_udp() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request()
    busy = response(inv, 486)
    ack = ack_for(inv, busy)
    rec.at(0.0, "INVITE", lambda: layer.receive(inv, source="a", reliable=False, now=0))
    rec.at(0.1, "TU 486", lambda: layer.send_response(busy, now=0.1))
    rec.timers_until(0.9)
    rec.at(1.0, "ACK", lambda: layer.receive(ack, source="a", reliable=False, now=1.0))
    rec.at(2.0, "ACK again", lambda: layer.receive(ack, source="a", reliable=False, now=2))
    rec.at(2.5, "INVITE again", lambda: layer.receive(inv, source="a", reliable=False, now=2.5))
    rec.timers_until(100.0)
    assert rec.rows == [
        (0.0, "INVITE", [], ["RequestReceived INVITE"], 0.2),
        (0.1, "TU 486", ["486"], [], 0.6),
        (0.6, "timers", ["486"], [], 1.6),
        (1.0, "ACK", [], [], 6.0),  # Confirmed: Timer I = T4; G and H cancelled
        (2.0, "ACK again", [], [], 6.0),  # absorbed
        (2.5, "INVITE again", [], [], 6.0),  # absorbed
        (6.0, "timers", [], ["Terminated"], None),
    ]


def test_server_invite_ack_tcp_timer_i_zero() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request(transport="TCP")
    busy = response(inv, 486)
    ack = ack_for(inv, busy)
    rec.at(0.0, "INVITE", lambda: layer.receive(inv, source="a", reliable=True, now=0))
    rec.at(0.1, "TU 486", lambda: layer.send_response(busy, now=0.1))
    rec.at(1.0, "ACK", lambda: layer.receive(ack, source="a", reliable=True, now=1.0))
    assert rec.rows == [
        (0.0, "INVITE", [], ["RequestReceived INVITE"], 0.2),
        (0.1, "TU 486", ["486"], [], 32.1),  # no G over TCP, only H
        (1.0, "ACK", [], ["Terminated"], None),
    ]


def test_server_invite_retransmission_gets_last_response() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request()
    rec.at(0.0, "INVITE", lambda: layer.receive(inv, source="a", reliable=False, now=0))
    rec.at(0.1, "INVITE again", lambda: layer.receive(inv, source="a", reliable=False, now=0.1))
    rec.timers_until(0.2)
    rec.at(0.5, "INVITE again", lambda: layer.receive(inv, source="a", reliable=False, now=0.5))
    ringing = response(inv, 180)
    rec.at(1.0, "TU 180", lambda: layer.send_response(ringing, now=1.0))
    rec.at(1.5, "INVITE again", lambda: layer.receive(inv, source="a", reliable=False, now=1.5))
    assert rec.rows == [
        (0.0, "INVITE", [], ["RequestReceived INVITE"], 0.2),
        (0.1, "INVITE again", [], [], 0.2),  # nothing to answer with yet
        (0.2, "timers", ["100"], [], None),
        (0.5, "INVITE again", ["100"], [], None),
        (1.0, "TU 180", ["180"], [], None),
        (1.5, "INVITE again", ["180"], [], None),
    ]
    assert layer.stats.retransmissions_received == 3


def test_server_invite_accepted_rfc6026() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    inv = request()
    ok = response(inv, 200)
    ack_same_branch = request("ACK", to_tag="8321234356")
    ack_new_branch = request("ACK", branch="z9hG4bKnew", to_tag="8321234356")
    rec.at(0.0, "INVITE", lambda: layer.receive(inv, source="a", reliable=False, now=0))
    rec.at(0.1, "TU 200", lambda: layer.send_response(ok, now=0.1))
    rec.at(0.5, "INVITE again", lambda: layer.receive(inv, source="a", reliable=False, now=0.5))
    rec.at(0.6, "TU 200 again", lambda: layer.send_response(ok, now=0.6))
    rec.at(0.7, "ACK", lambda: layer.receive(ack_new_branch, source="a", reliable=False, now=0.7))
    rec.at(0.8, "ACK", lambda: layer.receive(ack_same_branch, source="a", reliable=False, now=0.8))
    rec.timers_until(100.0)
    assert rec.rows == [
        (0.0, "INVITE", [], ["RequestReceived INVITE"], 0.2),
        (0.1, "TU 200", ["200"], [], 32.1),  # Timer L
        (0.5, "INVITE again", [], [], 32.1),  # absorbed, not a new request
        (0.6, "TU 200 again", ["200"], [], 32.1),  # the TU retransmits 2xx itself
        (0.7, "ACK", [], ["AckReceived unmatched"], 32.1),  # an RFC 3261 2xx ACK
        (0.8, "ACK", [], ["AckReceived matched"], 32.1),  # passed up, not absorbed
        (32.1, "timers", [], ["Terminated"], None),
    ]


def test_server_non_invite_timer_j_udp() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    reg = request("REGISTER")
    ok = response(reg, 200)
    rec.at(0.0, "REGISTER", lambda: layer.receive(reg, source="b", reliable=False, now=0))
    rec.at(0.3, "again", lambda: layer.receive(reg, source="b", reliable=False, now=0.3))
    rec.at(1.0, "TU 200", lambda: layer.send_response(ok, now=1.0))
    rec.at(2.0, "again", lambda: layer.receive(reg, source="b", reliable=False, now=2.0))
    rec.timers_until(100.0)
    assert rec.rows == [
        (0.0, "REGISTER", [], ["RequestReceived REGISTER"], None),
        (0.3, "again", [], [], None),  # Trying: absorbed
        (1.0, "TU 200", ["200"], [], 33.0),  # J = 64*T1
        (2.0, "again", ["200"], [], 33.0),  # Completed: the final again
        (33.0, "timers", [], ["Terminated"], None),
    ]


def test_server_non_invite_tcp_j_zero() -> None:
    layer = TransactionLayer()
    rec = Recorder(layer)
    reg = request("REGISTER", transport="TCP")
    trying = response(reg, 100)
    ok = response(reg, 200)
    rec.at(0.0, "REGISTER", lambda: layer.receive(reg, source="b", reliable=True, now=0))
    rec.at(0.1, "TU 100", lambda: layer.send_response(trying, now=0.1))
    rec.at(0.3, "again", lambda: layer.receive(reg, source="b", reliable=True, now=0.3))
    rec.at(1.0, "TU 200", lambda: layer.send_response(ok, now=1.0))
    assert rec.rows == [
        (0.0, "REGISTER", [], ["RequestReceived REGISTER"], None),
        (0.1, "TU 100", ["100"], [], None),
        (0.3, "again", ["100"], [], None),  # Proceeding: the provisional again
        (1.0, "TU 200", ["200"], ["Terminated"], None),  # J = 0
    ]


def test_late_handle_timers_does_not_shift_schedule() -> None:
    layer = TransactionLayer()
    layer.send_request(request(), target="p", reliable=False, now=0)
    layer.datagrams_to_send()
    layer.handle_timers(now=2.0)  # woke up late: A was due at 0.5 and 1.5
    assert len(layer.datagrams_to_send()) == 2
    assert layer.next_deadline() == 3.5  # not 2.0 + 2
    layer.handle_timers(now=3.6)
    assert layer.next_deadline() == 7.5


def test_late_handle_timers_non_invite() -> None:
    layer = TransactionLayer()
    layer.send_request(request("OPTIONS"), target="p", reliable=False, now=0)
    layer.handle_timers(now=0.9)
    assert layer.next_deadline() == 1.5
    layer.handle_timers(now=9.0)  # 1.5, 3.5 and 7.5 were due
    assert layer.next_deadline() == 11.5
    assert len(layer.datagrams_to_send()) == 5
