"""Helpers for user agent tests over loopback: agents, test signals, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from sipline.apps.ua import UserAgent
from sipline.core.timers import TimerConfig
from sipline.media.audio import to_int16
from sipline.media.codecs.base import Pcm

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
    item = ua.endpoint.listening("UDP")
    return f"sip:{user or ua.config.aor.user}@{HOST}:{item.port}"


async def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
