"""A subscription outlives its server: a restarted `sipline serve` on the same database
resumes it (a NOTIFY with the current state in the same dialog, CSeq going on), and a
subscription's dialog survives the JSON it is stored as."""

from __future__ import annotations

from server_helpers import DOMAIN, USERS, ServerFactory, UAFactory, configured, server_target
from sipua import TestUA

from sipline.content.pidf import parse_pidf
from sipline.core.builders import build_response
from sipline.core.dialog import Dialog
from sipline.core.message import Request, parse_message
from sipline.server.config import parse_listen
from sipline.server.presence.dialogs import dialog_from_json, dialog_to_json
from sipline.server.sip_server import SipServer

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"

SUBSCRIBE = (
    b"SUBSCRIBE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n'
    b"Call-ID: c1\r\nCSeq: 7 SUBSCRIBE\r\nContact: <sip:alice@192.0.2.1:5070;transport=tcp>\r\n"
    b"Record-Route: <sip:p1.example.com;lr>\r\nEvent: presence\r\nContent-Length: 0\r\n\r\n"
)


def test_dialog_round_trips_through_json() -> None:
    request = parse_message(SUBSCRIBE)
    assert isinstance(request, Request)
    response = build_response(request, 200, to_tag="b2", copy_record_route=True)
    dialog = Dialog.as_uas(request, response)
    dialog.next_local_seq()
    back = dialog_from_json(dialog_to_json(dialog))
    assert back.id == dialog.id and back.state == dialog.state
    assert str(back.remote_target) == "sip:alice@192.0.2.1:5070;transport=tcp"
    assert [str(r) for r in back.route_set] == ["<sip:p1.example.com;lr>"]
    assert (back.local_seq, back.remote_seq) == (1, 7)
    assert str(back.remote) == str(dialog.remote) and back.secure == dialog.secure


async def test_restarted_server_resumes_its_subscriptions(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    first = await make_server(min_notify_interval_s=0.0)
    alice = await make_ua(first)
    request = alice.build(
        "SUBSCRIBE", f"sip:{BOB}", from_=ALICE, to=BOB, contact=alice.contact("alice"),
        extra=[("Event", "presence"), ("Expires", "600")],
    )  # fmt: skip
    assert (await alice.send_authenticated(request, "alice", USERS["alice"])).final.status == 200
    await alice.wait_for(lambda: len(alice.requests("NOTIFY")) == 1)
    before = alice.requests("NOTIFY")[0]
    await first.stop()

    again = SipServer(
        configured(
            listen=[parse_listen("udp:127.0.0.1:0")],
            domains=[DOMAIN],
            database=first.config.server.database,
            min_notify_interval_s=0.0,
        )
    )
    await again.start()
    try:
        await alice.wait_for(lambda: len(alice.requests("NOTIFY")) == 2)
        after = alice.requests("NOTIFY")[1]
        assert after.call_id == before.call_id and after.from_.tag == before.from_.tag
        assert after.cseq.seq > before.cseq.seq
        assert after.headers.get("subscription-state", "").startswith("active")
        assert parse_pidf(after.body).basic == "closed"
        # The resumed subscription follows changes: bob registers with the new server.
        bob = await TestUA.start(server_target(again))
        try:
            assert (await bob.register(BOB, USERS["bob"])).final.status == 200
            await alice.wait_for(lambda: len(alice.requests("NOTIFY")) == 3)
            assert parse_pidf(alice.requests("NOTIFY")[2].body).basic == "open"
        finally:
            await bob.close()
    finally:
        await again.stop()
