"""Emergency calls through a real `SipServer` on loopback: the PSAP list with its
per-hop timeout, and the caller's identity asserted only when verified."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from server_helpers import DOMAIN, USERS, ServerFactory, UAFactory, eventually
from sipua import Dialog, Exchange, TestUA, challenges_of, ring_then

from sipline.core.message import Request
from sipline.server.features.location import Region
from sipline.testing import FakeClock, advance

ALICE = f"alice@{DOMAIN}"


def dead_udp_port() -> int:
    """A loopback UDP port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sos(ua: TestUA, *, from_: str = ALICE, extra: list[tuple[str, str]] | None = None) -> Request:
    return ua.build(
        "INVITE",
        "urn:service:sos",
        from_=from_,
        to=f"sos@{DOMAIN}",
        contact=ua.contact(from_.partition("@")[0]),
        extra=extra,
    )


async def hang_up(ua: TestUA, exchange: Exchange) -> None:
    dialog = Dialog(ua, exchange.request, exchange.final)
    dialog.ack()
    assert (await dialog.bye()).final.status == 200


@pytest.mark.parametrize("first_from", ["psap", "region"])
async def test_an_unreachable_psap_is_skipped_within_the_hop_timeout(
    make_server: ServerFactory, make_ua: UAFactory, first_from: str
) -> None:
    first = await make_server()  # only to give the PSAP's agent a server to point at
    psap = await make_ua(first)
    psap.on_invite = ring_then(200)
    dead = f"sip:psap@127.0.0.1:{dead_udp_port()}"  # nobody there
    live = f"sip:psap@127.0.0.1:{psap.port}"
    if first_from == "psap":  # the configured list: psap, then psaps in turn
        settings = {"emergency_psap": dead, "emergency_psaps": [live]}
    else:  # the caller's region's PSAP, then the default
        here = Region("here", networks=(ipaddress.ip_network("127.0.0.0/8"),), psap=dead)
        settings = {"regions": [here], "emergency_psap": live}
    clock = FakeClock()
    server = await make_server(clock=clock, emergency_hop_timeout_s=1.0, **settings)
    caller = await make_ua(server)
    call = asyncio.ensure_future(caller.send(sos(caller)))
    await eventually(lambda: server.endpoint.transactions.client_count == 1)  # the dead one
    await advance(clock, 0.99)
    assert psap.requests("INVITE") == []
    await advance(clock, 0.01)  # the hop timeout, not Timer B's 32 s
    exchange = await asyncio.wait_for(call, 5)
    assert exchange.final.status == 200, exchange.final
    (invite,) = psap.requests("INVITE")
    assert invite.headers.get("priority") == "emergency"
    await hang_up(caller, exchange)


async def test_the_caller_is_answered_at_once_when_no_psap_answers(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    clock = FakeClock()
    server = await make_server(
        clock=clock,
        emergency_psap=f"sip:psap@127.0.0.1:{dead_udp_port()}",
        emergency_psaps=[f"sip:psap2@127.0.0.1:{dead_udp_port()}"],
        emergency_hop_timeout_s=0.5,
    )
    caller = await make_ua(server)
    call = asyncio.ensure_future(caller.send(sos(caller)))
    await eventually(lambda: server.endpoint.transactions.client_count == 1)
    await advance(clock, 0.5)  # the first hop gives up; the second is tried
    await advance(clock, 0.5)
    exchange = await asyncio.wait_for(call, 5)
    assert exchange.final.status == 503, exchange.final  # nothing to ring: unavailable


@pytest.mark.parametrize("password", [None, "wrong-password"])
async def test_an_unverified_caller_reaches_the_psap_without_an_asserted_identity(
    make_server: ServerFactory, make_ua: UAFactory, password: str | None
) -> None:
    first = await make_server()
    psap = await make_ua(first)
    psap.on_invite = ring_then(200)
    server = await make_server(emergency_psap=f"sip:psap@127.0.0.1:{psap.port}")
    caller = await make_ua(server)
    # A forged identity from the caller itself must not pass either (RFC 3325 §5).
    request = sos(
        caller, from_=f"carol@{DOMAIN}", extra=[("P-Asserted-Identity", f"<sip:{ALICE}>")]
    )
    if password is not None:
        ordinary = caller.build("INVITE", f"sip:bob@{DOMAIN}", from_=f"carol@{DOMAIN}")
        challenge = (await caller.send(ordinary)).final
        assert challenge.status == 407
        (offer,) = challenges_of(challenge, "Proxy-Authenticate")[:1]
        caller.add_credentials(request, offer, "carol", password, proxy=True)
    exchange = await asyncio.wait_for(caller.send(request), 10)
    assert exchange.final.status == 200  # never refused
    (invite,) = psap.requests("INVITE")
    assert invite.headers.get("p-asserted-identity") is None
    assert invite.headers.get("priority") == "emergency"
    await hang_up(caller, exchange)


async def test_an_authenticated_caller_is_asserted(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    first = await make_server()
    psap = await make_ua(first)
    psap.on_invite = ring_then(200)
    server = await make_server(emergency_psap=f"sip:psap@127.0.0.1:{psap.port}")
    caller = await make_ua(server)
    ordinary = caller.build("INVITE", f"sip:bob@{DOMAIN}", from_=f"carol@{DOMAIN}")
    challenge = (await caller.send(ordinary)).final
    request = sos(caller, from_=f"carol@{DOMAIN}")
    (offer,) = challenges_of(challenge, "Proxy-Authenticate")[:1]
    caller.add_credentials(request, offer, "carol", USERS["carol"], proxy=True)
    exchange = await asyncio.wait_for(caller.send(request), 10)
    assert exchange.final.status == 200
    (invite,) = psap.requests("INVITE")
    assert invite.headers.get("p-asserted-identity") == f"<sip:carol@{DOMAIN}>"
    assert invite.headers.get("proxy-authorization") is None  # consumed, not forwarded
    await hang_up(caller, exchange)
