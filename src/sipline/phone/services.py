"""What the parts of a user agent (calls, registration, messages, presence) need from
the agent that holds them, as one Protocol: the endpoint and its timers, who we are,
where requests go, and the request sender. The agent (`agent.py`) provides it; the
parts depend on this Protocol only, never on the agent's class.
"""

from __future__ import annotations

from typing import Protocol

from sipline.core.clock import Entropy
from sipline.core.dialog import DialogTable
from sipline.core.uri import Uri
from sipline.core.views import NameAddr
from sipline.phone.config import UserAgentConfig
from sipline.phone.credentials import DigestClient
from sipline.phone.requests import RequestSender
from sipline.runtime.endpoint import Endpoint
from sipline.transport import Target

__all__ = ["AgentServices"]


class AgentServices(Protocol):
    """The agent, as its calls, subscriptions and messages see it."""

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def dialogs(self) -> DialogTable: ...

    @property
    def entropy(self) -> Entropy: ...

    @property
    def config(self) -> UserAgentConfig: ...

    @property
    def digest(self) -> DigestClient | None: ...

    @property
    def sender(self) -> RequestSender: ...

    def contact(self) -> NameAddr:
        """Our Contact: where requests for us go."""
        ...

    def headers(self) -> list[tuple[str, str]]:
        """User-Agent, Allow, Supported for the requests and responses of a call."""
        ...

    def initial_routes(self) -> list[NameAddr]: ...

    async def first_hop(self, uri: Uri) -> Target: ...

    async def resolve(self, uri: Uri) -> Target: ...

    def target_uri(self, target: str) -> Uri:
        """A dial string, `user@host` or SIP URI as a URI (UserAgentError if not)."""
        ...

    async def start(self) -> None: ...
