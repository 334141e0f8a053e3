"""A REGISTER addressed to the server's own address (RFC 3261 §10.3 step 1): phones set
up with registrar = the server's IP and account = alice@example.com send
`REGISTER sip:127.0.0.1:PORT` with `To: <sip:alice@example.com>`; the domain is the To's."""

from __future__ import annotations

import pytest
from server_helpers import DOMAIN, USERS, UAFactory, server_target
from sipua import challenges_of

from sipline.server.sip_server import SipServer


@pytest.mark.parametrize("with_port", [True, False], ids=["with-port", "without-port"])
async def test_register_to_the_server_address_is_for_the_to_domain(
    server: SipServer, make_ua: UAFactory, with_port: bool
) -> None:
    ua = await make_ua(server)
    target = server_target(server)
    ruri = f"sip:{target.host}:{target.port}" if with_port else f"sip:{target.host}"
    request = ua.build(
        "REGISTER", ruri, from_=f"alice@{DOMAIN}", contact=ua.contact("alice"),
        extra=[("Expires", "600")],
    )  # fmt: skip
    first = await ua.send(request)
    assert first.final.status == 401, first.final.reason
    assert challenges_of(first.final)[0].realm == DOMAIN
    done = await ua.send(ua.answer(request, first.final, "alice", USERS["alice"]))
    assert done.final.status == 200, done.final.reason
    assert [b.contact for b in server.backend.bindings(f"alice@{DOMAIN}")] == [ua.contact("alice")]


async def test_register_to_the_server_address_for_a_foreign_domain_is_refused(
    server: SipServer, make_ua: UAFactory
) -> None:
    ua = await make_ua(server)
    target = server_target(server)
    request = ua.build(
        "REGISTER", f"sip:{target.host}:{target.port}", from_="alice@elsewhere.example",
        contact=ua.contact("alice"),
    )  # fmt: skip
    done = await ua.send(request)
    assert done.final.status == 404
