"""MESSAGE, SUBSCRIBE/NOTIFY and PUBLISH through a real `SipServer` on loopback."""

from __future__ import annotations

import asyncio
import zlib

from server_helpers import DOMAIN, USERS, ServerFactory, UAFactory
from sipua import TestUA

from sipline.content.pidf import parse_pidf, status_document
from sipline.content.summary import parse_summary
from sipline.core.message import Request
from sipline.server.sip_server import SipServer
from sipline.storage import StoredMessage
from sipline.testing import FakeClock, advance

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


def message(ua: TestUA, to: str, text: str, *, from_: str = ALICE) -> Request:
    request = ua.build("MESSAGE", f"sip:{to}", from_=from_, to=to)
    request.set_body(text.encode(), "text/plain")
    return request


async def send_as(ua: TestUA, request: Request, user: str) -> int:
    exchange = await ua.send_authenticated(request, user, USERS[user])
    return exchange.final.status


def notifies(ua: TestUA, event: str = "presence") -> list[Request]:
    return [r for r in ua.requests("NOTIFY") if (r.headers.get("event") or "") == event]


async def test_message_is_forked_to_every_registered_contact(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server()
    phone, laptop, sender = await make_ua(server), await make_ua(server), await make_ua(server)
    for ua in (phone, laptop):
        assert (await ua.register(BOB, USERS["bob"])).final.status == 200
    assert await send_as(sender, message(sender, BOB, "hello"), "alice") == 200
    for ua in (phone, laptop):
        await ua.wait_for(lambda ua=ua: bool(ua.requests("MESSAGE")))
        (got,) = ua.requests("MESSAGE")
        assert got.body == b"hello" and got.from_.uri.aor == ALICE


async def test_senders_authenticate_and_large_bodies_are_refused(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(message_max_body_bytes=100)
    sender = await make_ua(server)
    first = await sender.send(message(sender, BOB, "hi"))
    assert first.final.status == 407
    big = await sender.send(message(sender, BOB, "x" * 101))
    assert big.final.status == 413
    unknown = await send_as(sender, message(sender, f"nobody@{DOMAIN}", "hi"), "alice")
    assert unknown == 404


async def test_offline_messages_are_stored_then_delivered_in_order(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server()
    sender = await make_ua(server)
    for text in ("one", "two", "three"):
        assert await send_as(sender, message(sender, BOB, text), "alice") == 202
    assert server.store is not None
    stored = server.store.store.pending_messages(BOB, now=server.endpoint.wall())
    assert [m.body for m in stored] == [b"one", b"two", b"three"]
    bob = await make_ua(server)
    assert (await bob.register(BOB, USERS["bob"])).final.status == 200
    await bob.wait_for(lambda: len(bob.requests("MESSAGE")) == 3)
    got = bob.requests("MESSAGE")
    assert [r.body for r in got] == [b"one", b"two", b"three"]
    assert all(r.headers.get("date") and r.from_.uri.aor == ALICE for r in got)
    await delivery_settled(server)
    assert server.store.store.pending_messages(BOB, now=server.endpoint.wall()) == []


async def test_message_summary_counts_waiting_messages(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(min_notify_interval_s=0.0)
    bob = await make_ua(server)
    subscribe = bob.build(
        "SUBSCRIBE",
        f"sip:{BOB}",
        from_=BOB,
        to=BOB,
        contact=bob.contact("bob"),
        extra=[("Event", "message-summary"), ("Expires", "600")],
    )
    assert (await bob.send_authenticated(subscribe, "bob", USERS["bob"])).final.status == 200
    await bob.wait_for(lambda: bool(notifies(bob, "message-summary")))
    assert not parse_summary(notifies(bob, "message-summary")[0].body).waiting
    sender = await make_ua(server)
    assert await send_as(sender, message(sender, BOB, "later"), "alice") == 202
    await bob.wait_for(lambda: len(notifies(bob, "message-summary")) >= 2)
    summary = parse_summary(notifies(bob, "message-summary")[-1].body)
    assert summary.waiting and summary.counts["text-message"].new == 1
    # Someone else may not watch bob's mailbox.
    other = bob.build(
        "SUBSCRIBE",
        f"sip:{BOB}",
        from_=ALICE,
        to=BOB,
        contact=bob.contact("alice"),
        extra=[("Event", "message-summary")],
    )
    assert (await bob.send_authenticated(other, "alice", USERS["alice"])).final.status == 403


async def subscribe_presence(ua: TestUA, watcher: str, target: str, expires: int = 600) -> Request:
    user = watcher.partition("@")[0]
    request = ua.build(
        "SUBSCRIBE",
        f"sip:{target}",
        from_=watcher,
        to=target,
        contact=ua.contact(user),
        extra=[
            ("Event", "presence"),
            ("Accept", "application/pidf+xml"),
            ("Expires", str(expires)),
        ],
    )
    exchange = await ua.send_authenticated(request, user, USERS[user])
    assert exchange.final.status == 200, exchange.final
    assert exchange.final.headers.get("expires") == str(expires)
    return request


async def test_presence_follows_registration_and_publication(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(min_notify_interval_s=0.0)
    alice = await make_ua(server)
    await subscribe_presence(alice, ALICE, BOB)
    await alice.wait_for(lambda: bool(notifies(alice)))
    first = notifies(alice)[0]
    assert first.headers.get("subscription-state", "").startswith("active;expires=")
    assert parse_pidf(first.body).basic == "closed"
    bob = await make_ua(server)
    assert (await bob.register(BOB, USERS["bob"])).final.status == 200
    await alice.wait_for(lambda: len(notifies(alice)) >= 2)
    assert parse_pidf(notifies(alice)[-1].body).basic == "open"
    # PUBLISH (RFC 3903): away, then a refresh by entity tag, then removal.
    publish = bob.build(
        "PUBLISH",
        f"sip:{BOB}",
        from_=BOB,
        to=BOB,
        extra=[("Event", "presence"), ("Expires", "300")],
    )
    publish.set_body(
        status_document(f"sip:{BOB}", "away", note="in a meeting").serialize(),
        "application/pidf+xml",
    )
    done = await bob.send_authenticated(publish, "bob", USERS["bob"])
    assert done.final.status == 200
    etag = done.final.headers.get("sip-etag")
    assert etag and done.final.headers.get("expires") == "300"
    await alice.wait_for(lambda: len(notifies(alice)) >= 3)
    assert parse_pidf(notifies(alice)[-1].body).describe() == "away (in a meeting)"
    seen = len(notifies(alice))
    refresh = bob.build(
        "PUBLISH",
        f"sip:{BOB}",
        from_=BOB,
        to=BOB,
        extra=[("Event", "presence"), ("SIP-If-Match", etag)],
    )
    again = await bob.send_authenticated(refresh, "bob", USERS["bob"])
    assert again.final.status == 200 and again.final.headers.get("sip-etag") not in (None, etag)
    stale = bob.build(
        "PUBLISH",
        f"sip:{BOB}",
        from_=BOB,
        to=BOB,
        extra=[("Event", "presence"), ("SIP-If-Match", etag)],
    )
    assert (await bob.send_authenticated(stale, "bob", USERS["bob"])).final.status == 412
    remove = bob.build(
        "PUBLISH",
        f"sip:{BOB}",
        from_=BOB,
        to=BOB,
        extra=[
            ("Event", "presence"),
            ("SIP-If-Match", again.final.headers.get("sip-etag") or ""),
            ("Expires", "0"),
        ],
    )
    assert (await bob.send_authenticated(remove, "bob", USERS["bob"])).final.status == 200
    await alice.wait_for(lambda: len(notifies(alice)) > seen)
    # One NOTIFY, for the removal: the refresh and the refused PUBLISH told nothing (a
    # NOTIFY of theirs would have come first, with the old state).
    assert len(notifies(alice)) == seen + 1
    assert parse_pidf(notifies(alice)[-1].body).describe() == "online"


async def test_publish_errors(make_server: ServerFactory, make_ua: UAFactory) -> None:
    server = await make_server()
    bob = await make_ua(server)

    async def publish(
        extra: list[tuple[str, str]],
        body: bytes = b"",
        ctype: str = "application/pidf+xml",
        from_: str = BOB,
    ) -> int:
        r = bob.build("PUBLISH", f"sip:{BOB}", from_=from_, to=BOB, extra=extra)
        if body:
            r.set_body(body, ctype)
        user = from_.partition("@")[0]
        return (await bob.send_authenticated(r, user, USERS[user])).final.status

    doc = status_document(f"sip:{BOB}", "online").serialize()
    assert await publish([("Event", "dialog")], doc) == 489
    assert await publish([("Event", "presence")]) == 400
    assert await publish([("Event", "presence")], b"hi", "text/plain") == 415
    assert await publish([("Event", "presence")], b"<presence") == 400
    assert await publish([("Event", "presence"), ("Expires", "5")], doc) == 423
    assert await publish([("Event", "presence"), ("SIP-If-Match", "nope")]) == 412
    assert await publish([("Event", "presence")], doc, from_=ALICE) == 403


async def test_watchers_need_authorisation_across_domains(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(min_notify_interval_s=0.0, presence_policy="confirm")
    alice = await make_ua(server)
    await subscribe_presence(alice, ALICE, BOB)
    await alice.wait_for(lambda: bool(notifies(alice)))
    pending = notifies(alice)[0]
    assert pending.headers.get("subscription-state", "").startswith("pending")
    assert pending.body == b""
    assert server.store is not None
    await server.store.write(
        server.store.store.set_watcher_rule, BOB, ALICE, "allow", server.endpoint.wall()
    )
    await alice.wait_for(lambda: len(notifies(alice)) >= 2, timeout=10)
    active = notifies(alice)[-1]
    assert active.headers.get("subscription-state", "").startswith("active")
    assert parse_pidf(active.body).basic == "closed"
    await server.store.write(
        server.store.store.set_watcher_rule, BOB, ALICE, "block", server.endpoint.wall()
    )
    await alice.wait_for(lambda: len(notifies(alice)) >= 3, timeout=10)
    assert notifies(alice)[-1].headers.get("subscription-state") == "terminated;reason=rejected"
    blocked = alice.build(
        "SUBSCRIBE",
        f"sip:{BOB}",
        from_=ALICE,
        to=BOB,
        contact=alice.contact("alice"),
        extra=[("Event", "presence")],
    )
    assert (await alice.send_authenticated(blocked, "alice", USERS["alice"])).final.status == 403


async def test_subscription_refresh_unsubscribe_and_expiry(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(min_notify_interval_s=0.0, subscribe_min_expires=1)
    alice = await make_ua(server)
    await subscribe_presence(alice, ALICE, BOB, expires=2)
    await alice.wait_for(lambda: bool(notifies(alice)))
    # Not refreshed: after 2 s a terminated NOTIFY says timeout (RFC 6665 §4.2.2).
    await alice.wait_for(lambda: len(notifies(alice)) >= 2, timeout=8)
    assert notifies(alice)[-1].headers.get("subscription-state") == "terminated;reason=timeout"
    assert server.im is not None and server.im.notifier.subscriptions() == []
    # Subscribe, refresh in the dialog, unsubscribe.
    request = await subscribe_presence(alice, ALICE, BOB, expires=60)
    await alice.wait_for(lambda: len(notifies(alice)) >= 3)
    notify = notifies(alice)[-1]
    refresh = Request("SUBSCRIBE", notify.contacts[0].uri_text)
    for name, value in (
        ("Max-Forwards", "70"),
        ("From", request.headers.get("from") or ""),
        ("To", notify.headers.get("from") or ""),
        ("Call-ID", request.call_id),
        ("CSeq", "500 SUBSCRIBE"),
        ("Event", "presence"),
        ("Expires", "0"),
        ("Contact", f"<{alice.contact('alice')}>"),
        ("Content-Length", "0"),
    ):
        refresh.headers.add(name, value)
    done = await alice.send(refresh)
    assert done.final.status == 200
    await alice.wait_for(lambda: len(notifies(alice)) >= 4)
    assert notifies(alice)[-1].headers.get("subscription-state") == "terminated;reason=timeout"
    assert server.im.notifier.subscriptions() == []


async def test_unknown_event_and_too_brief_subscriptions(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server()
    alice = await make_ua(server)
    brief = alice.build(
        "SUBSCRIBE",
        f"sip:{BOB}",
        from_=ALICE,
        to=BOB,
        contact=alice.contact("alice"),
        extra=[("Event", "presence"), ("Expires", "10")],
    )
    done = await alice.send_authenticated(brief, "alice", USERS["alice"])
    assert done.final.status == 423 and done.final.headers.get("min-expires") == "60"
    wrong = alice.build(
        "SUBSCRIBE",
        f"sip:{BOB}",
        from_=ALICE,
        to=BOB,
        contact=alice.contact("alice"),
        extra=[("Event", "presence"), ("Accept", "text/html")],
    )
    assert (await alice.send_authenticated(wrong, "alice", USERS["alice"])).final.status == 406


async def test_changes_are_paced_and_coalesced(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    clock = FakeClock()
    server = await make_server(clock=clock, min_notify_interval_s=1.0)
    alice, bob = await make_ua(server), await make_ua(server)
    await subscribe_presence(alice, ALICE, BOB)
    await alice.wait_for(lambda: bool(notifies(alice)))  # sent at 0.0
    for status in ("away", "busy"):  # two changes within the interval
        publish = bob.build(
            "PUBLISH", f"sip:{BOB}", from_=BOB, to=BOB, extra=[("Event", "presence")]
        )
        publish.set_body(status_document(f"sip:{BOB}", status).serialize(), "application/pidf+xml")
        assert (await bob.send_authenticated(publish, "bob", USERS["bob"])).final.status == 200
    await advance(clock, 0.9)
    assert len(notifies(alice)) == 1  # not before the interval
    await advance(clock, 0.1)
    await alice.wait_for(lambda: len(notifies(alice)) >= 2)
    await advance(clock, 1.5)
    assert len(notifies(alice)) == 2  # one NOTIFY for both changes, with the latest state
    assert parse_pidf(notifies(alice)[-1].body).status == "busy"


async def delivery_settled(server: SipServer) -> None:
    """Wait for the delivery runs under way to end (what they stored is committed)."""
    assert server.im is not None
    await asyncio.wait_for(server.im.messaging.settled(), 10)


def stored(server: SipServer) -> list[StoredMessage]:
    assert server.store is not None
    return server.store.store.list_messages(BOB, now=server.endpoint.wall())


async def test_stored_message_is_delivered_with_the_headers_of_its_body(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    # linphone's delivery notification (RFC 5438), deflated: stored, it must reach the
    # device with its Content-Encoding and Content-Disposition (RFC 3428 §7).
    imdn = zlib.compress(b'<?xml version="1.0"?><imdn xmlns="urn:ietf:params:xml:ns:imdn"/>')
    server = await make_server()
    sender = await make_ua(server)
    request = sender.build(
        "MESSAGE",
        f"sip:{BOB}",
        from_=ALICE,
        to=BOB,
        extra=[
            ("Content-Encoding", "deflate"),
            ("Content-Disposition", "notification"),
            ("Subject", "read"),
        ],
    )
    request.set_body(imdn, 'message/imdn+xml;charset="UTF-8"')
    assert await send_as(sender, request, "alice") == 202
    bob = await make_ua(server)
    assert (await bob.register(BOB, USERS["bob"])).final.status == 200
    await bob.wait_for(lambda: bool(bob.requests("MESSAGE")))
    (got,) = bob.requests("MESSAGE")
    assert got.body == imdn
    assert got.headers.get("content-encoding") == "deflate"
    assert got.headers.get("content-disposition") == "notification"
    assert got.headers.get("content-type") == 'message/imdn+xml;charset="UTF-8"'
    assert got.headers.get("subject") == "read"


async def test_a_refused_stored_message_fails_and_the_next_ones_are_delivered(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(delivery_retry_s=0.1)
    sender = await make_ua(server)
    unreadable = message(sender, BOB, "<x/>")
    unreadable.set_body(b"<x/>", "application/x-unknown")
    assert await send_as(sender, unreadable, "alice") == 202
    for text in ("one", "two"):
        assert await send_as(sender, message(sender, BOB, text), "alice") == 202
    bob = await make_ua(server)
    # The device cannot read the first one (415: permanent, RFC 3261 §21.4.13).
    bob.status_for = lambda r: 415 if r.content_type == "application/x-unknown" else 200
    assert (await bob.register(BOB, USERS["bob"])).final.status == 200
    await bob.wait_for(lambda: len(bob.requests("MESSAGE")) == 3)
    assert [r.body for r in bob.requests("MESSAGE")] == [b"<x/>", b"one", b"two"]
    await delivery_settled(server)
    assert [m.state for m in stored(server)] == ["failed"]
    assert server.store is not None
    (failed,) = server.store.store.list_messages(BOB, now=server.endpoint.wall())
    assert failed.body == b"<x/>" and failed.failure.startswith("415")
    assert server.store.store.count_messages(BOB, now=server.endpoint.wall()) == 0
    # Registering again does not send it again.
    assert (await bob.register(BOB, USERS["bob"])).final.status == 200
    await delivery_settled(server)  # the run the registration started
    assert len(bob.requests("MESSAGE")) == 3


async def test_a_transient_failure_keeps_the_message_and_the_order(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    clock = FakeClock()
    server = await make_server(clock=clock, delivery_retry_s=0.2)
    sender = await make_ua(server)
    for text in ("one", "two"):
        assert await send_as(sender, message(sender, BOB, text), "alice") == 202
    bob = await make_ua(server)
    busy = [480]  # Temporarily Unavailable once, then accepted
    bob.status_for = lambda r: busy.pop() if busy else 200
    assert (await bob.register(BOB, USERS["bob"])).final.status == 200
    await delivery_settled(server)  # "one" refused for now: deferred by 0.2 s
    assert [r.body for r in bob.requests("MESSAGE")] == [b"one"]
    assert [m.attempts for m in stored(server)] == [1, 0]
    await advance(clock, 1.0)  # the store poll retries what fell due
    await bob.wait_for(lambda: len(bob.requests("MESSAGE")) == 3)
    assert [r.body for r in bob.requests("MESSAGE")] == [b"one", b"one", b"two"]
    await delivery_settled(server)
    assert stored(server) == []


async def test_a_device_publishing_afresh_replaces_its_earlier_publication(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    # A client restarted without its entity tag publishes the same tuple again: its
    # new status replaces the old one instead of being composed with it.
    server = await make_server(min_notify_interval_s=0.0)
    alice = await make_ua(server)
    await subscribe_presence(alice, ALICE, BOB)
    bob = await make_ua(server)

    async def publish(status: str, *, tuple_id: str = "t1") -> None:
        request = bob.build(
            "PUBLISH", f"sip:{BOB}", from_=BOB, to=BOB, extra=[("Event", "presence")]
        )
        doc = status_document(f"sip:{BOB}", status, tuple_id=tuple_id, contact=f"sip:{BOB}")
        request.set_body(doc.serialize(), "application/pidf+xml")
        assert (await bob.send_authenticated(request, "bob", USERS["bob"])).final.status == 200

    await publish("busy")
    await alice.wait_for(lambda: parse_pidf(notifies(alice)[-1].body).describe() == "busy")
    await publish("online")
    await alice.wait_for(lambda: parse_pidf(notifies(alice)[-1].body).describe() == "online")
    assert server.store is not None
    (only,) = server.store.store.publications(BOB, "presence", now=server.endpoint.wall())
    assert parse_pidf(only.document).describe() == "online"
    # Another device (another tuple) is composed beside it, as before.
    await publish("away", tuple_id="laptop")  # stored before the 200
    assert len(server.store.store.publications(BOB, "presence", now=server.endpoint.wall())) == 2
