"""Malformed or unwelcome messaging and presence requests get the right 4xx with a
reason from a real `SipServer`, never a crash; bad configuration names the key."""

from __future__ import annotations

import re

import pytest
from server_helpers import DOMAIN, USERS, ServerFactory, UAFactory

from sipline.server.config import ConfigError, load_config

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"


async def test_bad_subscribes_and_publishes(make_server: ServerFactory, make_ua: UAFactory) -> None:
    server = await make_server()
    ua = await make_ua(server)

    async def status(
        method: str, extra: list[tuple[str, str]], body: bytes = b"", ctype: str = ""
    ) -> int:
        request = ua.build(
            method,
            f"sip:{BOB}",
            from_=ALICE if method == "SUBSCRIBE" else BOB,
            to=BOB,
            contact=ua.contact("x"),
            extra=extra,
        )
        if body:
            request.set_body(body, ctype)
        user = "alice" if method == "SUBSCRIBE" else "bob"
        return (await ua.send_authenticated(request, user, USERS[user])).final.status

    assert await status("SUBSCRIBE", [("Event", "presence"), ("Expires", "soon")]) == 400
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&lol2;"/>'
    )
    assert await status("PUBLISH", [("Event", "presence")], laughs, "application/pidf+xml") == 400
    nobody = ua.build(
        "SUBSCRIBE",
        f"sip:nobody@{DOMAIN}",
        from_=ALICE,
        to=f"nobody@{DOMAIN}",
        contact=ua.contact("alice"),
        extra=[("Event", "presence")],
    )
    assert (await ua.send_authenticated(nobody, "alice", USERS["alice"])).final.status == 404


async def test_refresh_of_an_unknown_subscription_gets_481(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server()
    ua = await make_ua(server)
    item = server.endpoint.local_address("UDP")
    request = ua.build(
        "SUBSCRIBE",
        f"sip:{item.host}:{item.port}",
        from_=ALICE,
        to=BOB,
        to_tag="gone",
        contact=ua.contact("alice"),
        extra=[("Event", "presence")],
    )
    assert (await ua.send(request)).final.status == 481


async def test_strangers_cannot_publish_or_store_messages(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server()
    ua = await make_ua(server)
    publish = ua.build(
        "PUBLISH", f"sip:{BOB}", from_="eve@evil.example", to=BOB, extra=[("Event", "presence")]
    )
    assert (await ua.send(publish)).final.status == 403
    # A foreign sender cannot be authenticated here: nothing is stored for it, and a user
    # with no registered device is 404 whether it exists or not (no enumeration).
    for to in (BOB, f"nobody@{BOB.partition('@')[2]}"):
        message = ua.build("MESSAGE", f"sip:{to}", from_="eve@evil.example", to=to)
        message.set_body(b"hi", "text/plain")
        assert (await ua.send(message)).final.status == 404
    # Claiming one of our users needs that user's password.
    forged = ua.build("MESSAGE", f"sip:{BOB}", from_=ALICE, to=BOB)
    forged.set_body(b"hi", "text/plain")
    assert (await ua.send_authenticated(forged, "carol", USERS["carol"])).final.status == 403


async def test_mailbox_limit(make_server: ServerFactory, make_ua: UAFactory) -> None:
    server = await make_server(max_stored_per_user=2)
    ua = await make_ua(server)
    statuses = []
    for n in range(3):
        m = ua.build("MESSAGE", f"sip:{BOB}", from_=ALICE, to=BOB)
        m.set_body(f"{n}".encode(), "text/plain")
        statuses.append((await ua.send_authenticated(m, "alice", USERS["alice"])).final.status)
    assert statuses == [202, 202, 486]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"presence": {"default_policy": "friends"}}, "presence.default_policy: must be 'allow'"),
        (
            {"messaging": {"max_body_bytes": 0}},
            "messaging.max_body_bytes: must be a positive integer",
        ),
        ({"messaging": {"store_offline": "yes"}}, "messaging.store_offline: must be true or false"),
        (
            {"presence": {"min_notify_interval_s": -1}},
            "presence.min_notify_interval_s: must be a number ≥ 0",
        ),
        (
            {"presence": {"min_expires": 10, "default_expires": 5}},
            "presence.default_expires: must lie between",
        ),
        ({"presence": {"watchers": []}}, "presence.watchers: unknown key"),
    ],
)
def test_bad_values_name_the_key(doc: dict[str, dict[str, object]], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(doc)
