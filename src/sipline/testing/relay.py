"""A lossy UDP relay: it stands in front of one endpoint as a NAT would, and drops a
seeded fraction of the datagrams in each direction. For tests of media under loss, on
loopback (sipline's own, and users' tests of their agents)."""

from __future__ import annotations

import asyncio
import random
import socket
from typing import cast

__all__ = ["LossyRelay", "relay_pair"]

HOST = "127.0.0.1"
Address = tuple[str, int]


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyRelay, outer: bool) -> None:
        self.relay = relay
        self.outer = outer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.relay._relay(data, (str(addr[0]), int(addr[1])), self.outer)


class LossyRelay:
    """What reaches `public` goes on to `target` from `inner`; what `target` sends to
    `inner` goes back to whoever last wrote to `public`. Index 0 of the counters is
    towards `target`, index 1 back out."""

    def __init__(self, target: Address, *, loss: float = 0.05, seed: int = 1) -> None:
        self.target = target
        self.loss = loss
        self._rng = random.Random(seed)
        self.peer: Address | None = None
        self.public: Address = ("", 0)
        self.inner: Address = ("", 0)
        self.forwarded = [0, 0]  # towards target, towards peer
        self.dropped = [0, 0]
        self._outer: _Side | None = None
        self._inner: _Side | None = None

    @classmethod
    async def start(
        cls, target: Address, *, loss: float = 0.05, seed: int = 1, public_port: int = 0
    ) -> LossyRelay:
        relay = cls(target, loss=loss, seed=seed)
        loop = asyncio.get_running_loop()
        outer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            outer.bind((HOST, public_port))
        except OSError:
            outer.close()
            raise
        _, relay._outer = await loop.create_datagram_endpoint(
            lambda: _Side(relay, True), sock=outer
        )
        _, relay._inner = await loop.create_datagram_endpoint(
            lambda: _Side(relay, False), local_addr=(HOST, 0)
        )
        relay.public = outer.getsockname()
        assert relay._inner.transport is not None
        relay.inner = relay._inner.transport.get_extra_info("sockname")[:2]
        return relay

    def _relay(self, data: bytes, addr: Address, outer: bool) -> None:
        direction = 0 if outer else 1
        if outer:
            self.peer = addr
        if self._rng.random() < self.loss:
            self.dropped[direction] += 1
            return
        self.forwarded[direction] += 1
        if outer:
            assert self._inner is not None and self._inner.transport is not None
            self._inner.transport.sendto(data, self.target)
        elif self.peer is not None:
            assert self._outer is not None and self._outer.transport is not None
            self._outer.transport.sendto(data, self.peer)

    def close(self) -> None:
        for side in (self._outer, self._inner):
            if side is not None and side.transport is not None:
                side.transport.close()


async def relay_pair(
    rtp_target: Address, *, loss: float = 0.05, seed: int = 1
) -> tuple[LossyRelay, LossyRelay]:
    """Relays for an RTP port and its RTCP port + 1, public on an even/odd pair."""
    for _ in range(50):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOST, 0))
        port = probe.getsockname()[1] & ~1
        probe.close()
        try:
            rtp = await LossyRelay.start(rtp_target, loss=loss, seed=seed, public_port=port)
        except OSError:
            continue
        try:
            rtcp = await LossyRelay.start(
                (rtp_target[0], rtp_target[1] + 1), loss=loss, seed=seed + 1, public_port=port + 1
            )
        except OSError:
            rtp.close()
            continue
        return rtp, rtcp
    raise RuntimeError("no free relay port pair")
