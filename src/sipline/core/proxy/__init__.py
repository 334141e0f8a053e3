"""The proxy's RFC 3261 §16 rules, sans-I/O: one `ProxyContext` per proxied request.

It forks (§16.6), chooses the best response (§16.7), handles CANCEL (§16.10) and runs
Timer C, a routing step's timeout and a branch's hop timeout on the `now` it is given;
its table is in `tables`. `sipline.server.proxy` looks targets up, sends what the
context asks for, and feeds back responses and the time. Imports only `sipline.core`.

Imported by `sipline.server.proxy` only.
"""

from sipline.core.proxy.actions import (
    Action,
    CancelBranch,
    Fork,
    GiveUp,
    HangUp,
    Relay,
    Respond,
    SendResponse,
    StepEnded,
)
from sipline.core.proxy.context import Branch, ProxyContext
from sipline.core.proxy.responses import ANSWERED_ELSEWHERE, better, strip_top_via
from sipline.core.proxy.tables import TABLE, Input, State, Step

__all__ = [
    "ANSWERED_ELSEWHERE",
    "TABLE",
    "Action",
    "Branch",
    "CancelBranch",
    "Fork",
    "GiveUp",
    "HangUp",
    "Input",
    "ProxyContext",
    "Relay",
    "Respond",
    "SendResponse",
    "State",
    "Step",
    "StepEnded",
    "better",
    "strip_top_via",
]
