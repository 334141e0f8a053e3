"""Real calls to the server's own services (conference rooms, the media host,
voicemail) on loopback: a database with users, a `SipServer` on UDP, user agents
registered with it, and a measure of which tone a recording holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from server_helpers import configured

from sipline.core.clock import Clock
from sipline.core.timers import TimerConfig
from sipline.phone import UserAgent
from sipline.server.config import ServerConfig, parse_listen
from sipline.server.sip_server import SipServer
from sipline.storage.sqlite import SqliteStore

DOMAIN = "example.com"
HOST = "127.0.0.1"
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def add_users(db: Path, users: Iterable[str]) -> None:
    """Create `db` with `DOMAIN` and each user in it, password `USER-pw`."""
    store = SqliteStore(db)
    try:
        store.add_domain(DOMAIN)
        for user in users:
            store.add_user(user, DOMAIN, f"{user}-pw")
    finally:
        store.close()


def loopback_config(db: Path, **fields: Any) -> ServerConfig:
    """A server for `DOMAIN` on UDP loopback with the database `db`; `fields` are further
    settings (`server_helpers.configured`)."""
    return configured(
        listen=[parse_listen(f"udp:{HOST}:0")], domains=[DOMAIN], database=db, **fields
    )


@asynccontextmanager
async def running(config: ServerConfig, clock: Clock | None = None) -> AsyncIterator[SipServer]:
    """`config`'s server, started; `clock=FakeClock()` runs its timers on a clock the test
    advances."""
    server = SipServer(config, clock=clock)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def user_agent(server: SipServer, user: str, **options: Any) -> UserAgent:
    """`USER@DOMAIN` (password `USER-pw`) using `server`, on fast timers."""
    port = server.endpoint.local_addresses[0].port
    return UserAgent(
        f"{user}@{DOMAIN}",
        password=f"{user}-pw",
        server=f"{HOST}:{port}",
        listen=f"{HOST}:0",
        timers=FAST,
        **options,
    )


def energy_share(
    samples: np.ndarray, hz: float, *, width_hz: float = 20.0, rate: int = 8000, hann: bool = False
) -> float:
    """Share of the signal's energy within ±`width_hz` of `hz` (optionally through a
    Hann window, against the leakage of a short recording)."""
    x = samples.astype(np.float64)
    if hann:
        x = x * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    total = float(spectrum.sum()) or 1.0
    return float(spectrum[np.abs(freqs - hz) <= width_hz].sum()) / total
