"""What the transaction layer keeps and hands out (RFC 3261 §17): one transaction's
record, the bytes to send with where they go, and the layer's counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from sipline.core.message import Request
from sipline.core.timers import Timer
from sipline.core.transaction.matching import ClientKey, ServerKey
from sipline.core.transaction.tables import Machine

__all__ = ["LayerStats", "Outgoing", "Transaction"]


class Outgoing(NamedTuple):
    """Bytes to send. `destination` is the `target` given to `send_request` or the
    `source` a request arrived from; `key` is the transaction to report a failure
    against with `transport_error` (None for `send_stateless`)."""

    data: bytes
    destination: object
    reliable: bool
    key: ClientKey | ServerKey | None


@dataclass(slots=True)
class LayerStats:
    """Monotonic counters for monitoring (the live count is `TransactionLayer.live_count`)."""

    clients_created: int = 0
    servers_created: int = 0
    terminated: int = 0
    retransmissions_sent: int = 0  # requests, responses and ACKs sent again
    retransmissions_received: int = 0  # requests and responses absorbed or re-answered
    timeouts: int = 0
    transport_failures: int = 0
    stray_responses: int = 0
    stray_acks: int = 0  # ACKs matching no transaction (2xx ACKs), passed up


class Transaction:
    """One transaction's state. Owned by the layer; read-only to everyone else."""

    __slots__ = (
        "ack_data",
        "cancel_pending",
        "cancel_reason",
        "data",
        "interval",
        "key",
        "legacy_base",
        "machine",
        "peer",
        "reliable",
        "request",
        "response_data",
        "response_to_tag",
        "state",
        "timers",
    )

    def __init__(
        self,
        key: ClientKey | ServerKey,
        machine: Machine,
        request: Request,
        peer: object,
        reliable: bool,
        legacy_base: ServerKey | None = None,
    ) -> None:
        self.key = key
        self.machine = machine
        self.state = machine.initial
        # A server transaction lets go of its request once it sent a final response
        # (None from then on; RFC 2543 ones keep it for matching): a proxy or registrar
        # holds thousands in Completed for Timer J's 32 s, and the parsed request was
        # most of each one's memory. Retransmissions get `response_data`.
        self.request: Request | None = request
        self.peer = peer  # client: the target; server: the source the request came from
        self.reliable = reliable
        self.legacy_base = legacy_base  # server, RFC 2543 matching: the key a response gives
        self.timers: dict[Timer, float] = {}  # armed timer -> deadline
        self.interval = 0.0  # current interval of the retransmission timer (A, E or G)
        self.data = b""  # client: the request as sent
        self.ack_data: bytes | None = None  # INVITE client: the ACK for a non-2xx final
        self.response_data: bytes | None = None  # server: the last response sent
        self.response_to_tag: str | None = None  # server, RFC 2543 matching only
        self.cancel_pending = False  # INVITE client: CANCEL waits for a provisional (§9.1)
        self.cancel_reason: str | None = None  # the CANCEL's Reason header (RFC 3326)

    def __repr__(self) -> str:
        return f"<Transaction {self.machine.name} {self.key} {self.state.name}>"
