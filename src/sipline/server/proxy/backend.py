"""What the proxy asks of the server: users, domains, lookups, and its settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sipline.core.message import Request
from sipline.core.uri import Uri
from sipline.runtime.endpoint import ServerTransaction
from sipline.server.hops import Hop
from sipline.storage.base import Binding
from sipline.transport import Target

__all__ = ["ProxyBackend", "ProxyConfig", "RedirectPolicy"]


class ProxyBackend(Protocol):
    """What the proxy needs to know about users and domains."""

    def is_local_domain(self, host: str) -> bool: ...

    async def user_exists(self, user: str, domain: str) -> bool: ...

    def bindings(self, aor: str) -> list[Binding]:
        """Current (unexpired) bindings of `aor`."""
        ...

    def binding_for_contact(self, contact: str) -> Binding | None:
        """The binding whose Contact is `contact` (to reach a UA behind NAT in-dialog)."""
        ...

    def device_hop(self, binding: Binding, request: Request | None = None) -> Hop | None:
        """Where a registered device is reached: its flow (server/hops.py), else the
        address its REGISTER came from; None when only its Contact tells."""
        ...

    async def authorize(self, st: ServerTransaction, domain: str) -> bool:
        """Authenticate the caller of `st` for `domain`; when it answers False it has
        already sent the 407 challenge (or a 403)."""
        ...

    async def identify(self, request: Request, domain: str) -> str | None:
        """The AOR the request's credentials for `domain` prove (matching its From),
        or None; never answers (for requests that are not refused, emergency calls)."""
        ...

    async def resolve(self, uri: Uri) -> list[Target]:
        """RFC 3263: where to send a request for `uri`."""
        ...


@dataclass(slots=True)
class ProxyConfig:
    record_route: bool = True
    timer_c_s: float = 180.0  # §16.6 step 11: more than 3 minutes
    authenticate_calls: bool = True
    max_route_steps: int = 32  # steps a RouteSession may ring in one call


class RedirectPolicy(Protocol):
    def redirects(self, aor: str) -> bool: ...
