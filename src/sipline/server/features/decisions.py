"""What the proxy asks of routing policy, and what it gets back.

The proxy (`sipline.server.proxy`) owns the mechanism: forking a step's targets in
parallel, a step timeout that cancels the step's branches, CANCEL, §16.7 response
choice. A `RoutePlanner` owns the policy: for a request it takes on, it opens a
`RouteSession` whose decisions say what to ring next; the proxy reports each failed
step back (with its outcome and best response) and gets the next decision, so
forwarding on busy, no answer or unavailable chains without special cases.

Pure data and protocols: nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from sipline.core.message import Request, Response
from sipline.storage.base import Binding

__all__ = [
    "Decision",
    "Exhausted",
    "Outcome",
    "Reject",
    "RingStep",
    "RingTarget",
    "RoutePlanner",
    "RouteSession",
    "classify",
]


class Outcome(enum.Enum):
    """How a step ended without a 2xx."""

    BUSY = "busy"  # 486 (RFC 3261 §21.4.24)
    NO_ANSWER = "no_answer"  # the step's timeout fired and its branches were cancelled
    UNAVAILABLE = "unavailable"  # no target, 404/408/410/480/503, transport failure
    DECLINED = "declined"  # a 6xx: §16.7 step 5, no new branches
    FAILED = "failed"  # any other final response: nothing to forward on


_UNAVAILABLE = frozenset({404, 408, 410, 480, 502, 503, 504})


def classify(status: int | None, *, timed_out: bool) -> Outcome:
    """The outcome of a step from its best final status (None: nothing was rung)."""
    if status is not None and status >= 600:
        return Outcome.DECLINED
    if timed_out:
        return Outcome.NO_ANSWER
    if status is None or status in _UNAVAILABLE:
        return Outcome.UNAVAILABLE
    if status == 486:
        return Outcome.BUSY
    return Outcome.FAILED


@dataclass(frozen=True, slots=True)
class RingTarget:
    """One branch: the Request-URI, and the binding it came from (for its next hop
    via Path or the NAT source, RFC 3327 / RFC 5626), or None for a plain URI."""

    uri: str
    binding: Binding | None = None
    headers: tuple[tuple[str, str], ...] = ()  # added to this branch's request
    label: str = ""


@dataclass(frozen=True, slots=True)
class RingStep:
    """Ring `targets` in parallel; after `timeout_s` cancel them and report NO_ANSWER."""

    targets: tuple[RingTarget, ...]
    timeout_s: float | None = None
    # Header fields set (replacing any) and a body replacing the request's, for every branch.
    set_headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    label: str = ""
    # A branch that gets no response at all (not even 100 Trying) within this is
    # given up (Timer B cut short, RFC 3261 §17.1.1.2): its next hop is unreachable.
    hop_timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """Answer the caller with this status now (if no better response is known)."""

    status: int
    reason: str | None = None
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Exhausted:
    """Nothing more to try: send the best response so far (§16.7 step 6), or
    `status` when there is none."""

    status: int = 480
    reason: str | None = None


Decision = RingStep | Reject | Exhausted


class RouteSession(Protocol):
    """The routing of one call: a sequence of decisions."""

    def start(self) -> Decision: ...

    def step_failed(self, outcome: Outcome, best: Response | None) -> Decision:
        """The last `RingStep` ended without a 2xx."""
        ...


class RoutePlanner(Protocol):
    def exempt_from_auth(self, request: Request) -> bool:
        """Requests that must never be refused for want of credentials (emergency calls)."""
        ...

    def open(
        self, request: Request, source_host: str, *, identity: str | None = None
    ) -> Awaitable[RouteSession | None]:
        """A session for `request` (received from `source_host`), or None to let the
        proxy route it by the location service alone. `identity` is the AOR the caller
        authenticated as (None: not verified)."""
        ...
