"""RFC 5626 over TCP with an in-process `SipServer`: the agent registers one flow
(`;ob`, `+sip.instance`, `reg-id`), keeps that connection open with CRLF pings
(§4.4.1), and a call to it arrives over that same connection; its Contact names
the port it listens on, never its connection's ephemeral port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_helpers import configured
from ua_helpers import FAST, HOST, wait_for

from sipline.phone import UserAgent
from sipline.server.config import parse_listen
from sipline.server.sip_server import SipServer
from sipline.storage.sqlite import SqliteStore
from sipline.testing import FakeClock, advance

DOMAIN = "example.com"


@pytest.fixture(params=[True, False], ids=["nat-fix", "no-nat-fix"])
async def server(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[SipServer]:
    db = tmp_path / "sipline.db"
    store = SqliteStore(db)
    store.add_domain(DOMAIN)
    store.add_user("alice", DOMAIN, "alice-pw")
    store.add_user("bob", DOMAIN, "bob-pw")
    store.close()
    config = configured(
        listen=[parse_listen(f"udp:{HOST}:0"), parse_listen(f"tcp:{HOST}:0")],
        domains=[DOMAIN],
        database=db,
        fix_nated_register=request.param,  # the flow is kept either way (RFC 5626 §6)
    )
    srv = SipServer(config)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def test_a_tcp_agent_is_reached_over_its_registration_flow(server: SipServer) -> None:
    clock = FakeClock()
    tcp_port = server.endpoint.local_address("TCP").port
    bob = UserAgent(f"bob@{DOMAIN}", password="bob-pw", server=f"{HOST}:{tcp_port}",
                    transport="tcp", listen=f"{HOST}:0", timers=FAST, auto_answer=True,
                    keepalive_s=0.2, clock=clock)  # fmt: skip
    udp_port = server.endpoint.local_address("UDP").port
    alice = UserAgent(f"alice@{DOMAIN}", password="alice-pw", server=f"{HOST}:{udp_port}",
                      listen=f"{HOST}:0", timers=FAST)  # fmt: skip
    async with bob, alice:
        listening = bob.endpoint.local_address("TCP").port
        store = server.store
        assert store is not None
        (binding,) = store.bindings(f"bob@{DOMAIN}", now=server.endpoint.wall())
        assert binding.contact == f"sip:bob@{HOST}:{listening};transport=tcp;ob"
        assert binding.instance is not None and bob.instance_id in binding.instance
        assert binding.reg_id == 1
        (flow,) = bob.endpoint.transports.connections
        assert binding.received == f"tcp:{HOST}:{flow.local[1]}"  # the flow, not a Contact
        before = server.endpoint.transports.stats.keepalives_in
        await advance(clock, 0.4)  # pings every 0.2 s
        await wait_for(lambda: server.endpoint.transports.stats.keepalives_in >= before + 2, 3)
        call = await alice.call(f"sip:bob@{DOMAIN}")
        await asyncio.wait_for(call.answered, 5)
        # Still one connection: the INVITE came back over the registration's flow.
        assert bob.endpoint.transports.connections == frozenset({flow})
        await call.hangup()
        await wait_for(lambda: not bob.calls)


async def test_a_lost_flow_is_registered_again_at_once(server: SipServer) -> None:
    clock = FakeClock()
    tcp_port = server.endpoint.local_address("TCP").port
    bob = UserAgent(f"bob@{DOMAIN}", password="bob-pw", server=f"{HOST}:{tcp_port}",
                    transport="tcp", listen=f"{HOST}:0", timers=FAST, auto_answer=True,
                    keepalive_s=0.2, clock=clock)  # fmt: skip
    udp_port = server.endpoint.local_address("UDP").port
    alice = UserAgent(f"alice@{DOMAIN}", password="alice-pw", server=f"{HOST}:{udp_port}",
                      listen=f"{HOST}:0", timers=FAST)  # fmt: skip
    store = server.store
    assert store is not None

    def flow_of_binding() -> str | None:
        found = store.bindings(f"bob@{DOMAIN}", now=server.endpoint.wall())
        return found[0].received if len(found) == 1 else None

    async with bob, alice:
        (old,) = bob.endpoint.transports.connections
        before = flow_of_binding()
        old.abort()  # the connection dies (a NAT drops it, the server restarts)
        await advance(clock, 0.2)  # the next ping finds it gone
        await wait_for(lambda: flow_of_binding() not in (None, before), 3)
        (new,) = bob.endpoint.transports.connections
        assert flow_of_binding() == f"tcp:{HOST}:{new.local[1]}"
        call = await alice.call(f"sip:bob@{DOMAIN}")
        await asyncio.wait_for(call.answered, 5)
        await call.hangup()
