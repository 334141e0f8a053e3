"""What happens to a call, as events (past tense), and the errors of the UA API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = [
    "CallAnswered",
    "CallEnded",
    "CallEvent",
    "CallFailed",
    "CallHeld",
    "CallProgressed",
    "CallResumed",
    "CallState",
    "CallTransferred",
    "DtmfReceived",
    "EndedBy",
    "PlacedCall",
    "RegistrationError",
    "SessionRefreshed",
    "TransferProgressed",
    "TransferRequested",
    "UserAgentError",
]


class CallState(StrEnum):
    CALLING = "calling"  # INVITE sent, nothing heard yet
    PROCEEDING = "proceeding"  # 100 Trying
    RINGING = "ringing"  # 18x (early media possible)
    INCOMING = "incoming"  # an INVITE received, not answered yet
    ANSWERED = "answered"  # a confirmed dialog with media
    ENDED = "ended"


class EndedBy(StrEnum):
    LOCAL = "local"
    REMOTE = "remote"
    NETWORK = "network"  # timeouts, refresh failures, transport errors


class UserAgentError(Exception):
    """Something the user agent cannot do (no listener, bad target URI, ...)."""


class RegistrationError(UserAgentError):
    """REGISTER failed; `status` is the final response (0 when none came)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"registration failed: {status} {reason}")
        self.status = status
        self.reason = reason


class CallFailed(UserAgentError):  # noqa: N818 (reads as the outcome: "the call failed")
    """The call was not answered: the final status (486 busy, 487 cancelled, ...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CallProgressed:
    """A provisional response: 100 Trying, 180 Ringing, 183 Session Progress..."""

    status: int
    reason: str
    early_media: bool = False


@dataclass(frozen=True, slots=True)
class CallAnswered:
    codec: str | None
    # Our own calls: who answered, from the 2xx (see answerer.py); None when we answered.
    answered_by: str | None = None
    contact: str | None = None
    forwarded_from: str | None = None
    forward_reason: str | None = None


@dataclass(frozen=True, slots=True)
class CallHeld:
    by_remote: bool


@dataclass(frozen=True, slots=True)
class CallResumed:
    by_remote: bool


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    digit: str
    method: str  # "rtp" (RFC 4733) or "info" (application/dtmf-relay)


@dataclass(frozen=True, slots=True)
class SessionRefreshed:
    interval_s: int
    by_remote: bool


@dataclass(frozen=True, slots=True)
class TransferRequested:
    """The peer asked us to call `target` (REFER, RFC 3515)."""

    target: str
    accepted: bool


@dataclass(frozen=True, slots=True)
class TransferProgressed:
    """A NOTIFY about the transfer we asked for: the status the new call reached."""

    status: int
    reason: str


class PlacedCall(Protocol):
    """A call as an event hands it out (a `sipline.phone.Call`)."""

    @property
    def answered(self) -> asyncio.Future[None]: ...

    @property
    def ended(self) -> asyncio.Future[CallEnded]: ...

    @property
    def is_active(self) -> bool: ...

    async def hangup(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """The call we placed because of a REFER (a `sipline.phone.Call`)."""

    new_call: PlacedCall


@dataclass(frozen=True, slots=True)
class CallEnded:
    reason: str
    by: EndedBy
    status: int | None = None


CallEvent = (
    CallProgressed
    | CallAnswered
    | CallHeld
    | CallResumed
    | DtmfReceived
    | SessionRefreshed
    | TransferRequested
    | TransferProgressed
    | CallTransferred
    | CallEnded
)
