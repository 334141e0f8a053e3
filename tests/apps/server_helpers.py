"""Names shared by the server tests and their fixtures (conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sipua import TestUA

from sipline.apps.server import SipServer
from sipline.transport import Target

DOMAIN = "example.com"
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

ServerFactory = Callable[..., Awaitable[SipServer]]
UAFactory = Callable[..., Awaitable[TestUA]]


def server_target(server: SipServer, transport: str = "UDP") -> Target:
    item = server.endpoint.listening(transport)
    return Target(transport, item.host, item.port)
