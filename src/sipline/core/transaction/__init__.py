"""RFC 3261 §17 transactions (with RFC 6026's Accepted state), sans-I/O.

`TransactionLayer` is the entry point; the machines are data in `client_invite`,
`client_non_invite`, `server_invite` and `server_non_invite`; the events it hands up
are in `events`, the keys messages are matched by in `matching`.

Imports only `sipline.core`; driven by the runtime (`sipline.runtime.endpoint`, its
handles and admission).
"""

from sipline.core.transaction.layer import TransactionLayer
from sipline.core.transaction.matching import ClientKey, ServerKey
from sipline.core.transaction.records import LayerStats, Outgoing, Transaction
from sipline.core.transaction.requests import build_ack, build_cancel
from sipline.core.transaction.tables import Action, Input, Machine, State

__all__ = [
    "Action",
    "ClientKey",
    "Input",
    "LayerStats",
    "Machine",
    "Outgoing",
    "ServerKey",
    "State",
    "Transaction",
    "TransactionLayer",
    "build_ack",
    "build_cancel",
]
