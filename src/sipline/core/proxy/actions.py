"""What a proxy context asks its element to do. Branches are numbered from 0 in the
order the context forks them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from sipline.core.message import Response

__all__ = [
    "Action",
    "CancelBranch",
    "Fork",
    "GiveUp",
    "HangUp",
    "Relay",
    "Respond",
    "SendResponse",
    "StepEnded",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fork(Generic[T]):
    """Send the request to `target` as branch `branch` (§16.6)."""

    branch: int
    target: T


@dataclass(frozen=True, slots=True)
class Relay:
    """Send `response` upstream without our Via (§16.7 step 3, 9): in the server
    transaction, or, `stateless`, after it (a further 2xx, §16.7 step 10)."""

    response: Response
    stateless: bool = False


@dataclass(frozen=True, slots=True)
class SendResponse:
    """Send `response` upstream as it is (our Via is already off)."""

    response: Response


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer the caller with a response of our own."""

    status: int
    reason: str | None = None
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CancelBranch:
    """CANCEL an INVITE branch (§9.1: it goes once a provisional response came);
    `reason`: its Reason header (RFC 3326)."""

    branch: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class GiveUp:
    """End `branch` with a response of `status` made here (§8.1.3.1), handed back to
    the context as the branch's final response."""

    branch: int
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class HangUp:
    """A 2xx from a branch given up after the caller had its answer: ACK it and, with
    `send_bye`, end the dialog it made (sipline.server.proxy.abandoned says why)."""

    branch: int
    response: Response
    send_bye: bool


@dataclass(frozen=True, slots=True)
class StepEnded:
    """Every branch of a routing step ended without a 2xx: ask the routing policy
    what next, with the step's best response and whether its timeout ended it."""

    best: Response | None
    timed_out: bool


Action = Fork[T] | Relay | SendResponse | Respond | CancelBranch | GiveUp | HangUp | StepEnded
