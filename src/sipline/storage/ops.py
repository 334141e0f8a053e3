"""What an operator looks back on: call detail records, events (registrations, failed
logins) and the SIP messages of each call (for its ladder diagram and pcap export).

Written by every server process through the store's group commit, so several workers
sharing one database build one record per call whichever worker saw which message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["CallRecord", "CallUpdate", "OpsEvent", "OpsStore", "TracedMessage"]

# (the name of an OpsStore update method, its arguments): queued by the server and
# written in batches with `OpsStore.record`.
CallUpdate = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call through the server. Times are wall-clock seconds (Unix time)."""

    call_id: str
    caller: str  # the From AOR
    callee: str  # the Request-URI as dialled
    source: str  # transport:host:port the INVITE came from
    started_at: float
    ringing_at: float | None
    answered_at: float | None
    ended_at: float | None
    duration_s: float | None  # answer to end
    answered_by: str | None  # the Contact of the device that answered
    forwarded_by: str | None  # who forwarded the call there (Diversion / History-Info)
    hangup_by: str | None  # "caller", "callee" or "server"
    status: int | None  # the final response sent to the caller
    reason: str | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class OpsEvent:
    """A registration change or a failed login."""

    at: float
    kind: str  # registered, unregistered, expired, register_refused, auth_failed, banned
    user: str
    source: str
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TracedMessage:
    """One SIP message sent or received by the server, as it was on the wire."""

    call_id: str
    at: float
    sent: bool
    transport: str
    local: str  # host:port
    remote: str  # host:port
    data: bytes


class OpsStore(Protocol):
    def record(self, updates: Sequence[CallUpdate], messages: Sequence[TracedMessage] = ()) -> None:
        """Several updates (cdr_*, add_event) and messages in one transaction."""
        ...

    def cdr_start(
        self,
        call_id: str,
        caller: str,
        caller_tag: str,
        callee: str,
        source: str,
        started_at: float,
    ) -> None:
        """A new call (an INVITE without To tag); a repeat after a challenge re-opens it."""
        ...

    def cdr_ringing(self, call_id: str, at: float) -> None: ...

    def cdr_answered(
        self, call_id: str, at: float, answered_by: str | None, forwarded_by: str | None
    ) -> None: ...

    def cdr_failed(
        self, call_id: str, at: float, status: int, reason: str, hangup_by: str | None
    ) -> None:
        """A final non-2xx response to the caller ends the call attempt."""
        ...

    def cdr_ended(self, call_id: str, at: float, from_tag: str) -> None:
        """A BYE: who sent it is told by its From tag (§12.2.1.1); "" for the server."""
        ...

    def list_calls(
        self,
        *,
        since: float | None = None,
        user: str | None = None,
        active: bool = False,
        limit: int = 100,
    ) -> list[CallRecord]: ...

    def get_call(self, call_id: str) -> CallRecord | None: ...

    def count_active_calls(self) -> int: ...

    def add_event(self, event: OpsEvent) -> None: ...

    def list_events(
        self, *, since: float | None = None, kind: str | None = None, limit: int = 100
    ) -> list[OpsEvent]: ...

    def add_messages(self, messages: list[TracedMessage]) -> None: ...

    def call_messages(self, call_id: str) -> list[TracedMessage]: ...

    def close_stale_calls(self, started_before: float, at: float) -> int:
        """End the unanswered calls started before `started_before` that never saw a
        final response (their process stopped, or the update was lost): 408."""
        ...

    def purge_records(self, before: float) -> int:
        """Forget calls ended, events and messages older than `before`."""
        ...
