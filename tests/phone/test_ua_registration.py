"""Registration against a small registrar on loopback: digest (§22.2), refresh before
expiry, 423 (§10.2.8), NAT discovery from Via received/rport (RFC 3581), CRLF
keep-alives, and the binding removed on close."""

from __future__ import annotations

import asyncio

import pytest
from ua_helpers import HOST, Challenger, TestServer, run_until, wait_for

from sipline.core.message import Request
from sipline.phone import RegistrationError, UserAgent
from sipline.runtime.endpoint import ServerTransaction
from sipline.testing import FakeClock, advance


class _Registrar(TestServer):
    """Challenges (401), wants at least `min_expires`, grants `grant` seconds."""

    def __init__(self, *, grant: int = 600, min_expires: int = 0) -> None:
        super().__init__()
        self.auth = Challenger("example.com", {"alice": "secret"})
        self.grant = grant
        self.min_expires = min_expires
        self.bindings: dict[str, int] = {}
        self.refuse: int | None = None  # answer every REGISTER with this

    def handle(self, st: ServerTransaction) -> None:
        request = st.request
        if request.method != "REGISTER":
            st.respond(405)
            return
        if self.refuse is not None:
            st.respond(self.refuse)
            return
        if not self.auth.check(st, "authorization"):
            return
        expires = int(request.headers.get("expires") or "3600")
        if 0 < expires < self.min_expires:
            st.respond(423, extra=[("Min-Expires", str(self.min_expires))])
            return
        for contact in request.contacts:
            if expires == 0:
                self.bindings.pop(contact.uri_text, None)
            else:
                self.bindings[contact.uri_text] = min(expires, self.grant)
        st.respond(200, extra=[("Contact", f"<{c}>;expires={e}") for c, e in self.bindings.items()])

    def registers(self) -> list[Request]:
        return [r for r in self.requests if r.method == "REGISTER"]


async def test_register_with_digest_refresh_and_unregister_on_close() -> None:
    registrar = await _Registrar(grant=2).start()
    clock = FakeClock()
    try:
        ua = UserAgent(
            "alice@example.com",
            password="secret",
            server=registrar.hostport,
            listen=f"{HOST}:0",
            keepalive_s=0.2,
            clock=clock,
        )
        async with ua:
            assert ua.registered and ua.registration is not None
            assert ua.registration.granted_s == 2
            contact = f"sip:alice@{HOST}:{ua.endpoint.local_address('UDP').port}"
            assert list(registrar.bindings) == [contact]
            first = registrar.registers()
            assert first[0].headers.get("authorization") is None
            assert first[1].headers.get("authorization") is not None
            # Refreshed before the 2 s run out (one second ahead), credentials up front.
            await advance(clock, 0.9)
            assert ua.registration.refreshes == 0
            await run_until(clock, lambda: ua.registration and ua.registration.refreshes, limit_s=1)
            refresh = registrar.registers()[-1]
            assert refresh.headers.get("authorization") is not None
            assert refresh.call_id == first[0].call_id
            assert refresh.cseq.seq > first[1].cseq.seq
            await advance(clock, 0.4)  # keep-alives every 0.2 s
            await wait_for(lambda: registrar.endpoint.transports.stats.keepalives_in >= 2, 3)
        assert registrar.bindings == {}  # removed on close
        last = registrar.registers()[-1]
        assert last.headers.get("expires") == "0"
    finally:
        await registrar.close()


@pytest.mark.parametrize(("status", "retried"), [(403, False), (503, True)])
async def test_a_refused_refresh_is_not_retried_a_transient_one_is(
    status: int, retried: bool
) -> None:
    registrar = await _Registrar(grant=2).start()
    clock = FakeClock()
    try:
        ua = UserAgent(
            "alice@example.com",
            password="secret",
            server=registrar.hostport,
            listen=f"{HOST}:0",
            clock=clock,
        )
        async with ua:
            registration = ua.registration
            assert registration is not None
            registrar.refuse = status  # e.g. the account was removed: 403 Forbidden
            sent = len(registrar.registers())
            await advance(clock, 1.0)  # the refresh, one second ahead of expiry
            await wait_for(lambda: len(registrar.registers()) > sent, 4)
            await wait_for(lambda: not registration.registered, 2)
            if retried:  # RFC 5626 §4.5: tried again after base-time, 30 s
                assert registration.refused is None and registration.failures == 1
                assert registration._refresh is not None
            else:
                assert registration.refused is not None
                assert registration.refused.status == status
                assert registration._refresh is None  # nothing scheduled
    finally:
        await registrar.close()


async def test_423_is_answered_with_the_minimum() -> None:
    registrar = await _Registrar(min_expires=900).start()
    try:
        ua = UserAgent(
            "alice@example.com", password="secret", server=registrar.hostport, listen=f"{HOST}:0"
        )
        async with ua:
            assert ua.registration is not None and ua.registration.granted_s == 600
            assert registrar.registers()[-1].headers.get("expires") == "900"
    finally:
        await registrar.close()


async def test_a_wrong_password_fails_registration() -> None:
    registrar = await _Registrar().start()
    try:
        ua = UserAgent(
            "alice@example.com", password="nope", server=registrar.hostport, listen=f"{HOST}:0"
        )
        with pytest.raises(RegistrationError) as failed:
            await ua.start()
        assert failed.value.status == 401
        await ua.close()
    finally:
        await registrar.close()


async def test_behind_nat_the_public_address_is_registered() -> None:
    """We advertise an address the registrar does not see us at: its Via received/rport
    tells us the real one, which we register (and use in calls) instead."""
    registrar = await _Registrar().start()
    try:
        ua = UserAgent(
            "alice@example.com",
            password="secret",
            server=registrar.hostport,
            listen=f"{HOST}:0",
            advertise="192.0.2.10",
        )
        async with ua:
            port = ua.endpoint.local_address("UDP").port
            public = f"sip:alice@{HOST}:{port}"
            assert list(registrar.bindings) == [public]
            assert ua.contact().uri_text == public
            removed = [r for r in registrar.registers() if r.headers.get("expires") == "0"]
            assert removed and removed[0].contacts[0].uri_text == f"sip:alice@192.0.2.10:{port}"
    finally:
        await registrar.close()


async def test_register_needs_a_server() -> None:
    ua = UserAgent("alice@example.com", listen=f"{HOST}:0")
    await ua.start()
    with pytest.raises(Exception, match="no server"):
        await ua.register()
    await ua.close()
    assert not ua.registered
    await asyncio.sleep(0)
