"""RFC 3665 call flows, replayed hop by hop through real transaction layers.

Each element (UA or proxy) is a `TransactionLayer` plus a minimal TU written here for
the test; a FIFO in-memory network delivers one message at a time with no delay, and
time only moves to the next deadline any element announces. The sequence of messages
on the wire (sender, receiver, method or status) must equal the flow's rows in
`tests/data/rfc3665-callflows/MANIFEST.tsv`.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable
from pathlib import Path

from sipline.core.builders import build_request, build_response, new_branch, new_tag
from sipline.core.message import Request, Response, parse_message
from sipline.core.transaction import ClientKey, ServerKey, TransactionLayer
from sipline.core.transaction.events import (
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    TransactionEvent,
    TransactionTimedOut,
)
from sipline.core.uri import parse_uri
from sipline.core.views import NameAddr
from sipline.testing import SeededEntropy

MANIFEST = Path(__file__).parents[2] / "data" / "rfc3665-callflows" / "MANIFEST.tsv"
HOSTS = {
    "Alice": "client.atlanta.example.com",
    "Bob": "client.biloxi.example.com",
    "Proxy1": "ss1.atlanta.example.com",
    "Proxy2": "ss2.biloxi.example.com",
    "Registrar": "ss2.biloxi.example.com",
}
Row = tuple[str, str, str]


def flow(number: str) -> list[Row]:
    with MANIFEST.open(newline="") as f:
        return [
            (r["from"], r["to"], r["message"])
            for r in csv.DictReader(f, delimiter="\t")
            if r["flow"] == number
        ]


def label(data: bytes) -> str:
    line = data.split(b"\r\n", 1)[0].decode()
    return line[8:] if line.startswith("SIP/2.0 ") else line.split(" ", 1)[0]


class Element:
    """A transaction layer and the TU hooks a scenario gives it."""

    def __init__(self, net: Network, name: str) -> None:
        self.net = net
        self.name = name
        self.layer = TransactionLayer()
        self.on_event: Callable[[Element, TransactionEvent], None] = lambda el, ev: None


class Network:
    def __init__(self) -> None:
        self.now = 0.0
        self.elements: dict[str, Element] = {}
        self.wire: deque[tuple[str, str, bytes]] = deque()
        self.log: list[Row] = []
        self.drop_to: set[str] = set()
        self.entropy = SeededEntropy(3665)

    def add(self, name: str) -> Element:
        el = self.elements[name] = Element(self, name)
        return el

    def pump(self, el: Element) -> None:
        """Hand `el`'s events to its TU and put what it queued on the wire."""
        while True:
            ev = el.layer.next_event()
            if ev is None:
                break
            el.on_event(el, ev)
        for out in el.layer.datagrams_to_send():
            dest = str(out.destination)
            self.log.append((el.name, dest, label(out.data)))
            if dest not in self.drop_to:
                self.wire.append((el.name, dest, out.data))

    def run(self, until: float = 200.0) -> None:
        while True:
            while self.wire:
                src, dest, data = self.wire.popleft()
                el = self.elements[dest]
                el.layer.receive(parse_message(data), source=src, reliable=False, now=self.now)
                self.pump(el)
            deadlines = [
                d for e in self.elements.values() if (d := e.layer.next_deadline()) is not None
            ]
            if not deadlines or min(deadlines) > until:
                return
            self.now = min(deadlines)
            for e in self.elements.values():
                e.layer.handle_timers(now=self.now)
                self.pump(e)

    def live(self) -> int:
        return sum(e.layer.live_count for e in self.elements.values())


def new_invite(net: Network, method: str = "INVITE", cseq: int = 1) -> Request:
    host = HOSTS["Alice"]
    return build_request(
        method,
        parse_uri("sip:bob@biloxi.example.com"),
        from_=NameAddr.of("sip:alice@atlanta.example.com", "Alice", tag="9fxced76sl"),
        to=NameAddr.of("sip:bob@biloxi.example.com", "Bob"),
        call_id="2xTb9vxSit55XU7p8@atlanta.example.com",
        cseq=cseq,
        via=f"SIP/2.0/UDP {host}:5060;branch={new_branch(net.entropy)}",
        contact=NameAddr.of(f"sip:alice@{host}"),
    )


def make_proxy(el: Element, next_hop: str) -> None:
    """A minimal stateful proxy TU (§16): forward with a new Via, 100 Trying upstream,
    responses back on the server transaction, CANCEL hop by hop, 480 on Timer B."""
    up: dict[ClientKey, tuple[ServerKey, Request]] = {}
    down: dict[ServerKey, ClientKey] = {}
    layer = el.layer

    def on_event(el: Element, ev: TransactionEvent) -> None:
        now = el.net.now
        if isinstance(ev, RequestReceived):
            fwd = parse_message(ev.request.to_bytes())
            assert isinstance(fwd, Request)
            branch = new_branch(el.net.entropy)
            fwd.headers.add("Via", f"SIP/2.0/UDP {HOSTS[el.name]};branch={branch}", first=True)
            ckey = layer.send_request(fwd, target=next_hop, reliable=False, now=now)
            up[ckey] = (ev.key, ev.request)
            down[ev.key] = ckey
            if ev.request.method == "INVITE":
                layer.send_response(build_response(ev.request, 100), now=now)
        elif isinstance(ev, CancelReceived):
            layer.send_response(build_response(ev.request, 200), now=now)
            assert ev.invite_key is not None
            layer.cancel(down[ev.invite_key], now=now)
        elif isinstance(ev, ResponseReceived):
            if ev.response.status == 100 or ev.key not in up:
                return  # 100 is hop by hop; responses to our own CANCEL end here
            back = parse_message(ev.response.to_bytes())
            assert isinstance(back, Response)
            back.headers.pop_first_value("Via")
            layer.send_response(back, now=now)
        elif isinstance(ev, TransactionTimedOut) and isinstance(ev.key, ClientKey):
            _, req = up[ev.key]
            layer.send_response(build_response(req, 480, "No Response", to_tag="p2"), now=now)

    el.on_event = on_event


def three_hop(net: Network) -> tuple[Element, Element]:
    alice, bob = net.add("Alice"), net.add("Bob")
    make_proxy(net.add("Proxy1"), "Proxy2")
    make_proxy(net.add("Proxy2"), "Bob")
    return alice, bob


def finish(net: Network) -> None:
    """Let every timer run out: nothing more goes on the wire, nothing is left."""
    sent = len(net.log)
    net.run(until=1000.0)
    assert net.log[sent:] == []
    assert net.live() == 0
    assert all(e.layer.next_deadline() is None for e in net.elements.values())


def test_3_9_busy_non_2xx_acked_hop_by_hop() -> None:
    net = Network()
    alice, bob = three_hop(net)
    tag = new_tag(net.entropy)

    def bob_tu(el: Element, ev: TransactionEvent) -> None:
        if isinstance(ev, RequestReceived):
            el.layer.send_response(build_response(ev.request, 486, to_tag=tag), now=net.now)

    bob.on_event = bob_tu
    alice.layer.send_request(new_invite(net), target="Proxy1", reliable=False, now=0)
    net.pump(alice)
    net.run(until=0.0)
    assert net.log == flow("3.9")
    finish(net)


def test_3_8_cancel_gets_200_then_487_is_acked() -> None:
    net = Network()
    alice, bob = three_hop(net)
    tag = new_tag(net.entropy)
    invite_key: list[ServerKey] = []
    got: list[int] = []

    def bob_tu(el: Element, ev: TransactionEvent) -> None:
        if isinstance(ev, RequestReceived):
            invite_key.append(ev.key)
            el.layer.send_response(build_response(ev.request, 180, to_tag=tag), now=net.now)
        elif isinstance(ev, CancelReceived):
            assert ev.invite_key == invite_key[0]
            el.layer.send_response(build_response(ev.request, 200), now=net.now)
            inv = el.layer.get(ev.invite_key)
            assert inv is not None
            term = build_response(inv.request, 487, to_tag=tag)
            el.layer.send_response(term, now=net.now)

    def alice_tu(el: Element, ev: TransactionEvent) -> None:
        if isinstance(ev, ResponseReceived):
            got.append(ev.response.status)
            if ev.response.status == 180:
                el.layer.cancel(ClientKey(ev.key.branch, "INVITE"), now=net.now)

    bob.on_event = bob_tu
    alice.on_event = alice_tu
    alice.layer.send_request(new_invite(net), target="Proxy1", reliable=False, now=0)
    net.pump(alice)
    net.run(until=0.0)
    assert net.log == flow("3.8")
    assert got == [100, 180, 200, 487]  # the 200 is the CANCEL's own
    finish(net)


def test_3_10_invite_retransmitted_then_timer_b() -> None:
    net = Network()
    alice, _ = three_hop(net)
    net.drop_to.add("Bob")  # Bob never answers
    finals: list[int] = []

    def alice_tu(el: Element, ev: TransactionEvent) -> None:
        if isinstance(ev, ResponseReceived) and not ev.provisional:
            finals.append(ev.response.status)

    alice.on_event = alice_tu
    alice.layer.send_request(new_invite(net), target="Proxy1", reliable=False, now=0)
    net.pump(alice)
    times: list[float] = []
    proxy2 = net.elements["Proxy2"]
    original_pump = net.pump

    def timed_pump(el: Element) -> None:
        before = len(net.log)
        original_pump(el)
        if el is proxy2:
            times.extend(net.now for row in net.log[before:] if row[1] == "Bob")

    net.pump = timed_pump  # type: ignore[method-assign]
    net.run(until=40.0)
    assert net.log == flow("3.10")
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # F4, then Timer A: F6-F11
    assert finals == [480]  # sent when Proxy2's Timer B fired at 32 s
    finish(net)


def test_2_1_401_then_retry_with_higher_cseq() -> None:
    net = Network()
    bob, registrar = net.add("Bob"), net.add("Registrar")
    seen: list[tuple[ServerKey, int]] = []
    answers: list[int] = []

    def registrar_tu(el: Element, ev: TransactionEvent) -> None:
        if isinstance(ev, RequestReceived):
            req = ev.request
            seen.append((ev.key, req.cseq.seq))
            status = 200 if "authorization" in req.headers else 401
            el.layer.send_response(build_response(req, status, to_tag="37GkEhwl6"), now=net.now)

    def register(cseq: int, auth: bool) -> Request:
        host = HOSTS["Bob"]
        return build_request(
            "REGISTER",
            parse_uri("sip:registrar.biloxi.example.com"),
            from_=NameAddr.of("sip:bob@biloxi.example.com", "Bob", tag="456248"),
            to=NameAddr.of("sip:bob@biloxi.example.com", "Bob"),
            call_id="843817637684230@998sdasdh09",
            cseq=cseq,
            via=f"SIP/2.0/UDP {host}:5060;branch={new_branch(net.entropy)}",
            contact=NameAddr.of(f"sip:bob@{host}"),
            extra=[("Authorization", 'Digest username="bob"')] if auth else None,
        )

    def bob_tu(el: Element, ev: TransactionEvent) -> None:
        if isinstance(ev, ResponseReceived):
            answers.append(ev.response.status)
            if ev.response.status == 401:
                # §8.1.3.5, §22.2: a new request, CSeq + 1, a new branch: a new transaction.
                el.layer.send_request(
                    register(2, True), target="Registrar", reliable=False, now=net.now
                )

    registrar.on_event = registrar_tu
    bob.on_event = bob_tu
    bob.layer.send_request(register(1, False), target="Registrar", reliable=False, now=0)
    net.pump(bob)
    net.run(until=0.0)
    assert net.log == flow("2.1")
    assert answers == [401, 200]
    assert [cseq for _, cseq in seen] == [1, 2]
    assert seen[0][0] != seen[1][0]
    assert bob.layer.stats.clients_created == 2
    finish(net)
