"""Non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

Trying: retransmitted requests are absorbed (nothing to answer with yet). Proceeding:
they get the last provisional again. Completed: they get the final again, until
Timer J ends the transaction.
"""

from __future__ import annotations

from sipline.core.timers import Timer
from sipline.core.transaction.tables import Action, Entry, Input, Machine, State, make_machine

__all__ = ["SERVER_NON_INVITE"]

_SEND = Action.SEND_RESPONSE

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {}
for _s in (State.TRYING, State.PROCEEDING):
    _ENTRIES[_s, Input.SEND_1XX] = ((_SEND,), State.PROCEEDING)
    _ENTRIES[_s, Input.SEND_2XX] = ((_SEND, Timer.J), State.COMPLETED)
    _ENTRIES[_s, Input.SEND_3XX_6XX] = ((_SEND, Timer.J), State.COMPLETED)
    _ENTRIES[_s, Input.TRANSPORT_ERROR] = ((Action.TRANSPORT_FAILED,), State.TERMINATED)
_ENTRIES[State.PROCEEDING, Input.RECV_REQUEST] = ((Action.RESEND_RESPONSE,), State.PROCEEDING)
_ENTRIES[State.COMPLETED, Input.RECV_REQUEST] = ((Action.RESEND_RESPONSE,), State.COMPLETED)
_ENTRIES[State.COMPLETED, Input.TRANSPORT_ERROR] = ((Action.TRANSPORT_FAILED,), State.TERMINATED)
_ENTRIES[State.COMPLETED, Timer.J] = ((), State.TERMINATED)

SERVER_NON_INVITE: Machine = make_machine(
    "non-INVITE server",
    State.TRYING,
    (),
    (
        Input.SEND_1XX,
        Input.SEND_2XX,
        Input.SEND_3XX_6XX,
        Input.RECV_REQUEST,
        Input.TRANSPORT_ERROR,
        Timer.J,
    ),
    _ENTRIES,
    {
        State.TRYING: frozenset(),
        State.PROCEEDING: frozenset(),
        State.COMPLETED: frozenset({Timer.J}),
        State.TERMINATED: frozenset(),
    },
)
