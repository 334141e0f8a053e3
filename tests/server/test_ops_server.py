"""What an operator sees of an in-process server over real loopback sockets: call
records built from a call between test user agents, the management API (its
credential, users, domains, routes, registrations, calls, events, ending a call),
`/metrics`, the SIP trace and JSON logs."""

from __future__ import annotations

import base64
import json
import logging
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_helpers import DOMAIN, ServerFactory, UAFactory
from sipua import Dialog, TestUA, ring_then

from sipline.server.ops.config import HttpSettings, LogSettings, OpsConfig
from sipline.server.records.logs import JsonFormatter
from sipline.server.records.tap import FLUSH_S
from sipline.server.sip_server import SipServer
from sipline.testing import FakeClock, advance
from sipline.transport.tls import generate_self_signed

ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}
ADMIN = "admin-password-1"
TOKEN = "token-for-scripts-1"


def ops(**log: Any) -> OpsConfig:
    return OpsConfig(
        log=LogSettings(**log),
        http=HttpSettings(listen="127.0.0.1:0", admin_password=ADMIN, token=TOKEN),
    )


async def registered(server: SipServer, make_ua: UAFactory, aor: str) -> TestUA:
    ua = await make_ua(server)
    user = aor.partition("@")[0]
    request = ua.build("REGISTER", f"sip:{DOMAIN}", from_=aor,
                       extra=[("Contact", f"<{ua.contact(user)}>"), ("Expires", "600")])  # fmt: skip
    done = await ua.send_authenticated(request, user, PASSWORDS[user])
    assert done.final.status == 200
    return ua


def basic(password: str) -> dict[str, str]:
    value = base64.b64encode(f"admin:{password}".encode()).decode()
    return {"Authorization": f"Basic {value}"}


async def settle(clock: FakeClock, server: SipServer) -> None:
    """The call-record flush falls due and what it wrote is committed (the store runs
    calls in order)."""
    await advance(clock, FLUSH_S)
    assert server.store is not None
    await server.store.call(lambda: None)


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession(
        headers=basic(ADMIN), timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        yield session


async def get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_call_record_and_ending_the_call_from_the_api(
    make_server: ServerFactory, make_ua: UAFactory, http: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    server = await make_server(clock=clock, ops=ops())
    assert server.ops is not None and server.ops.url
    base = server.ops.url
    bob = await registered(server, make_ua, BOB)
    bob.on_invite = ring_then(200)
    caller = await make_ua(server)
    request = caller.build(
        "INVITE", f"sip:{BOB}", from_=ALICE, to=BOB, contact=caller.contact("alice")
    )
    call = await caller.send_authenticated(request, "alice", "alice-pw")
    assert call.statuses == [100, 180, 200]
    Dialog(caller, call.request, call.final).ack()
    await settle(clock, server)
    [record] = await get(http, base + "api/calls?active=1")
    assert record["call_id"] == request.call_id
    assert (record["caller"], record["callee"]) == (ALICE, f"sip:{BOB}")
    assert record["answered_by"] == bob.contact("uas")
    assert record["status"] == 200 and record["ended_at"] is None
    assert record["started_at"] <= record["ringing_at"] <= record["answered_at"] <= time.time()
    status = await get(http, base + "api/status")
    assert status["active_calls"] == 1 and status["registered"] == 1

    # the ladder: every message in order, from the caller's side to the callee's
    detail = await get(http, base + f"api/calls/{request.call_id}")
    labels = [m["label"].split(" ")[0] for m in detail["messages"]]
    assert labels[:3] == ["INVITE", "100", "407"]
    assert labels[-1] == "ACK" and "180" in labels and "200" in labels
    assert detail["parties"][1] == "sipline" and len(detail["parties"]) == 3

    # the operator ends it: a BYE to each side, the record says so
    async with http.delete(base + f"api/calls/{request.call_id}") as response:
        assert response.status == 200, await response.text()
    await bob.wait_for(lambda: bool(bob.requests("BYE")))
    await caller.wait_for(lambda: bool(caller.requests("BYE")))
    [to_bob], [to_alice] = bob.requests("BYE"), caller.requests("BYE")
    assert to_bob.call_id == to_alice.call_id == request.call_id
    assert to_bob.from_.tag == request.from_.tag  # as if from alice (§12.2.1.1)
    assert to_alice.to.tag == request.from_.tag
    assert to_bob.uri_text == bob.contact("uas") and to_alice.uri_text == caller.contact("alice")
    await settle(clock, server)
    [ended] = await get(http, base + "api/calls")
    assert ended["hangup_by"] == "server" and ended["duration_s"] >= 0
    async with http.delete(base + f"api/calls/{request.call_id}") as response:
        assert response.status == 404  # not active any more

    text = await (await http.get(base + "metrics")).text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("sipline_calls_total", (("outcome", "answered"),))] == 1
    assert samples[("sipline_calls_total", (("outcome", "challenged"),))] == 1
    assert samples[("sipline_registrations_total", (("outcome", "ok"),))] == 1
    assert samples[("sipline_registrations_total", (("outcome", "challenged"),))] == 1
    assert samples[("sipline_responses_total", (("code", "180"), ("direction", "out")))] == 1


async def test_the_api_needs_the_admin_credential(make_server: ServerFactory) -> None:
    server = await make_server(ops=ops())
    assert server.ops is not None
    base = server.ops.url
    timeout = aiohttp.ClientTimeout(total=10)
    # unsafe: the client keeps cookies from an IP address (as browsers do)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=jar) as anon:
        for path in ("api/status", "api/calls", "metrics", "api/users"):
            async with anon.get(base + path) as response:
                assert response.status == 401, path
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with anon.get(base) as response:  # the login page itself is open
            assert response.status == 200 and '<form id="login"' in await response.text()
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        async with anon.post(base + "api/login", json={"password": "wrong"}) as response:
            assert response.status == 403
        async with anon.post(base + "api/login", data="password=" + ADMIN) as response:
            assert response.status in (400, 415)  # a form post is refused
        async with anon.post(base + "api/login", json={"password": ADMIN}) as response:
            assert response.status == 200
            cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with anon.get(base + "api/status") as response:  # the session cookie
            assert response.status == 200
        for _ in range(4):  # five wrong passwords in a minute: that address must wait
            async with anon.post(base + "api/login", json={"password": "wrong"}) as response:
                assert response.status == 403
        async with anon.post(base + "api/login", json={"password": ADMIN}) as response:
            assert response.status == 429 and response.headers["Retry-After"] == "60"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession(timeout=timeout, headers=headers) as bearer,
        bearer.get(base + "metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    async with (
        aiohttp.ClientSession(timeout=timeout, headers=basic("nope")) as bad,
        bad.get(base + "api/status") as response,
    ):
        assert response.status == 401


async def test_administration_through_the_api(
    make_server: ServerFactory, make_ua: UAFactory, http: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    server = await make_server(clock=clock, ops=ops())
    assert server.ops is not None
    base = server.ops.url
    async with http.post(base + "api/domains", json={"name": "other.example"}) as response:
        assert response.status == 201
    assert "other.example" in await get(http, base + "api/domains")
    async with http.post(
        base + "api/users", json={"address": "dave@other.example", "password": "dave-pw"}
    ) as response:
        assert response.status == 201
    async with http.post(
        base + "api/users", json={"address": "dave@other.example", "password": "x"}
    ) as response:
        assert response.status == 409
    async with http.post(
        base + "api/users", json={"address": "no-at-sign", "password": "x"}
    ) as response:
        assert response.status == 400 and "user@domain" in (await response.json())["error"]
    async with http.post(
        base + "api/users", data="{not json", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
    assert "dave@other.example" in await get(http, base + "api/users")
    async with http.delete(base + "api/users/dave@other.example") as response:
        assert response.status == 200
    assert "dave@other.example" not in await get(http, base + "api/users")
    async with http.delete(base + "api/users/nobody@other.example") as response:
        assert response.status == 404

    # routing rules: checked as `sipline route set` checks them
    rules = {"dnd": True, "block": ["*@spam.example"]}
    async with http.put(base + f"api/routes/{ALICE}", json=rules) as response:
        assert response.status == 200, await response.text()
    stored = await get(http, base + "api/routes")
    assert stored[ALICE]["dnd"] is True and stored[ALICE]["block"] == ["*@spam.example"]
    async with http.put(base + f"api/routes/{ALICE}", json={"no such rule": 1}) as response:
        assert response.status == 400 and "not saved" in (await response.json())["error"]

    bob = await registered(server, make_ua, BOB)
    # the same contact again: a refresh, not a change (no event; a line at debug only)
    again = bob.build("REGISTER", f"sip:{DOMAIN}", from_=BOB,
                      extra=[("Contact", f"<{bob.contact('bob')}>"), ("Expires", "600")])  # fmt: skip
    assert (await bob.send_authenticated(again, "bob", "bob-pw")).final.status == 200
    [reg] = await get(http, base + "api/registrations")
    assert (
        reg["aor"] == BOB
        and reg["contact"] == bob.contact("bob")
        and 590 < reg["expires_in"] <= 600
    )
    async with http.delete(base + f"api/registrations/{BOB}") as response:
        assert (await response.json())["removed"] == 1
    assert await get(http, base + "api/registrations") == []
    await settle(clock, server)
    events = await get(http, base + "api/events")
    assert [e["kind"] for e in events] == ["registered"]
    assert events[0]["user"] == BOB and events[0]["source"] == f"udp:127.0.0.1:{bob.port}"
    text = await (await http.get(base + "metrics")).text()
    assert 'sipline_registrations_total{outcome="ok"} 1.0' in text
    assert 'sipline_registrations_total{outcome="refresh"} 1.0' in text
    # a registration that runs out is a change too (housekeeping purges it)
    carol_ua = await make_ua(server)
    short = carol_ua.build("REGISTER", f"sip:{DOMAIN}", from_=f"carol@{DOMAIN}",
                           extra=[("Contact", f"<{carol_ua.contact('carol')}>"), ("Expires", "600")])  # fmt: skip
    assert (await carol_ua.send_authenticated(short, "carol", "carol-pw")).final.status == 200
    assert server.store is not None
    assert await server.store.purge_expired(server.endpoint.wall() + 601) == 1
    await settle(clock, server)
    kinds = [(e["kind"], e["user"]) for e in await get(http, base + "api/events")]
    assert kinds[0] == ("expired", f"carol@{DOMAIN}")
    text = await (await http.get(base + "metrics")).text()
    assert "sipline_registrations_expired_total 1.0" in text
    reload = await (await http.post(base + "api/reload")).json()
    assert reload["error"] == "no configuration file"  # started without one


async def test_failed_logins_are_counted_and_recorded(
    make_server: ServerFactory, make_ua: UAFactory, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    clock = FakeClock()
    server = await make_server(clock=clock, ops=ops())
    assert server.ops is not None
    ua = await make_ua(server)
    request = ua.build("REGISTER", f"sip:{DOMAIN}", from_=BOB,
                       extra=[("Contact", f"<{ua.contact('bob')}>")])  # fmt: skip
    with caplog.at_level(logging.INFO, logger="sipline"):
        first = await ua.send(request)
        assert first.final.status == 401
        wrong = await ua.send(ua.answer(request, first.final, "bob", "not-bobs"))
        assert wrong.final.status == 401
        await settle(clock, server)
    # the security log has the line (one, not two)
    lines = [r.getMessage() for r in caplog.records if "auth" in r.getMessage().lower()]
    assert len(lines) == 1 and lines[0].startswith(
        f'auth-failed src=127.0.0.1:{ua.port} user="bob@'
    )
    [event] = await get(http, server.ops.url + "api/events?kind=auth_failed")
    assert event["user"] == BOB and event["detail"] == "REGISTER"
    assert event["source"] == f"udp:127.0.0.1:{ua.port}"
    text = await (await http.get(server.ops.url + "metrics")).text()
    assert 'sipline_auth_failures_total{method="REGISTER"} 1.0' in text
    assert "sipline_bans_total 0.0" in text


async def test_sip_trace_and_json_logs(
    make_server: ServerFactory, make_ua: UAFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(ops=ops(sip_trace=True, format="json"))
    ua = await make_ua(server)
    with caplog.at_level(logging.INFO, logger="sipline"):
        done = await ua.send(ua.build("OPTIONS", f"sip:{BOB}", from_=ALICE, to=BOB))
    assert done.final.status == 407
    traced = [r for r in caplog.records if r.name == "sipline.sip"]
    assert traced[0].getMessage().startswith(f"received UDP <- 127.0.0.1:{ua.port} (")
    assert f"OPTIONS sip:{BOB} SIP/2.0" in traced[0].getMessage()
    assert traced[-1].getMessage().startswith(f"sent UDP -> 127.0.0.1:{ua.port} (")
    doc = json.loads(JsonFormatter(worker=1).format(traced[0]))
    assert doc["level"] == "info" and doc["logger"] == "sipline.sip" and doc["worker"] == 1
    assert doc["event"] == "sip" and doc["src"] == f"127.0.0.1:{ua.port}"
    assert doc["msg"].splitlines()[1] == f"OPTIONS sip:{BOB} SIP/2.0"


async def test_https_listener(make_server: ServerFactory, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    generate_self_signed(cert, key)
    settings = HttpSettings(listen="127.0.0.1:0", admin_password=ADMIN, tls_cert=cert, tls_key=key)
    server = await make_server(ops=OpsConfig(http=settings))
    assert server.ops is not None and server.ops.url.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    async with (
        aiohttp.ClientSession(headers=basic(ADMIN)) as session,
        session.get(server.ops.url + "api/status", ssl=context) as response,
    ):
        assert response.status == 200 and (await response.json())["workers"] == 1
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as session,
        session.post(
            server.ops.url + "api/login", json={"password": ADMIN}, ssl=context
        ) as response,
    ):
        assert "Secure" in response.headers["Set-Cookie"]  # never sent back over plain HTTP


async def test_odd_requests_get_4xx_not_tracebacks(
    make_server: ServerFactory, http: aiohttp.ClientSession
) -> None:
    server = await make_server(ops=ops())
    assert server.ops is not None
    base = server.ops.url
    odd = [
        ("GET", "api/calls?limit=1e309", 400),
        ("GET", "api/calls?since=nan", 400),
        ("GET", "api/calls?limit=abc", 400),
        ("GET", "api/events?limit=-5", 200),
        ("GET", "api/calls/%00%ff", 404),
        ("GET", "api/calls/x/pcap", 404),
        ("DELETE", "api/calls/nothing", 404),
        ("GET", "api/nothing", 404),
        ("DELETE", "api/users/not-an-address", 400),
        ("PUT", "api/users/nobody@example.com", 400),
        ("POST", "api/domains", 400),
        ("PUT", f"api/routes/{ALICE}", 400),
        ("DELETE", "api/domains/unknown.example", 404),
    ]
    for method, path, status in odd:
        async with http.request(
            method, base + path, json=[] if method != "GET" else None
        ) as response:
            assert response.status == status, (method, path, await response.text())
            if response.status >= 400 and path.startswith("api/") and response.status != 404:
                assert "error" in await response.json()


async def test_unknown_methods_share_one_metric_label(
    make_server: ServerFactory, make_ua: UAFactory, http: aiohttp.ClientSession
) -> None:
    server = await make_server(ops=ops())
    assert server.ops is not None
    ua = await make_ua(server)
    for method in ("FOO", "BAR", "OPTIONS"):
        done = await ua.send(ua.build(method, f"sip:{DOMAIN}", from_=ALICE, to=ALICE))
        assert done.final.status >= 200
    text = await (await http.get(server.ops.url + "metrics")).text()
    assert 'sipline_requests_total{direction="in",method="other"} 2.0' in text
    assert 'sipline_requests_total{direction="in",method="OPTIONS"} 1.0' in text
    assert "FOO" not in text and "BAR" not in text


async def test_a_ban_is_counted_and_recorded(
    make_server: ServerFactory, make_ua: UAFactory, http: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    server = await make_server(clock=clock, ops=ops(), max_auth_failures=2)
    assert server.ops is not None
    ua = await make_ua(server)
    for _ in range(2):
        request = ua.build("REGISTER", f"sip:{DOMAIN}", from_=BOB,
                           extra=[("Contact", f"<{ua.contact('bob')}>")])  # fmt: skip
        first = await ua.send(request)
        wrong = await ua.send(ua.answer(request, first.final, "bob", "not-bobs"))
        assert wrong.final.status == 401
    await settle(clock, server)
    kinds = [(e["kind"], e["source"]) for e in await get(http, server.ops.url + "api/events")]
    assert kinds[0] == ("banned", "127.0.0.1")
    assert [k for k, _ in kinds].count("auth_failed") == 2
    text = await (await http.get(server.ops.url + "metrics")).text()
    assert "sipline_bans_total 1.0" in text
    assert 'sipline_auth_failures_total{method="REGISTER"} 2.0' in text
