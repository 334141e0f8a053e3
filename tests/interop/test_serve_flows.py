"""Flows have owners (docs/architecture.md "Workers"): a phone registered over TCP with
`sipline serve --workers 2` is reached whichever worker a caller's request enters,
on the connection it opened (the other worker hands the request to the one holding
it); a UDP phone's responses that the kernel gives to the other worker still complete
the transaction (no private port: the Via names the public one); and with two nodes
(two `sipline serve` on 127.0.0.1 and 127.0.0.2 sharing one database) a phone
registered at one is reached by requests entering at the other, over its own flow.

Callers are strangers on UDP sockets of 127.0.0.2 and 127.0.0.3, each on its own
port, so SO_REUSEPORT spreads them over the workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flow_phones import Caller, Phone
from interop_helpers import ServeProcess, start_serve
from test_serve_workers import per_worker
from test_server_sipp import CONFIG, provision

pytestmark = [pytest.mark.interop, pytest.mark.slow]

N = 50
CALLER_HOSTS = ("127.0.0.2", "127.0.0.3")


def callers(count: int = 10) -> list[Caller]:
    return [Caller(CALLER_HOSTS[i % 2], f"caller{i}") for i in range(count)]


def stop(*servers: ServeProcess) -> None:
    for server in servers:
        alive = server.alive()
        code = server.stop()
        assert alive and code == 0, "\n".join(server.lines[-30:])


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ServeProcess]:
    provision(tmp_path / "sipline.db", [("bob", "bob-pw"), ("carol", "carol-pw")])
    server = start_serve(tmp_path, CONFIG, tls=False, workers=2)
    try:
        yield server
    finally:
        stop(server)


def reach(phone: Phone, server: tuple[str, int], user: str, everyone: list[Caller]) -> None:
    """N MESSAGEs from the callers in turn: every one answered 200 by the phone."""
    time.sleep(0.3)  # every process follows the store's binding feed (20 ms polls)
    before = sum(1 for r in phone.received if r.method == "MESSAGE")
    statuses = [everyone[i % len(everyone)].message(server, user) for i in range(N)]
    assert statuses == [200] * N
    got = sum(1 for r in phone.received if r.method == "MESSAGE")
    assert got - before == N


def calls_both_ways(phone: Phone, server: tuple[str, int], user: str, two: list[Caller]) -> None:
    """A call hung up by the caller, and one hung up by the phone, each along the
    Record-Route (the phone's BYE on its own flow; the caller's reaching the phone's)."""
    first = two[0].call(server, user)
    assert two[0].bye(first) == 200
    second = two[1].call(server, user)
    [invite] = [
        r for r in phone.received if r.method == "INVITE" and r.call_id == second.invite.call_id
    ]
    answering = threading.Thread(target=two[1].wait_bye)  # the caller answers the BYE
    answering.start()
    try:
        assert phone.bye(invite).status == 200
    finally:
        answering.join(timeout=10)


def test_a_tcp_phone_is_reached_through_either_worker(two_workers: ServeProcess) -> None:
    server = ("127.0.0.1", two_workers.port)
    phone = Phone("bob", server, "TCP")
    everyone = callers()
    try:
        phone.register()
        phone.start()
        reach(phone, server, "bob", everyone)
        calls_both_ways(phone, server, "bob", everyone)
        counts = per_worker(two_workers)
        # Both workers took callers; the one without the phone's connection handed
        # its requests to the one with it, and got the answers back.
        assert all(c["requests_in"] > 0 for c in counts.values()), counts
        assert all(c["to_siblings"] > 0 for c in counts.values()), counts
    finally:
        phone.close()
        for c in everyone:
            c.close()


def test_the_callee_hangs_up_on_the_callers_own_connection(two_workers: ServeProcess) -> None:
    """Callers over TCP, not registered: the phone's BYE reaches each on the connection
    its INVITE came on, whichever worker holds it (our Record-Route carries the
    caller's flow token, RFC 5626 §5.3), and the caller's own requests still go on."""
    server = ("127.0.0.1", two_workers.port)
    bob = Phone("bob", server, "TCP")
    strangers = [Phone(f"caller{i}", server, "TCP", domain="elsewhere.test") for i in range(6)]
    try:
        bob.register()
        bob.start()
        time.sleep(0.3)  # the binding reaches the other worker
        for caller in strangers:
            caller.start()
            invite, answer = caller.call("bob")
            [rr] = answer.headers.get_all("record-route")
            assert rr.startswith("<sip:") and "@" in rr  # a flow token in the user part
            # The INVITE (its ACK may have arrived already: same Call-ID).
            [got] = [
                r for r in bob.received if r.call_id == invite.call_id and r.method == "INVITE"
            ]
            assert bob.bye(got).status == 200
            assert any(r.method == "BYE" for r in caller.received)
    finally:
        bob.close()
        for caller in strangers:
            caller.close()


def test_a_udp_phone_answers_the_public_port_and_either_worker_completes(
    two_workers: ServeProcess,
) -> None:
    server = ("127.0.0.1", two_workers.port)
    phone = Phone("carol", server, "UDP")
    everyone = callers()
    try:
        phone.register()
        phone.start()
        reach(phone, server, "carol", everyone)
        # Every request came from the public port and names it in its Via: the
        # phone's answers reach whichever worker the kernel picks.
        for request in phone.received:
            assert request.top_via.port == two_workers.port, request.top_via
        counts = per_worker(two_workers)
        assert sum(c["to_siblings"] for c in counts.values()) > 0, counts
    finally:
        phone.close()
        for c in everyone:
            c.close()


def test_a_phone_registered_at_one_node_is_reached_from_the_other(tmp_path: Path) -> None:
    provision(tmp_path / "sipline.db", [("bob", "bob-pw"), ("carol", "carol-pw")])
    node_a = start_serve(tmp_path, CONFIG, tls=False, workers=2, host="127.0.0.1")
    node_b = start_serve(tmp_path, CONFIG, tls=False, workers=2, host="127.0.0.2")
    a, b = ("127.0.0.1", node_a.port), ("127.0.0.2", node_b.port)
    bob = Phone("bob", a, "TCP")
    carol = Phone("carol", a, "UDP")
    everyone = [Caller("127.0.0.3", f"caller{i}") for i in range(4)]
    try:
        for phone in (bob, carol):
            phone.register()
            phone.start()
        for phone, user in ((bob, "bob"), (carol, "carol")):
            reach(phone, b, user, everyone)
            calls_both_ways(phone, b, user, everyone)
        # Each went through node A, the owner of the flows.
        assert all(r.top_via.port == node_a.port for r in bob.received + carol.received)
    finally:
        for phone in (bob, carol):
            phone.close()
        for c in everyone:
            c.close()
        stop(node_b, node_a)
