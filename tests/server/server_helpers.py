"""Names shared by the server tests and their fixtures (conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sipua import TestUA

from sipline.server.config import ServerConfig, parse_listen
from sipline.server.sip_server import SipServer, WorkerSetup
from sipline.transport import Target
from sipline.transport.channel import channel_socket
from sipline.transport.shared import shared_socket

DOMAIN = "example.com"
HOST = "127.0.0.1"
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

ServerFactory = Callable[..., Awaitable[SipServer]]
UAFactory = Callable[..., Awaitable[TestUA]]


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the event loop run (no time passes on a fake clock) until `predicate` holds."""

    async def until() -> None:
        while not predicate():
            await asyncio.sleep(0)

    await asyncio.wait_for(until(), timeout)


def server_target(server: SipServer, transport: str = "UDP") -> Target:
    item = server.endpoint.local_address(transport)
    return Target(transport, item.host, item.port)


class TracebackCatcher(logging.Handler):
    """Collects every log record that carries a traceback (`log.exception`, or any
    record with exc_info): a traceback reaching the server's log is a bug."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.caught: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None and record.exc_info != (None, None, None):
            self.caught.append(record)

    def report(self) -> str:
        formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
        return "\n---\n".join(formatter.format(r) for r in self.caught)


@contextmanager
def failing_on_tracebacks() -> Iterator[TracebackCatcher]:
    """Watch the server's (and asyncio's) log for a traceback while the block runs; fail
    the test after it if one was logged."""
    catcher = TracebackCatcher()
    watched = [logging.getLogger("sipline"), logging.getLogger("asyncio")]
    for logger in watched:
        logger.addHandler(catcher)
    try:
        yield catcher
    finally:
        for logger in watched:
            logger.removeHandler(catcher)
    if catcher.caught:
        pytest.fail("a traceback was logged:\n" + catcher.report())


# The short names tests give configuration keys (`make_server(timer_c_s=0.5)`): a key's
# own name when one section alone has it, else one of these.
_SHORT_NAMES = {
    "min_expires": "registrar.min_expires",
    "max_expires": "registrar.max_expires",
    "default_expires": "registrar.default_expires",
    "subscribe_min_expires": "presence.min_expires",
    "subscribe_max_expires": "presence.max_expires",
    "subscribe_default_expires": "presence.default_expires",
    "presence_policy": "presence.default_policy",
    "message_max_body_bytes": "messaging.max_body_bytes",
    "delivery_retry_s": "messaging.retry_s",
    "auth_algorithms": "auth.algorithms",
    "security_log_file": "security.log_file",
    "emergency_psap": "emergency.psap",
    "emergency_psaps": "emergency.psaps",
    "emergency_numbers": "emergency.numbers",
    "emergency_hop_timeout_s": "emergency.hop_timeout_s",
    "overload_max_pending": "overload.max_pending_transactions",
    "overload_retry_after_s": "overload.retry_after_s",
    "overload_max_udp_queue_fill": "overload.max_udp_queue_fill",
    "overload_max_loop_lag_ms": "overload.max_loop_lag_ms",
    "overload_enabled": "overload.enabled",
    "media_port": "media.port",
    "voicemail_speech": "voicemail.speech",
    "voicemail_max_messages": "voicemail.max_messages",
    "voicemail_enabled": "voicemail.enabled",
}


def configured(cfg: ServerConfig | None = None, **settings: Any) -> ServerConfig:
    """`cfg` (else the defaults) with `settings` by short name, e.g. `timer_c_s=0.5`;
    a section (`email=EmailSection(...)`), `regions`, `trusted`, `rooms` and `ops` are
    taken whole."""
    cfg = cfg if cfg is not None else ServerConfig()
    sections = {
        f.name: [g.name for g in dataclasses.fields(getattr(cfg, f.name))]
        for f in dataclasses.fields(cfg)
        if dataclasses.is_dataclass(getattr(cfg, f.name)) and f.name != "ops"
    }
    whole: dict[str, Any] = {}
    changes: dict[str, dict[str, Any]] = {}  # section -> attribute -> value
    for name, value in settings.items():
        value = tuple(value) if isinstance(value, list) else value
        if name in ("regions", "trusted", "rooms", "ops") or name in sections:
            whole[name] = value
            continue
        if name in _SHORT_NAMES:
            section, _, attr = _SHORT_NAMES[name].partition(".")
        else:
            [section] = [s for s, names in sections.items() if name in names]
            attr = name
        changes.setdefault(section, {})[attr] = value
    for section, values in changes.items():  # a section at once: its rules tie its keys
        whole[section] = dataclasses.replace(getattr(cfg, section), **values)
    return dataclasses.replace(cfg, **whole)


@asynccontextmanager
async def two_workers(
    database: Path,
    listeners: Callable[[int], Sequence[tuple[str, int]]],
    *,
    channel_dir: Path | None = None,
    users: bool = False,
) -> AsyncIterator[list[SipServer]]:
    """Workers 0 and 1 of one server on loopback, as `sipline serve --workers 2` runs
    them: one nonce secret, the database `database`, and each the SO_REUSEPORT sockets
    of `listeners(index)` (transport and port pairs: the same ports for both, or ports
    of their own so that a test picks which one a request reaches); joined by the
    channel in `channel_dir` when given. `users`: worker 0 adds `USERS` in `DOMAIN`
    before worker 1 starts and loads every HA1."""
    secret = os.urandom(32)
    if channel_dir is not None:
        channel_dir.mkdir()
    started: list[SipServer] = []
    try:
        for index in (0, 1):
            pairs = listeners(index)
            cfg = configured(
                listen=[parse_listen(f"{t.lower()}:{HOST}:{port}") for t, port in pairs],
                domains=[DOMAIN],
                database=database,
            )
            setup = WorkerSetup(
                index=index,
                secret=secret,
                count=2,
                sockets=[
                    shared_socket(t, HOST, port, 1 << 20 if t == "UDP" else 0) for t, port in pairs
                ],
                channel=None if channel_dir is None else channel_socket(str(channel_dir), index),
                channel_dir=None if channel_dir is None else str(channel_dir),
            )
            server = SipServer(cfg, worker=setup)
            started.append(server)
            await server.start()
            store = server.store
            if users and index == 0:
                assert store is not None
                for user, password in USERS.items():
                    await store.write(store.store.add_user, user, DOMAIN, password)
        yield started
    finally:
        for server in started:
            await server.stop()
