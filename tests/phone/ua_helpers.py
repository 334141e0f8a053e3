"""Helpers for user agent tests over loopback: agents, test signals, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import numpy as np

from sipline.core.timers import TimerConfig
from sipline.media.audio import to_int16
from sipline.media.codecs.base import Pcm
from sipline.phone import UserAgent
from sipline.testing import FakeClock, advance

T = TypeVar("T")
HOST = "127.0.0.1"
# Fast retransmission timers so that the failure paths end in a second or two.
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def chirp(seconds: float, *, f0: float = 300.0, rate: float = 400.0) -> Pcm:
    """A sweep: it correlates with itself at one lag only (unlike a tone)."""
    t = np.arange(round(seconds * 8000)) / 8000
    return to_int16(12000 * np.sin(2 * np.pi * (f0 * t + rate * t * t)))


def agent(name: str, **kwargs: object) -> UserAgent:
    """An agent for `name@example.com` on a free loopback port, no server."""
    kwargs.setdefault("timers", FAST)
    return UserAgent(f"{name}@example.com", listen=f"{HOST}:0", **kwargs)  # type: ignore[arg-type]


def uri_of(ua: UserAgent, user: str | None = None) -> str:
    item = ua.endpoint.local_address("UDP")
    return f"sip:{user or ua.config.aor.user}@{HOST}:{item.port}"


async def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def run_until(
    clock: FakeClock, done: Callable[[], object], *, limit_s: float, step_s: float = 0.05
) -> None:
    """Step `clock` on `step_s` at a time (the loop turning in between, so the packets
    that real loopback sockets carry are handled) until `done()` holds; fail once
    `limit_s` of clock time has passed without it."""
    passed = 0.0
    while not done():
        if passed >= limit_s:
            raise AssertionError(f"condition not met within {limit_s} s of clock time")
        await advance(clock, step_s)
        passed += step_s


async def on_clock(clock: FakeClock, awaitable: Awaitable[T], *, limit_s: float = 30.0) -> T:
    """Await `awaitable` while stepping `clock` (a BYE to a peer gone silent waits for
    its timeout on the clock: this makes that time pass)."""
    task = asyncio.ensure_future(awaitable)
    await run_until(clock, task.done, limit_s=limit_s)
    return task.result()


# -- small servers built on a bare endpoint -----------------------------------------------------
from sipline.core.auth import DigestVerifier, ha1, parse_credentials  # noqa: E402
from sipline.core.auth_header import Credentials  # noqa: E402
from sipline.core.message import Request  # noqa: E402
from sipline.runtime.endpoint import Endpoint, ServerTransaction  # noqa: E402
from sipline.testing import SeededEntropy  # noqa: E402


class TestServer:
    """A bare endpoint on loopback that answers with `handle(st)`; records requests."""

    __test__ = False

    def __init__(self) -> None:
        self.endpoint = Endpoint()
        self.endpoint.on_request = self._on_request
        self.requests: list[Request] = []
        self.port = 0

    async def start(self) -> TestServer:
        _, self.port = await self.endpoint.bind("UDP", HOST, 0)
        return self

    @property
    def hostport(self) -> str:
        return f"{HOST}:{self.port}"

    def _on_request(self, st: ServerTransaction) -> None:
        self.requests.append(st.request)
        self.handle(st)

    def handle(self, st: ServerTransaction) -> None:
        st.respond(501)

    async def close(self) -> None:
        await self.endpoint.close()


class Challenger:
    """Digest checks for one realm with a known password (RFC 3261 §22)."""

    def __init__(self, realm: str, users: dict[str, str]) -> None:
        self.verifier = DigestVerifier(
            realm=realm,
            secret=b"0123456789abcdef0123",
            entropy=SeededEntropy(9),
            ha1_lookup=lambda u, r, a: ha1(u, r, users[u], a) if u in users else None,
        )

    def check(self, st: ServerTransaction, header: str = "proxy-authorization") -> bool:
        """True if the request carries good credentials; else a challenge went out."""
        now = st._endpoint.now()
        for value in st.request.headers.get_all(header):
            creds = parse_credentials(value)
            if isinstance(creds, Credentials) and creds.realm == self.verifier.realm:
                outcome = self.verifier.verify(
                    creds, method=st.request.method, body=st.request.body, now=now
                )
                if outcome.ok:
                    return True
        status, name = (
            (407, "Proxy-Authenticate")
            if header == "proxy-authorization"
            else (401, "WWW-Authenticate")
        )
        st.respond(status, extra=[(name, c.serialize()) for c in self.verifier.challenges(now=now)])
        return False
