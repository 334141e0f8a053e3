"""Property tests for dialogs: routing reconstructs the path, CSeq order, forking as a
state machine checked against a model, and requests round-tripping between the sides."""

from __future__ import annotations

from dialog_helpers import answer, invite, reparse
from hypothesis import given
from hypothesis import strategies as st

from sipline.core.builders import build_response
from sipline.core.dialog import Dialog, DialogState, DialogTable
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Response, parse_message

hosts = st.from_regex(r"[a-z][a-z0-9]{0,6}(\.[a-z]{2,4})?", fullmatch=True)
route_entries = st.tuples(hosts, st.booleans()).map(
    lambda hl: f"<sip:{hl[0]}{';lr' if hl[1] else ''}>"
)


@given(st.lists(route_entries, max_size=6), hosts)
def test_request_uri_and_route_spell_the_route_set_then_the_target(
    route_set: list[str], target_host: str
) -> None:
    inv = invite()
    ok = answer(
        inv, 200, "t", contact=f"<sip:bob@{target_host}>", record_route=list(reversed(route_set))
    )
    d = Dialog.as_uac(inv, ok)
    req = d.create_request("BYE")
    routes = req.headers.values("route")
    wanted = [*route_set, f"<sip:bob@{target_host}>"]
    if route_set and ";lr" not in route_set[0]:
        # Strict: the first hop is in the Request-URI, the target rides last in Route.
        assert [f"<{req.uri_text}>", *routes] == wanted
    else:
        assert [*routes, f"<{req.uri_text}>"] == wanted
    assert str(d.next_hop()) == (route_set[0][1:-1] if route_set else f"sip:bob@{target_host}")


@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=20))
def test_remote_cseq_accepts_exactly_the_non_decreasing_requests(seqs: list[int]) -> None:
    inv = invite(cseq=1000)
    bob = Dialog.as_uas(inv, build_response(inv, 200, to_tag="b"))
    highest = 1000
    for seq in seqs:
        info = invite(cseq=seq)
        info.method = "INFO"
        info.headers.set("CSeq", f"{seq} INFO")
        info.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=b")
        try:
            bob.receive_request(info)
            accepted = True
        except RemoteProtocolError as exc:
            assert exc.status == 500
            accepted = False
        assert accepted == (seq >= highest)
        highest = max(highest, seq)
        assert bob.remote_seq == highest


responses = st.lists(
    st.tuples(st.sampled_from([100, 180, 183, 200, 486, 603]), st.sampled_from([None, "a", "b"])),
    max_size=12,
)


@given(responses)
def test_forked_responses_follow_the_model(sequence: list[tuple[int, str | None]]) -> None:
    inv = invite()
    table = DialogTable()
    model: dict[str, DialogState] = {}
    for status, tag in sequence:
        response: Response = answer(inv, status, tag)
        dialog = table.receive_uac_response(inv, response)
        if status >= 300:
            model = {
                t: DialogState.TERMINATED if s is DialogState.EARLY else s for t, s in model.items()
            }
            assert dialog is None
        elif status == 100 or tag is None:
            assert dialog is None
        else:
            fresh = model.get(tag, DialogState.TERMINATED) is DialogState.TERMINATED
            if status >= 200:
                model[tag] = DialogState.CONFIRMED
            elif fresh:
                model[tag] = DialogState.EARLY
            assert dialog is not None and dialog.remote_tag == tag
        live = {d.remote_tag: d.state for d in table}
        assert live == model
        assert all(d.local_seq == inv.cseq.seq for d in table)


methods = st.sampled_from(["INFO", "INVITE", "UPDATE", "BYE", "NOTIFY", "MESSAGE"])


@given(st.lists(methods, min_size=1, max_size=10))
def test_requests_from_the_caller_are_accepted_in_order_by_the_callee(
    sequence: list[str],
) -> None:
    inv = invite(record_route=["<sip:p1;lr>"])
    ok = build_response(inv, 200, to_tag="bt", extra=[("Contact", "<sip:bob@192.0.2.4>")])
    ok.headers.add("Record-Route", "<sip:p1;lr>")
    bob_table = DialogTable()
    bob = bob_table.add(Dialog.as_uas(inv, ok))
    received = parse_message(ok.to_bytes())
    assert isinstance(received, Response)
    alice = Dialog.as_uac(inv, received)
    for method in sequence:
        req = reparse(alice.create_request(method, contact=alice.local))
        assert bob_table.receive_request(req) is bob
        assert bob.remote_seq == alice.local_seq
        assert req.headers.get_all("route") == ["<sip:p1;lr>"]
