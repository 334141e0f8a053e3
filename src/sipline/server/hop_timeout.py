"""The per-hop timeout of a proxy branch: Timer B cut short.

A client INVITE transaction waits 64*T1 (32 s) for any response before it gives up
(Timer B, RFC 3261 §17.1.1.2). Where another destination can be tried, such as the
next PSAP of an emergency call, that is far too long to learn that a next hop is
down: a branch that has heard nothing at all (not even 100 Trying, which shows the
hop is alive, §17.1.1.2) within the hop timeout is given up, and its step ends as if
it had timed out. A CANCEL is queued for it (§9.1: sent if a provisional response
still comes), so a late-waking hop stops ringing.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from sipline.core.message import Response
from sipline.runtime.endpoint import ClientTransaction

__all__ = ["HopTimer"]


class _Branch(Protocol):
    ct: ClientTransaction | None
    final: Response | None
    abandoned: bool


class HopTimer:
    """Gives `branch` up unless `heard` is called within `timeout_s`."""

    __slots__ = ("_branch", "_handle", "timeout_s")

    def __init__(self, loop: asyncio.AbstractEventLoop, branch: _Branch, timeout_s: float) -> None:
        self._branch = branch
        self.timeout_s = timeout_s
        self._handle: asyncio.TimerHandle | None = loop.call_later(timeout_s, self._expired)

    def heard(self) -> None:
        """A response arrived: the hop is alive, the transaction's own timers rule."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expired(self) -> None:
        self._handle = None
        branch = self._branch
        ct = branch.ct
        if branch.final is not None or ct is None:
            return
        # Not the step's answer: the step goes on to its next destination.
        branch.abandoned = True
        if ct.request.method == "INVITE":
            ct.cancel()
        ct._fail(408, f"Request Timeout (no response within {self.timeout_s:g} s)")
