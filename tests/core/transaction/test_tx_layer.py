"""Matching (§17.1.3, §17.2.3, §9.2, RFC 2543 fallback), the in-transaction ACK and
CANCEL, transport errors, misuse by the TU, counters and memory."""

from __future__ import annotations

import pytest
from txhelpers import ack_for, drain, request, response

from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, parse_message
from sipline.core.transaction import (
    ClientKey,
    ServerKey,
    State,
    TransactionLayer,
    build_ack,
    build_cancel,
)
from sipline.core.transaction.events import (
    AckReceived,
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionEvent,
    TransportFailed,
)


def events(layer: TransactionLayer) -> list[TransactionEvent]:
    out = []
    while (ev := layer.next_event()) is not None:
        out.append(ev)
    return out


# -- client matching -----------------------------------------------------------------------
def test_client_key_is_branch_and_method() -> None:
    layer = TransactionLayer()
    inv = request()
    key = layer.send_request(inv, target="p", reliable=False, now=0)
    assert key == ClientKey("z9hG4bK74bf9", "INVITE")
    assert layer.state(key) is State.CALLING
    # Same branch, CSeq method CANCEL: not this transaction (§17.1.3).
    stray = response(request("CANCEL"), 200)
    layer.receive(stray, source="p", reliable=False, now=0.1)
    [ev] = events(layer)
    assert isinstance(ev, StrayResponse) and ev.source == "p"
    assert layer.stats.stray_responses == 1
    other = response(request(branch="z9hG4bKother"), 180)
    layer.receive(other, source="p", reliable=False, now=0.1)
    assert isinstance(layer.next_event(), StrayResponse)
    ringing = response(inv, 180)
    layer.receive(ringing, source="p", reliable=False, now=0.2)
    [ev] = events(layer)
    assert isinstance(ev, ResponseReceived) and ev.provisional and ev.key == key
    assert layer.state(key) is State.PROCEEDING
    assert layer.next_deadline() is None  # §17.1.1.2: no A and no B in Proceeding


def test_response_without_branch_is_stray() -> None:
    layer = TransactionLayer()
    data = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h.example.com\r\nTo: <sip:a@b>;tag=1\r\n"
        b"From: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    layer.receive(parse_message(data), source=None, reliable=False, now=0)
    assert isinstance(layer.next_event(), StrayResponse)


# -- server matching -----------------------------------------------------------------------
def test_server_key_branch_sent_by_method() -> None:
    layer = TransactionLayer()
    inv = request()
    layer.receive(inv, source="a", reliable=False, now=0)
    [ev] = events(layer)
    assert isinstance(ev, RequestReceived) and ev.source == "a"
    assert ev.key == ServerKey("z9hG4bK74bf9", "client.atlanta.example.com:5060", "INVITE")
    # Same branch, other sent-by: another transaction (§17.2.3).
    layer.receive(request(sent_by="other.example.com"), source="x", reliable=False, now=0)
    assert isinstance(layer.next_event(), RequestReceived)
    # Same branch and sent-by, other method: another transaction too.
    layer.receive(request("OPTIONS"), source="a", reliable=False, now=0)
    assert isinstance(layer.next_event(), RequestReceived)
    # sent-by hosts compare case-insensitively.
    layer.receive(
        request(sent_by="CLIENT.atlanta.example.com:5060"), source="a", reliable=False, now=0
    )
    assert layer.next_event() is None
    assert layer.server_count == 3


def test_response_goes_back_to_the_request_source() -> None:
    layer = TransactionLayer()
    inv = request()
    layer.receive(inv, source=("192.0.2.4", 5060), reliable=False, now=0)
    key = layer.send_response(response(inv, 180), now=0)
    [out] = layer.datagrams_to_send()
    assert out.destination == ("192.0.2.4", 5060) and out.key == key and not out.reliable


def test_cancel_matches_invite_server_transaction() -> None:
    layer = TransactionLayer()
    inv = request()
    layer.receive(inv, source="a", reliable=False, now=0)
    [received] = events(layer)
    assert isinstance(received, RequestReceived)
    cancel = request("CANCEL")
    layer.receive(cancel, source="a", reliable=False, now=1)
    [ev] = events(layer)
    assert isinstance(ev, CancelReceived)
    assert ev.invite_key == received.key
    assert ev.key == ServerKey("z9hG4bK74bf9", "client.atlanta.example.com:5060", "CANCEL")
    # A CANCEL for nothing we know: the TU answers 481 (§9.2).
    layer.receive(request("CANCEL", branch="z9hG4bKzzz"), source="a", reliable=False, now=1)
    [ev] = events(layer)
    assert isinstance(ev, CancelReceived) and ev.invite_key is None


def test_cancel_matches_a_non_invite_server_transaction() -> None:
    """§9.2: the CANCEL finds any request with its branch and sent-by; for a non-INVITE
    the TU answers it 200 and the request is unaffected."""
    layer = TransactionLayer()
    message = request("MESSAGE")
    layer.receive(message, source="a", reliable=False, now=0)
    [received] = events(layer)
    assert isinstance(received, RequestReceived)
    layer.receive(request("CANCEL"), source="a", reliable=False, now=1)
    [ev] = events(layer)
    assert isinstance(ev, CancelReceived)
    assert ev.invite_key is None and ev.other_key == received.key
    assert layer.state(received.key) is State.TRYING


def test_ack_for_non_2xx_is_absorbed_and_2xx_ack_passed_up() -> None:
    layer = TransactionLayer()
    inv = request()
    layer.receive(inv, source="a", reliable=False, now=0)
    busy = response(inv, 486)
    layer.send_response(busy, now=0.1)
    events(layer)
    layer.receive(ack_for(inv, busy), source="a", reliable=False, now=0.2)
    assert events(layer) == []
    lone_ack = request("ACK", branch="z9hG4bKdialog", to_tag="x")
    layer.receive(lone_ack, source="a", reliable=False, now=0.3)
    [ev] = events(layer)
    assert isinstance(ev, AckReceived) and ev.key is None and ev.request is lone_ack
    assert layer.stats.stray_acks == 1


def test_malformed_request_raises_before_any_state_change() -> None:
    layer = TransactionLayer()
    bad = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nVia: garbage\r\nCSeq: 1 OPTIONS\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        layer.receive(bad, source="a", reliable=False, now=0)
    assert layer.live_count == 0 and layer.next_event() is None


# -- RFC 2543 fallback -------------------------------------------------------------------
@pytest.mark.parametrize("branch", ["1234abcd", "z9hG4bK"])  # a bare cookie counts as none
def test_legacy_matching(branch: str) -> None:
    layer = TransactionLayer()
    inv = request(branch=branch)
    layer.receive(inv, source="a", reliable=False, now=0)
    [ev] = events(layer)
    assert isinstance(ev, RequestReceived)
    key = ev.key
    assert key.branch.startswith("\x00")
    layer.receive(request(branch=branch), source="a", reliable=False, now=0.1)
    assert events(layer) == []  # retransmission
    # Another Request-URI is another transaction.
    layer.receive(
        request(branch=branch, uri="sip:carol@x.example.com"), source="a", reliable=False, now=0.1
    )
    assert isinstance(layer.next_event(), RequestReceived)
    # A response carries no Request-URI: with two candidates, the TU names the key.
    busy = response(inv, 486, to_tag="legacy-tag")
    with pytest.raises(LocalProtocolError, match="ambiguous"):
        layer.send_response(busy, now=0.2)
    assert layer.send_response(busy, now=0.2, key=key) == key
    # An ACK matches with the response's To tag, not with another.
    wrong = request("ACK", branch=branch, to_tag="other")
    layer.receive(wrong, source="a", reliable=False, now=0.3)
    assert isinstance(layer.next_event(), AckReceived)
    layer.receive(
        request("ACK", branch=branch, to_tag="legacy-tag"), source="a", reliable=False, now=0.3
    )
    assert layer.next_event() is None
    assert layer.state(key) is State.CONFIRMED
    # CANCEL matches the INVITE (§9.2, 2543 rules).
    inv2 = request(branch=branch, cseq=2)
    layer.receive(inv2, source="a", reliable=False, now=1)
    [new] = events(layer)
    assert isinstance(new, RequestReceived)
    layer.receive(request("CANCEL", branch=branch, cseq=2), source="a", reliable=False, now=1)
    [ev] = events(layer)
    assert isinstance(ev, CancelReceived) and ev.invite_key == new.key
    # With one candidate, the response alone finds it.
    assert layer.send_response(response(inv2, 487), now=1) == new.key


# -- ACK and CANCEL construction -----------------------------------------------------------
def test_ack_built_in_the_transaction() -> None:
    layer = TransactionLayer()
    inv = request()
    layer.send_request(inv, target="p", reliable=False, now=0)
    layer.datagrams_to_send()
    layer.receive(response(inv, 404, to_tag="bobtag"), source="p", reliable=False, now=1)
    [out] = layer.datagrams_to_send()
    ack = parse_message(out.data)
    assert isinstance(ack, Request)
    assert ack.method == "ACK" and ack.uri_text == inv.uri_text
    assert ack.top_via.branch == inv.top_via.branch and len(ack.vias) == 1
    assert ack.to.tag == "bobtag"
    assert ack.from_.tag == inv.from_.tag and ack.call_id == inv.call_id
    assert (ack.cseq.seq, ack.cseq.method) == (inv.cseq.seq, "ACK")
    assert ack.headers.get_all("Route") == inv.headers.get_all("Route")
    assert ack.max_forwards == 70 and ack.body == b""


def test_build_ack_and_cancel_take_only_the_top_via() -> None:
    data = (
        b"INVITE sip:bob@b.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1, SIP/2.0/UDP a.example.com;branch=z9hG4bKa\r\n"
        b"To: <sip:bob@b.example.com>\r\nFrom: <sip:a@a.example.com>;tag=1\r\n"
        b"Call-ID: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    inv = parse_message(data)
    assert isinstance(inv, Request)
    cancel = build_cancel(inv)
    assert [v.branch for v in cancel.vias] == ["z9hG4bKp1"]
    assert str(cancel.cseq) == "7 CANCEL" and cancel.max_forwards == 70
    assert cancel.to.tag is None
    ack = build_ack(inv, response(inv, 500, to_tag="t"))
    assert [v.branch for v in ack.vias] == ["z9hG4bKp1"] and ack.to.tag == "t"


def test_cancel_waits_for_a_provisional() -> None:
    layer = TransactionLayer()
    inv = request()
    key = layer.send_request(inv, target="p", reliable=False, now=0)
    layer.datagrams_to_send()
    cancel_key = layer.cancel(key, now=0.1)
    assert cancel_key == ClientKey(key.branch, "CANCEL")
    assert layer.datagrams_to_send() == []  # §9.1: not before a provisional
    layer.receive(response(inv, 180), source="p", reliable=False, now=0.2)
    [out] = layer.datagrams_to_send()
    cancel = parse_message(out.data)
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
    assert cancel.top_via.branch == inv.top_via.branch and out.destination == "p"
    assert layer.state(cancel_key) is State.TRYING
    assert layer.cancel(key, now=0.3) == cancel_key  # idempotent
    assert layer.datagrams_to_send() == []
    layer.receive(response(inv, 487), source="p", reliable=False, now=0.4)
    assert layer.cancel(key, now=0.5) is None  # nothing left to cancel
    with pytest.raises(LocalProtocolError):
        layer.cancel(cancel_key, now=0.5)
    assert layer.cancel(ClientKey("z9hG4bKnone", "INVITE"), now=0.5) is None


def test_a_cancel_carries_its_reason_even_when_it_waited() -> None:
    """RFC 3326: a forking proxy says why it cancels a branch; the Reason given while
    the INVITE waited for a provisional is on the CANCEL sent later (§9.1)."""
    layer = TransactionLayer()
    inv = request()
    key = layer.send_request(inv, target="p", reliable=False, now=0)
    layer.datagrams_to_send()
    reason = 'SIP;cause=200;text="Call completed elsewhere"'
    layer.cancel(key, now=0.1, reason=reason)
    layer.receive(response(inv, 180), source="p", reliable=False, now=0.2)
    [out] = layer.datagrams_to_send()
    cancel = parse_message(out.data)
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
    assert cancel.headers.get_all("reason") == [reason]


# -- transport errors ----------------------------------------------------------------------
def test_transport_error_client_and_server() -> None:
    layer = TransactionLayer()
    ckey = layer.send_request(request(transport="TCP"), target="p", reliable=True, now=0)
    inv = request(branch="z9hG4bKsrv", transport="TCP")
    layer.receive(inv, source="a", reliable=True, now=0)
    drain(layer)
    layer.transport_error(ckey, now=1)
    assert drain(layer) == ([], ["TransportFailed", "Terminated"])
    skey = layer.send_response(response(inv, 180), now=1)
    layer.transport_error(skey, now=2)
    assert drain(layer) == (["180"], ["TransportFailed", "Terminated"])
    layer.transport_error(skey, now=3)  # unknown by now: ignored
    assert layer.live_count == 0 and layer.stats.transport_failures == 2


def test_transport_error_after_2xx_keeps_accepted() -> None:
    layer = TransactionLayer()
    inv = request()
    layer.receive(inv, source="a", reliable=False, now=0)
    key = layer.send_response(response(inv, 200), now=0)
    events(layer)
    layer.transport_error(key, now=1)
    [ev] = events(layer)
    assert isinstance(ev, TransportFailed)
    assert layer.state(key) is State.ACCEPTED  # Timer L still ends it


# -- misuse --------------------------------------------------------------------------------
def test_local_protocol_errors() -> None:
    layer = TransactionLayer()
    inv = request()
    layer.send_request(inv, target="p", reliable=False, now=0)
    with pytest.raises(LocalProtocolError, match="exists"):
        layer.send_request(request(), target="p", reliable=False, now=0)
    with pytest.raises(LocalProtocolError, match="ACK"):
        layer.send_request(request("ACK"), target="p", reliable=False, now=0)
    no_branch = parse_message(
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCSeq: 1 OPTIONS\r\n\r\n"
    )
    assert isinstance(no_branch, Request)
    with pytest.raises(LocalProtocolError, match="branch"):
        layer.send_request(no_branch, target="p", reliable=False, now=0)
    no_via = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n")
    assert isinstance(no_via, Request)
    with pytest.raises(LocalProtocolError, match="Via"):
        layer.send_request(no_via, target="p", reliable=False, now=0)
    with pytest.raises(LocalProtocolError, match="no server transaction"):
        layer.send_response(response(inv, 200), now=0)
    srv = request(branch="z9hG4bKs")
    layer.receive(srv, source="a", reliable=False, now=0)
    layer.send_response(response(srv, 486), now=0)
    with pytest.raises(LocalProtocolError, match="cannot send"):
        layer.send_response(response(srv, 200), now=0)


def test_send_stateless() -> None:
    layer = TransactionLayer()
    ack = request("ACK", to_tag="t")
    layer.send_stateless(ack, destination="b", reliable=False)
    [out] = layer.datagrams_to_send()
    assert out.data == ack.to_bytes() and out.key is None and layer.live_count == 0


def test_auto_trying_can_be_disabled() -> None:
    layer = TransactionLayer(auto_trying=False)
    layer.receive(request(), source="a", reliable=False, now=0)
    assert layer.next_deadline() is None


def test_terminate_by_the_tu() -> None:
    layer = TransactionLayer()
    inv = request()
    key = layer.send_request(inv, target="p", reliable=False, now=0)
    layer.receive(response(inv, 180), source="p", reliable=False, now=0)
    drain(layer)
    layer.terminate(key)
    assert drain(layer) == ([], ["Terminated"])
    layer.terminate(key)
    assert layer.live_count == 0


# -- counters and memory -------------------------------------------------------------------
def test_counters_and_bounded_memory() -> None:
    layer = TransactionLayer()
    n = 3000
    for i in range(n):
        req = request("OPTIONS", branch=f"z9hG4bKc{i}")
        layer.send_request(req, target="p", reliable=False, now=i * 0.001)
        # The answer comes at once: E and F are cancelled, K runs.
        layer.receive(response(req, 200), source="p", reliable=False, now=i * 0.001)
    assert layer.live_count == n and layer.client_count == n
    # Cancelled E/F entries are dropped from the heap as they pile up.
    assert len(layer._heap) <= 4 * n
    layer.handle_timers(now=10.0)
    assert layer.live_count == 0
    assert layer.next_deadline() is None
    assert layer._heap == []
    s = layer.stats
    assert (s.clients_created, s.terminated) == (n, n)
    assert s.retransmissions_sent == 0
