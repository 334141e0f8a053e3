"""Non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).

Trying: retransmitted requests are absorbed (nothing to answer with yet). Proceeding:
they get the last provisional again. Completed: they get the final again, until
Timer J ends the transaction.
"""

from __future__ import annotations

from sipline.core.timers import Timer
from sipline.core.transaction.tables import Action, Entry, Input, Machine, State, make_machine

__all__ = ["SERVER_NON_INVITE"]

_R, _P, _X, _T = State.TRYING, State.PROCEEDING, State.COMPLETED, State.TERMINATED
_SEND = Action.SEND_RESPONSE

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {}
for _s in (_R, _P):
    _ENTRIES[_s, Input.SEND_1XX] = ((_SEND,), _P)
    _ENTRIES[_s, Input.SEND_2XX] = ((_SEND, Timer.J), _X)
    _ENTRIES[_s, Input.SEND_3XX_6XX] = ((_SEND, Timer.J), _X)
    _ENTRIES[_s, Input.TRANSPORT_ERROR] = ((Action.TRANSPORT_FAILED,), _T)
_ENTRIES[_P, Input.RECV_REQUEST] = ((Action.RESEND_RESPONSE,), _P)
_ENTRIES[_X, Input.RECV_REQUEST] = ((Action.RESEND_RESPONSE,), _X)
_ENTRIES[_X, Input.TRANSPORT_ERROR] = ((Action.TRANSPORT_FAILED,), _T)
_ENTRIES[_X, Timer.J] = ((), _T)

SERVER_NON_INVITE: Machine = make_machine(
    "non-INVITE server",
    _R,
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
        _R: frozenset(),
        _P: frozenset(),
        _X: frozenset({Timer.J}),
        _T: frozenset(),
    },
)
