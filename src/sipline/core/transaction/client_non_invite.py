"""Non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).

Timer E retransmits (unreliable transports only), doubling up to T2; once a
provisional response arrived it stays at T2 (§17.1.2.2; the layer reads the state).
Timer F gives up. After a final response, Timer K absorbs its retransmissions.
"""

from __future__ import annotations

from sipline.core.timers import Timer
from sipline.core.transaction.tables import Action, Entry, Input, Machine, State, make_machine

__all__ = ["CLIENT_NON_INVITE"]

_UP = Action.PASS_UP

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {}
for _s in (State.TRYING, State.PROCEEDING):
    _ENTRIES[_s, Timer.E] = ((Action.SEND_REQUEST, Timer.E), _s)
    _ENTRIES[_s, Timer.F] = ((Action.TIMED_OUT,), State.TERMINATED)
    _ENTRIES[_s, Input.RECV_1XX] = ((_UP,), State.PROCEEDING)
    _ENTRIES[_s, Input.RECV_2XX] = ((_UP, Timer.K), State.COMPLETED)
    _ENTRIES[_s, Input.RECV_3XX_6XX] = ((_UP, Timer.K), State.COMPLETED)
    _ENTRIES[_s, Input.TRANSPORT_ERROR] = ((Action.TRANSPORT_FAILED,), State.TERMINATED)
# Completed: final-response retransmissions are absorbed (the default) until K fires.
_ENTRIES[State.COMPLETED, Timer.K] = ((), State.TERMINATED)

CLIENT_NON_INVITE: Machine = make_machine(
    "non-INVITE client",
    State.TRYING,
    (Action.SEND_REQUEST, Timer.E, Timer.F),
    (
        Input.RECV_1XX,
        Input.RECV_2XX,
        Input.RECV_3XX_6XX,
        Input.TRANSPORT_ERROR,
        Timer.E,
        Timer.F,
        Timer.K,
    ),
    _ENTRIES,
    {
        State.TRYING: frozenset({Timer.E, Timer.F}),
        State.PROCEEDING: frozenset({Timer.E, Timer.F}),
        State.COMPLETED: frozenset({Timer.K}),
        State.TERMINATED: frozenset(),
    },
)
