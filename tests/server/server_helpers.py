"""Names shared by the server tests and their fixtures (conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sipua import TestUA

from sipline.server.config import ServerConfig
from sipline.server.sip_server import SipServer
from sipline.transport import Target

DOMAIN = "example.com"
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
