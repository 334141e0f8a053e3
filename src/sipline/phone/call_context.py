"""What the parts of a call (its INVITE session, the caller's and the callee's role,
transfer) need from the call that holds them, as one Protocol. `Call` (`call.py`)
provides it; the parts never see its class, so none of them imports another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

from sipline.core.dialog import Dialog
from sipline.core.views import NameAddr
from sipline.phone.events import CallEvent, CallState, EndedBy, PlacedCall

__all__ = ["CallContext"]


class CallContext(Protocol):
    """One call, as its parts see it."""

    state: CallState
    local: NameAddr

    @property
    def outgoing(self) -> bool: ...

    @property
    def remote(self) -> NameAddr: ...

    @property
    def call_id(self) -> str: ...

    @property
    def is_active(self) -> bool: ...

    @property
    def answered(self) -> asyncio.Future[None]: ...

    def emit(self, event: CallEvent) -> None: ...

    async def end(self, reason: str, by: EndedBy, status: int | None = None) -> None:
        """Tear the call down locally (the signalling that ends it is the caller's)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None] | Awaitable[None]) -> None: ...

    def bind_dialog(self, dialog: Dialog) -> None:
        """Requests in `dialog` now come to this call."""
        ...

    async def hangup(self) -> None: ...

    async def allow_transfer(self, target: str) -> bool: ...

    async def place_transfer(self, target: str, referred_by: str) -> PlacedCall:
        """Call `target` for a REFER (RFC 3515), playing what this call plays."""
        ...
