"""Service addresses -> handlers: which Request-URIs of a served domain the media host
answers instead of the location service (`sip:room-NAME@domain`, ...).

The proxy of every worker asks `route(uri)` for the hop; only the process that runs
the media host builds the handlers (`factory` is called there, once), so a worker
that never answers a call itself never imports numpy or the codecs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sipline.core.uri import SipUri
from sipline.transport.base import Target

if TYPE_CHECKING:
    from sipline.phone.call import Call

__all__ = ["Handler", "Service", "ServiceRegistry"]

Handler = Callable[["Call"], Awaitable[None]]
Matcher = Callable[[str], bool]


@dataclass(slots=True)
class Service:
    """One kind of service: the user parts it answers and how to build its handler."""

    name: str
    matches: Matcher
    factory: Callable[[], Handler]
    _handler: Handler | None = field(default=None, repr=False)

    @property
    def built(self) -> Handler | None:
        """The handler if it was built (a service may have a `stop` coroutine)."""
        return self._handler

    def handler(self) -> Handler:
        if self._handler is None:
            self._handler = self.factory()
        return self._handler


class ServiceRegistry:
    """Service addresses of the served domains and the media host that answers them.

    `target` is where the media host listens (a loopback UDP port, the same for every
    worker); None until it is known, and then nothing is routed to it."""

    def __init__(self) -> None:
        self.services: list[Service] = []
        self.target: Target | None = None

    def add(self, name: str, matches: Matcher, factory: Callable[[], Handler]) -> None:
        if any(s.name == name for s in self.services):
            raise ValueError(f"service {name!r} is registered already")
        self.services.append(Service(name, matches, factory))

    def add_prefix(self, name: str, prefix: str, factory: Callable[[], Handler]) -> None:
        """Users starting with `prefix` (e.g. "room-"), compared case-insensitively."""
        lowered = prefix.lower()
        self.add(name, lambda user: user.lower().startswith(lowered), factory)

    def add_users(self, name: str, users: tuple[str, ...], factory: Callable[[], Handler]) -> None:
        """These exact user parts (e.g. "voicemail", "*98")."""
        wanted = frozenset(u.lower() for u in users)
        self.add(name, lambda user: user.lower() in wanted, factory)

    def find(self, user: str | None) -> Service | None:
        if not user:
            return None
        for service in self.services:
            if service.matches(user):
                return service
        return None

    def route(self, uri: SipUri) -> Target | None:
        """The media host's address when `uri` (of a served domain) names a service."""
        if self.target is None or self.find(uri.user) is None:
            return None
        return self.target
