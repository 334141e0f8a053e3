"""User agents chatting and watching each other's presence through an in-process
`SipServer`: messages both ways (text and CPIM), offline messages delivered on
registration, presence from registrations and from PUBLISH, message-summary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from service_calls import add_users, loopback_config, running, user_agent
from ua_helpers import wait_for

from sipline.phone import IncomingMessage, MessageFailed, UserAgent
from sipline.server.sip_server import SipServer


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SipServer]:
    add_users(tmp_path / "sipline.db", ["alice", "bob"])
    async with running(loopback_config(tmp_path / "sipline.db", min_notify_interval_s=0.0)) as srv:
        yield srv


def agent(server: SipServer, name: str, **kwargs: Any) -> UserAgent:
    return user_agent(server, name, **kwargs)


async def test_two_agents_chat_both_ways(server: SipServer) -> None:
    async with agent(server, "alice") as alice, agent(server, "bob") as bob:
        response = await alice.send_message("bob@example.com", "hello bob")
        assert response.status == 200
        got = await bob.next_message(timeout=5)
        assert got.text == "hello bob" and got.sender == "sip:alice@example.com"
        await bob.send_message(got.sender, "hi alice, ünïcode", cpim=True)
        back = await alice.next_message(timeout=5)
        assert back.text == "hi alice, ünïcode" and back.sender == "sip:bob@example.com"
        assert back.content_type.startswith("text/plain")


async def test_unknown_user_and_unsupported_body(server: SipServer) -> None:
    async with agent(server, "alice") as alice, agent(server, "bob") as bob:
        with pytest.raises(MessageFailed) as failed:
            await alice.send_message("nobody@example.com", "x")
        assert failed.value.status == 404
        with pytest.raises(MessageFailed) as refused:
            await alice.send_message("bob@example.com", b"\x00", content_type="image/png")
        assert refused.value.status == 415
        assert bob.inbox.empty()


async def test_offline_messages_arrive_when_the_user_registers(server: SipServer) -> None:
    async with agent(server, "alice") as alice:
        for text in ("first", "second"):
            assert (await alice.send_message("bob@example.com", text)).status == 202
    received: list[IncomingMessage] = []
    async with agent(server, "bob", on_message=received.append) as bob:
        watch = await bob.watch("bob@example.com", "message-summary")
        await wait_for(lambda: len(received) == 2)
        assert [m.text for m in received] == ["first", "second"]
        assert all(m.date for m in received)  # when they were sent
        update = await watch.next_update(timeout=5)
        assert update.summary is not None
        seen = [update]
        while seen[-1].summary is not None and seen[-1].summary.waiting:
            seen.append(await watch.next_update(timeout=5))
        assert seen[-1].describe() == "0 messages waiting"


async def test_presence_watch_follows_registration_and_publication(server: SipServer) -> None:
    async with agent(server, "alice") as alice:
        watch = await alice.watch("bob@example.com")
        first = await watch.next_update(timeout=5)
        assert first.state == "active" and first.describe() == "offline"
        bob = agent(server, "bob")
        await bob.start()
        assert (await watch.next_update(timeout=5)).describe() == "online"
        await bob.publish("away", note="in a meeting")
        assert (await watch.next_update(timeout=5)).describe() == "away (in a meeting)"
        await bob.publish("busy")
        assert (await watch.next_update(timeout=5)).describe() == "busy"
        await bob.close()  # removes the publication and the registration
        while (update := await watch.next_update(timeout=5)).describe() != "offline":
            assert update.state == "active"
        await watch.close()
        assert watch.ended
        assert server.im is not None
        notifier = server.im.notifier
        # The terminated NOTIFY goes after the 200 (RFC 6665 §4.2.1.4).
        await wait_for(lambda: not notifier.subscriptions())
