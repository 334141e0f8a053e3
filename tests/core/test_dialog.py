"""RFC 3261 §12 dialogs: creation on both sides, routing, CSeq, target refresh, matching."""

from __future__ import annotations

import pytest
from dialog_helpers import answer, invite, reparse

from sipline.core.builders import build_response
from sipline.core.dialog import Dialog, DialogId, DialogState, DialogTable
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.message import Request, parse_message
from sipline.core.uri import parse_uri
from sipline.core.views import parse_name_addr

MOVED = parse_name_addr("<sip:alice@198.51.100.7:5070>", "Contact")
RR = ["<sip:p2.biloxi.example.com;lr>", "<sip:p1.atlanta.example.com;lr>"]


# -- creation ---------------------------------------------------------------------------
def test_uac_dialog_from_2xx_reverses_record_route() -> None:
    inv = invite(record_route=RR)
    ok = answer(inv, 200, "a6c85cf", record_route=RR)
    d = Dialog.as_uac(inv, ok)
    assert d.state is DialogState.CONFIRMED
    assert d.id == DialogId("a84b4c76e66710@pc33.atlanta.example.com", "1928301774", "a6c85cf")
    assert [str(r) for r in d.route_set] == list(reversed(RR))
    assert str(d.remote_target) == "sip:bob@192.0.2.4"
    assert d.local_seq == 314159 and d.remote_seq is None
    assert d.caller and not d.secure
    assert d.local.tag == "1928301774" and d.remote.tag == "a6c85cf"
    assert str(d.next_hop()) == "sip:p1.atlanta.example.com;lr"


def test_uas_dialog_keeps_record_route_order_and_starts_local_cseq_empty() -> None:
    inv = invite(record_route=RR)
    ok = build_response(inv, 200, to_tag="b0b")
    d = Dialog.as_uas(inv, ok)
    assert d.id == DialogId("a84b4c76e66710@pc33.atlanta.example.com", "b0b", "1928301774")
    assert [str(r) for r in d.route_set] == RR
    assert str(d.remote_target) == "sip:alice@pc33.atlanta.example.com"
    assert d.remote_seq == 314159 and d.local_seq is None and not d.caller
    bye = d.create_request("BYE", initial_seq=7)
    assert bye.cseq.seq == 7  # §12.1.1: an empty local sequence gets a chosen start
    assert d.create_request("INFO").cseq.seq == 8


def test_sips_request_uri_makes_a_secure_dialog() -> None:
    inv = invite()
    inv.uri = parse_uri("sips:bob@biloxi.example.com")
    d = Dialog.as_uac(inv, answer(inv, 200, "t"))
    assert d.secure


def test_creation_needs_tags_contacts_and_a_dialog_creating_status() -> None:
    inv = invite()
    with pytest.raises(LocalProtocolError):
        Dialog.as_uac(inv, answer(inv, 486, "x"))
    with pytest.raises(RemoteProtocolError):
        Dialog.as_uac(inv, answer(inv, 200, None))
    with pytest.raises(RemoteProtocolError, match="Contact"):
        Dialog.as_uac(inv, answer(inv, 200, "x", contact=None))
    early = Dialog.as_uac(inv, answer(inv, 180, "x", contact=None))
    assert early.is_early and str(early.remote_target) == "sip:bob@biloxi.example.com"
    inv.headers.remove("Contact")
    with pytest.raises(RemoteProtocolError, match="Contact"):
        Dialog.as_uas(inv, build_response(inv, 200, to_tag="t"))
    with pytest.raises(LocalProtocolError):
        Dialog.as_uas(inv, build_response(inv, 100))
    with pytest.raises(LocalProtocolError, match="To tag"):
        Dialog.as_uas(invite(), build_response(invite(), 180))


# -- early dialogs and forking ------------------------------------------------------------
def test_early_dialog_confirmed_by_2xx_recomputes_the_route_set() -> None:
    inv = invite()
    table = DialogTable()
    early = table.receive_uac_response(inv, answer(inv, 180, "t1", record_route=RR[:1]))
    assert early is not None and early.is_early
    assert [str(r) for r in early.route_set] == RR[:1]
    ok = answer(inv, 200, "t1", contact="<sip:bob@192.0.2.9>", record_route=RR)
    assert table.receive_uac_response(inv, ok) is early
    assert early.is_confirmed
    assert [str(r) for r in early.route_set] == list(reversed(RR))
    assert str(early.remote_target) == "sip:bob@192.0.2.9"
    assert len(table) == 1


def test_forked_call_makes_one_early_dialog_per_remote_tag() -> None:
    inv = invite()
    table = DialogTable()
    assert table.receive_uac_response(inv, answer(inv, 100, None)) is None
    a = table.receive_uac_response(inv, answer(inv, 180, "fork-a"))
    b = table.receive_uac_response(inv, answer(inv, 183, "fork-b"))
    again = table.receive_uac_response(inv, answer(inv, 180, "fork-a"))
    assert a is not None and b is not None and a is again and a is not b
    assert len(table.siblings(inv.call_id, "1928301774")) == 2
    # A 2xx from a third branch makes a confirmed dialog of its own (§13.2.2.4).
    c = table.receive_uac_response(inv, answer(inv, 200, "fork-c"))
    assert c is not None and c.is_confirmed and a.is_early and b.is_early
    assert len(table) == 3


def test_non_2xx_final_ends_every_early_dialog_of_the_request() -> None:
    inv = invite()
    table = DialogTable()
    a = table.receive_uac_response(inv, answer(inv, 180, "fork-a"))
    b = table.receive_uac_response(inv, answer(inv, 180, "fork-b"))
    assert table.receive_uac_response(inv, answer(inv, 486, "fork-b")) is None
    assert a is not None and b is not None and a.terminated and b.terminated
    assert table.purge() == 2 and len(table) == 0


def test_a_response_without_a_from_tag_is_our_own_bug() -> None:
    inv = invite()
    inv.headers.set("From", "<sip:alice@atlanta.example.com>")
    with pytest.raises(LocalProtocolError):
        DialogTable().receive_uac_response(inv, answer(inv, 180, "x"))


# -- building requests (§12.2.1.1) --------------------------------------------------------
def _dialog(route_set: list[str], target: str = "<sip:user@remoteua>") -> Dialog:
    inv = invite()
    rr = list(reversed(route_set))  # as received, the caller reverses it back
    return Dialog.as_uac(inv, answer(inv, 200, "rt", contact=target, record_route=rr))


def test_loose_routing_keeps_the_remote_target_in_the_request_uri() -> None:
    d = _dialog(["<sip:proxy1;lr>", "<sip:proxy2;lr>"])
    bye = d.create_request("BYE")
    assert bye.uri_text == "sip:user@remoteua"
    assert bye.headers.get_all("route") == ["<sip:proxy1;lr>", "<sip:proxy2;lr>"]
    assert bye.cseq.seq == 314160 and bye.cseq.method == "BYE"
    assert bye.to.tag == "rt" and bye.from_.tag == "1928301774"
    assert "via" not in bye.headers


def test_strict_routing_example_of_section_12_2_1_1() -> None:
    d = _dialog(["<sip:proxy1>", "<sip:proxy2>", "<sip:proxy3;lr>", "<sip:proxy4>"])
    req = d.create_request("INFO")
    assert req.uri_text == "sip:proxy1"
    assert req.headers.get_all("route") == [
        "<sip:proxy2>",
        "<sip:proxy3;lr>",
        "<sip:proxy4>",
        "<sip:user@remoteua>",
    ]
    assert str(d.next_hop()) == "sip:proxy1"


def test_request_uri_drops_parameters_a_request_uri_may_not_carry() -> None:
    d = _dialog([], target="<sip:user@remoteua;method=INVITE;transport=tcp?Subject=x>")
    req = d.create_request("BYE")
    assert req.uri_text == "sip:user@remoteua;transport=tcp"
    plain = _dialog([], target="<sip:user@remoteua;transport=tcp>")
    assert plain.create_request("BYE").uri_text == "sip:user@remoteua;transport=tcp"


def test_ack_for_2xx_reuses_the_invite_cseq_and_the_route_set() -> None:
    d = _dialog(["<sip:proxy1;lr>"])
    reinvite = d.create_request("INVITE", contact=d.local)
    ack = d.create_ack(reinvite.cseq.seq, body=b"v=0\r\n", content_type="application/sdp")
    assert ack.method == "ACK" and ack.cseq.seq == reinvite.cseq.seq == 314160
    assert ack.cseq.method == "ACK" and ack.body == b"v=0\r\n"
    assert ack.headers.get_all("route") == ["<sip:proxy1;lr>"]
    assert d.local_seq == 314160  # the ACK took no number of its own
    with pytest.raises(LocalProtocolError):
        d.create_request("ACK")
    with pytest.raises(LocalProtocolError):
        d.create_request("CANCEL")


def test_extra_headers_body_and_contact_go_in() -> None:
    d = _dialog([])
    req = d.create_request(
        "INFO",
        contact=d.local,
        body=b"Signal=1\r\n",
        content_type="application/dtmf-relay",
        extra=[("Supported", "timer")],
        max_forwards=10,
    )
    assert req.max_forwards == 10 and req.headers.get("supported") == "timer"
    assert req.content_type == "application/dtmf-relay" and req.content_length == 10
    assert req.contacts[0].uri_text == "sip:alice@atlanta.example.com"


def test_cseq_space_and_initial_value_limits() -> None:
    d = _dialog([])
    d.local_seq = 2**32 - 1
    with pytest.raises(LocalProtocolError):
        d.create_request("BYE")
    d.local_seq = None
    with pytest.raises(LocalProtocolError):
        d.next_local_seq(initial=2**31)


def test_terminated_dialog_builds_nothing() -> None:
    d = _dialog([])
    d.terminate()
    with pytest.raises(LocalProtocolError):
        d.create_request("BYE")
    with pytest.raises(LocalProtocolError):
        d.create_ack(1)


# -- receiving (§12.2.2) ------------------------------------------------------------------
def _uas_pair() -> tuple[Dialog, Dialog, DialogTable]:
    """Alice's dialog (caller) and Bob's (callee), Bob's in a table."""
    inv = invite(record_route=RR)
    ok = build_response(inv, 200, to_tag="bobtag", extra=[("Contact", "<sip:bob@192.0.2.4>")])
    ok.headers.add("Record-Route", RR[0])
    ok.headers.add("Record-Route", RR[1])
    bob = Dialog.as_uas(inv, ok)
    alice = Dialog.as_uac(inv, parse_message(ok.to_bytes()))  # type: ignore[arg-type]
    table = DialogTable()
    table.add(bob)
    return alice, bob, table


def test_request_from_one_side_matches_the_other_sides_dialog() -> None:
    alice, bob, table = _uas_pair()
    bye = reparse(alice.create_request("BYE"))
    assert table.receive_request(bye) is bob
    assert bob.remote_seq == 314160
    assert bye.uri_text == "sip:bob@192.0.2.4"
    # And back: Bob's requests follow the route set in Alice's direction.
    info = bob.create_request("INFO")
    assert info.headers.get_all("route") == RR
    assert info.uri_text == "sip:alice@pc33.atlanta.example.com"


def test_unknown_to_tag_gets_481_and_no_to_tag_is_outside_any_dialog() -> None:
    alice, _bob, table = _uas_pair()
    stranger = reparse(alice.create_request("BYE"))
    stranger.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=nobody")
    with pytest.raises(RemoteProtocolError) as exc:
        table.receive_request(stranger)
    assert exc.value.status == 481
    fresh = invite()
    assert table.receive_request(fresh) is None
    assert table.match(fresh) is None


def test_lower_cseq_is_rejected_with_500_equal_and_higher_are_taken() -> None:
    alice, bob, table = _uas_pair()
    req = reparse(alice.create_request("INFO"))
    table.receive_request(req)
    alice.local_seq = 314155
    old = reparse(alice.create_request("INFO"))
    with pytest.raises(RemoteProtocolError) as exc:
        table.receive_request(old)
    assert exc.value.status == 500
    assert bob.remote_seq == 314160
    ack = reparse(alice.create_ack(314150))
    table.receive_request(ack)  # ACK (and CANCEL) never move the remote sequence
    assert bob.remote_seq == 314160


def test_target_refresh_replaces_the_remote_target_other_requests_do_not() -> None:
    alice, bob, table = _uas_pair()
    info = alice.create_request("INFO", contact=MOVED)
    table.receive_request(reparse(info))
    assert str(bob.remote_target) == "sip:alice@pc33.atlanta.example.com"
    reinvite = alice.create_request("INVITE", contact=MOVED)
    table.receive_request(reparse(reinvite))
    assert str(bob.remote_target) == "sip:alice@198.51.100.7:5070"


def test_2xx_to_a_target_refresh_updates_the_target_481_and_408_end_the_dialog() -> None:
    alice, _bob, _ = _uas_pair()
    reinvite = alice.create_request("INVITE", contact=alice.local)
    reinvite.headers.add("Via", "SIP/2.0/UDP pc33;branch=z9hG4bKre", first=True)
    ok = build_response(reinvite, 200, extra=[("Contact", "<sip:bob@203.0.113.1>")])
    alice.receive_response(reinvite, ok)
    assert str(alice.remote_target) == "sip:bob@203.0.113.1" and alice.is_confirmed
    info = alice.create_request("INFO")
    info.headers.add("Via", "SIP/2.0/UDP pc33;branch=z9hG4bKinfo", first=True)
    alice.receive_response(info, build_response(info, 200, extra=[("Contact", "<sip:x@y>")]))
    assert str(alice.remote_target) == "sip:bob@203.0.113.1"  # INFO is no target refresh
    alice.receive_response(info, build_response(info, 481))
    assert alice.terminated
    alice.receive_response(info, build_response(info, 200))  # ignored once ended
    assert alice.terminated
    with pytest.raises(RemoteProtocolError) as exc:
        alice.receive_request(reparse(_uas_pair()[1].create_request("BYE")))
    assert exc.value.status == 481

    other, _, _ = _uas_pair()
    bye = other.create_request("BYE")
    bye.headers.add("Via", "SIP/2.0/UDP pc33;branch=z9hG4bKbye", first=True)
    other.receive_response(bye, build_response(bye, 408))
    assert other.terminated


def test_table_add_remove_and_duplicates() -> None:
    _alice, bob, table = _uas_pair()
    with pytest.raises(LocalProtocolError):
        table.add(bob)
    assert table.get(bob.id) is bob and list(table) == [bob]
    table.remove(bob)
    assert table.get(bob.id) is None and len(table) == 0
    bob.terminate()
    table.add(bob)  # a terminated dialog may be replaced by a new one with its id
    assert table.purge() == 1


def test_uas_early_dialog_is_confirmed_by_its_own_2xx() -> None:
    inv = invite()
    early = Dialog.as_uas(inv, build_response(inv, 180, to_tag="e1"))
    assert isinstance(early.create_request("UPDATE", contact=early.local), Request)
    assert early.is_early and "early" in repr(early)
    early.confirm()
    assert early.is_confirmed
    early.terminate()
    with pytest.raises(LocalProtocolError):
        early.confirm()
