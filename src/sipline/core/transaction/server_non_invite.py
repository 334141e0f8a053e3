"""Non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

Trying: retransmitted requests are absorbed (nothing to answer with yet). Proceeding:
they get the last provisional again. Completed: they get the final again, until
Timer J ends the transaction.
"""

from __future__ import annotations

from sipline.core.timers import Timer
from sipline.core.transaction.tables import Action, Entry, Input, Machine, State, make_machine

__all__ = ["SERVER_NON_INVITE"]

_TRYING, _PROCEEDING, _COMPLETED, _TERMINATED = (
    State.TRYING,
    State.PROCEEDING,
    State.COMPLETED,
    State.TERMINATED,
)
_SEND = Action.SEND_RESPONSE

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {}
for _s in (_TRYING, _PROCEEDING):
    _ENTRIES[_s, Input.SEND_1XX] = ((_SEND,), _PROCEEDING)
    _ENTRIES[_s, Input.SEND_2XX] = ((_SEND, Timer.J), _COMPLETED)
    _ENTRIES[_s, Input.SEND_3XX_6XX] = ((_SEND, Timer.J), _COMPLETED)
    _ENTRIES[_s, Input.TRANSPORT_ERROR] = ((Action.TRANSPORT_FAILED,), _TERMINATED)
_ENTRIES[_PROCEEDING, Input.RECV_REQUEST] = ((Action.RESEND_RESPONSE,), _PROCEEDING)
_ENTRIES[_COMPLETED, Input.RECV_REQUEST] = ((Action.RESEND_RESPONSE,), _COMPLETED)
_ENTRIES[_COMPLETED, Input.TRANSPORT_ERROR] = ((Action.TRANSPORT_FAILED,), _TERMINATED)
_ENTRIES[_COMPLETED, Timer.J] = ((), _TERMINATED)

SERVER_NON_INVITE: Machine = make_machine(
    "non-INVITE server",
    _TRYING,
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
        _TRYING: frozenset(),
        _PROCEEDING: frozenset(),
        _COMPLETED: frozenset({Timer.J}),
        _TERMINATED: frozenset(),
    },
)
