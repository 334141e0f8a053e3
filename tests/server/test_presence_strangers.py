"""Strangers' presence subscriptions through a real `SipServer` on loopback: answered
alike for users who exist and who do not (RFC 6665 §4.2.1.2: 200 and a pending
NOTIFY), but kept only for users who exist and within the `[presence]` limits, so a
scanner cannot fill the store (server/presence/pending)."""

from __future__ import annotations

import asyncio

import pytest
from server_helpers import DOMAIN, ServerFactory, UAFactory
from sipua import TestUA

from sipline.core.message import Request, Response
from sipline.server.sip_server import SipServer

pytestmark = pytest.mark.serial  # measures time or load (make test runs it alone)

STRANGER = "scanner@elsewhere.test"


def subscribe(ua: TestUA, user: str) -> Request:
    return ua.build(
        "SUBSCRIBE",
        f"sip:{user}@{DOMAIN}",
        from_=STRANGER,
        to=f"{user}@{DOMAIN}",
        contact=ua.contact("scanner"),
        extra=[("Event", "presence"), ("Expires", "600")],
    )


async def stored(server: SipServer) -> int:
    assert server.store is not None
    return len(await server.store.call(server.store.store.list_subscriptions))


def shape(response: Response) -> tuple[int, str | None, list[str]]:
    """What a scanner sees: status, reason and the header names, in order."""
    names = [line.partition(b":")[0].decode().lower() for line in response.headers._lines]
    return response.status, response.reason, names


async def test_a_stranger_scanning_names_fills_the_store_only_up_to_the_limit(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(flood_control=False)  # max_pending_per_source = 20
    ua = await make_ua(server)
    finals: list[int] = []
    names = [f"user{i:04d}" for i in range(1000)] + ["alice", "bob", "carol"] * 20

    async def one(name: str) -> None:
        finals.append((await ua.send(subscribe(ua, name))).final.status)

    for start in range(0, len(names), 50):
        await asyncio.wait_for(asyncio.gather(*(one(n) for n in names[start : start + 50])), 60)
    assert set(finals) == {200}
    assert await stored(server) <= 20


async def test_existing_and_missing_users_look_alike_to_a_stranger(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    server = await make_server(flood_control=False)
    ua = await make_ua(server)
    missing = await ua.send(subscribe(ua, "nobody"))
    existing = await ua.send(subscribe(ua, "bob"))
    assert shape(missing.final) == shape(existing.final)
    assert missing.final.status == 200
    # Both get the pending NOTIFY (§4.2.1.2), with the same headers and no body.
    await ua.wait_for(lambda: len(ua.requests("NOTIFY")) == 2)
    first, second = ua.requests("NOTIFY")
    assert first.headers._keys == second.headers._keys
    assert first.headers.get("subscription-state") == second.headers.get("subscription-state")
    assert (first.headers.get("subscription-state") or "").startswith("pending")
    assert first.body == second.body == b""
    assert await stored(server) == 1  # only bob's is kept
