"""Events the transaction layer hands up to the layer above (past tense).

Keys are the ones from `sipline.core.transaction.matching`; `source` is whatever
opaque object the runtime passed to `TransactionLayer.receive` (typically the
transport source), handed back untouched so that answers can go out the same way.

Events are plain slotted dataclasses, not frozen ones: a frozen dataclass's __init__
pays an object.__setattr__ call per field, and one event is made per message. Nobody
changes an event after the layer queued it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipline.core.message import Request, Response
from sipline.core.timers import Timer
from sipline.core.transaction.matching import ClientKey, ServerKey

__all__ = [
    "AckReceived",
    "CancelReceived",
    "RequestReceived",
    "ResponseReceived",
    "StrayResponse",
    "TransactionEvent",
    "TransactionTerminated",
    "TransactionTimedOut",
    "TransportFailed",
]


@dataclass(slots=True)
class RequestReceived:
    """A new request (not ACK, not CANCEL): a server transaction was created for it.
    The TU answers with `TransactionLayer.send_response`."""

    request: Request
    key: ServerKey
    source: object


@dataclass(slots=True)
class CancelReceived:
    """A new CANCEL (§9.2) with its own server transaction `key`. `invite_key` is the
    INVITE server transaction it cancels, or None (a UAS answers 481, a proxy forwards
    the CANCEL statelessly, §16.10). The TU answers the CANCEL itself (200 or 481) and,
    when `invite_key` is still unanswered, sends 487 on it. `other_key` is the non-INVITE
    server transaction it matches instead, if any: the CANCEL is answered 200 and the
    request goes on unaffected (§9.2, §16.10)."""

    request: Request
    key: ServerKey
    invite_key: ServerKey | None
    source: object
    other_key: ServerKey | None = None


@dataclass(slots=True)
class AckReceived:
    """An ACK no server transaction absorbed: the ACK for a 2xx (§13.3.1.4, §17.2.3).
    `key` names the INVITE server transaction in Accepted when it matched one
    (RFC 6026 §7.1), else None. A proxy forwards it, a UAS gives it to the dialog."""

    request: Request
    key: ServerKey | None
    source: object


@dataclass(slots=True)
class ResponseReceived:
    """A response for client transaction `key`. Retransmitted non-2xx finals are
    absorbed; 2xx retransmissions to an INVITE are not (RFC 6026: the TU ACKs each)."""

    response: Response
    key: ClientKey
    provisional: bool


@dataclass(slots=True)
class StrayResponse:
    """A response no client transaction matches (§17.1.3). A proxy forwards it
    statelessly (§16.7, §18.1.2); a UA drops it, save 2xx retransmissions for a dialog."""

    response: Response
    source: object


@dataclass(slots=True)
class TransactionTimedOut:
    """`timer` (B or F for a client, H for a server) fired: for a client transaction,
    the TU treats this as a 408 (§8.1.3.1); for a server, the ACK never came."""

    key: ClientKey | ServerKey
    timer: Timer


@dataclass(slots=True)
class TransportFailed:
    """The runtime reported that sending for `key` failed (§17.1.4, §17.2.4). For a
    client transaction the TU treats this as a 503 (§8.1.3.1)."""

    key: ClientKey | ServerKey


@dataclass(slots=True)
class TransactionTerminated:
    """The transaction is gone; its key may be forgotten."""

    key: ClientKey | ServerKey


TransactionEvent = (
    RequestReceived
    | CancelReceived
    | AckReceived
    | ResponseReceived
    | StrayResponse
    | TransactionTimedOut
    | TransportFailed
    | TransactionTerminated
)
