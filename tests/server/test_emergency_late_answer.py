"""A PSAP that answers after the per-hop timeout gave it up (RFC 3261 §16.7), through
a real `SipServer` on loopback: once the caller has its answer from the next PSAP,
the late 2xx is ACKed and hung up by the server, not relayed as a second answer; when
nothing has answered yet, the late 2xx is the caller's answer."""

from __future__ import annotations

import asyncio

from server_helpers import ServerFactory, UAFactory
from sipua import ring_then
from test_emergency_server import hang_up, sos

from sipline.core.builders import build_response
from sipline.core.message import Request, parse_message
from sipline.testing import FakeClock, advance


class SilentPsap(asyncio.DatagramProtocol):
    """A PSAP on a bare UDP socket: says nothing (not even 100 Trying, so the hop
    timeout gives it up) until the test makes it answer."""

    def __init__(self) -> None:
        self.requests: list[tuple[Request, tuple[str, int]]] = []
        self.transport: asyncio.BaseTransport | None = None
        self.arrived = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse_message(data)
        if isinstance(msg, Request):
            self.requests.append((msg, addr))
            if msg.method == "BYE":  # §15.1.2: answer the BYE
                self.send(build_response(msg, 200).to_bytes(), addr)
            self.arrived.set()

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]

    def methods(self) -> list[str]:
        return [r.method for r, _ in self.requests]

    def answer(self, port: int) -> None:
        """200 OK to the INVITE, as a UAS creating a dialog (§12.1.1)."""
        invite, addr = next((r, a) for r, a in self.requests if r.method == "INVITE")
        ok = build_response(
            invite,
            200,
            to_tag="late",
            copy_record_route=True,
            extra=[("Contact", f"<sip:psap@127.0.0.1:{port}>")],
        )
        self.send(ok.to_bytes(), addr)

    async def wait_for(self, method: str, timeout: float = 5.0) -> None:
        async def until() -> None:
            while method not in self.methods():
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(until(), timeout)


async def silent_psap() -> tuple[SilentPsap, int, asyncio.BaseTransport]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        SilentPsap, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    return protocol, port, transport


async def test_a_psap_answering_after_the_next_one_did_is_hung_up(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    slow, slow_port, transport = await silent_psap()
    try:
        first = await make_server()
        psap = await make_ua(first)
        psap.on_invite = ring_then(200)
        clock = FakeClock()
        server = await make_server(
            clock=clock,
            emergency_psap=f"sip:psap@127.0.0.1:{slow_port}",
            emergency_psaps=[f"sip:psap@127.0.0.1:{psap.port}"],
            emergency_hop_timeout_s=0.5,
        )
        caller = await make_ua(server)
        call = asyncio.ensure_future(caller.send(sos(caller)))
        await slow.wait_for("INVITE")
        await advance(clock, 0.5)  # the hop timeout gives the silent PSAP up
        exchange = await asyncio.wait_for(call, 5)
        assert exchange.final.status == 200
        assert len(psap.requests("INVITE")) == 1  # the next PSAP has the call
        slow.answer(slow_port)  # the first PSAP wakes up and answers too
        await slow.wait_for("BYE")
        assert "ACK" in slow.methods()
        bye = next(r for r, _ in slow.requests if r.method == "BYE")
        assert bye.to.tag == "late" and bye.call_id == exchange.request.call_id
        # The BYE and a relayed answer would have left together: let the loop run.
        await advance(clock, 0.0)
        assert [r.status for r in exchange.responses if r.status >= 200] == [200]
        assert exchange.final.to.tag != "late"
        await hang_up(caller, exchange)
    finally:
        transport.close()


async def test_a_late_answer_is_relayed_when_nothing_else_answered(
    make_server: ServerFactory, make_ua: UAFactory
) -> None:
    slow, slow_port, transport = await silent_psap()
    try:
        first = await make_server()
        psap = await make_ua(first)
        psap.on_invite = ring_then(200, delay_s=30)  # rings on, unanswered
        clock = FakeClock()
        server = await make_server(
            clock=clock,
            emergency_psap=f"sip:psap@127.0.0.1:{slow_port}",
            emergency_psaps=[f"sip:psap@127.0.0.1:{psap.port}"],
            emergency_hop_timeout_s=0.5,
        )
        caller = await make_ua(server)
        call = asyncio.ensure_future(caller.send(sos(caller)))
        await slow.wait_for("INVITE")
        await advance(clock, 0.5)
        await psap.wait_for(lambda: len(psap.requests("INVITE")) == 1)
        slow.answer(slow_port)
        exchange = await asyncio.wait_for(call, 5)
        assert exchange.final.status == 200 and exchange.final.to.tag == "late"
        await psap.wait_for(lambda: len(psap.cancels) == 1)  # §16.7 step 10
        assert "BYE" not in slow.methods()
    finally:
        transport.close()
