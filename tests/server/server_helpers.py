"""Names shared by the server tests and their fixtures (conftest.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sipua import TestUA

from sipline.server.sip_server import SipServer
from sipline.transport import Target

DOMAIN = "example.com"
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

ServerFactory = Callable[..., Awaitable[SipServer]]
UAFactory = Callable[..., Awaitable[TestUA]]


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
