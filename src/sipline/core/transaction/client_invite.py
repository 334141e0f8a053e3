"""INVITE client transaction (RFC 3261 §17.1.1, Figure 5, as updated by RFC 6026 §7.2).

Calling: Timer A retransmits (unreliable transports only), Timer B gives up.
A non-2xx final response is ACKed here, hop by hop (§17.1.1.3), and each
retransmission of it gets the same ACK again while Timer D runs. A 2xx moves to
Accepted (RFC 6026): further 2xx responses (retransmissions, other forks) go up to the
TU, which ACKs them itself (§13.2.2.4), until Timer M fires.
"""

from __future__ import annotations

from sipline.core.timers import Timer
from sipline.core.transaction.tables import Action, Entry, Input, Machine, State, make_machine

__all__ = ["CLIENT_INVITE"]

_C, _P, _X, _A, _T = (
    State.CALLING,
    State.PROCEEDING,
    State.COMPLETED,
    State.ACCEPTED,
    State.TERMINATED,
)
_UP = Action.PASS_UP

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {
    (_C, Timer.A): ((Action.SEND_REQUEST, Timer.A), _C),
    (_C, Timer.B): ((Action.TIMED_OUT,), _T),
    (_C, Input.RECV_1XX): ((_UP,), _P),
    (_C, Input.RECV_2XX): ((_UP, Timer.M), _A),
    (_C, Input.RECV_3XX_6XX): ((Action.SEND_ACK, _UP, Timer.D), _X),
    (_C, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _T),
    # §17.1.1.2: no retransmissions and no Timer B once a provisional arrived.
    (_P, Input.RECV_1XX): ((_UP,), _P),
    (_P, Input.RECV_2XX): ((_UP, Timer.M), _A),
    (_P, Input.RECV_3XX_6XX): ((Action.SEND_ACK, _UP, Timer.D), _X),
    (_P, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _T),
    # Retransmitted final: ACK again, do not pass up.
    (_X, Input.RECV_3XX_6XX): ((Action.SEND_ACK,), _X),
    (_X, Timer.D): ((), _T),
    # §17.1.1.2: an ACK that cannot be sent ends the transaction; the TU has its answer.
    (_X, Input.TRANSPORT_ERROR): ((), _T),
    (_A, Input.RECV_2XX): ((_UP,), _A),
    (_A, Timer.M): ((), _T),
}

CLIENT_INVITE: Machine = make_machine(
    "INVITE client",
    _C,
    (Action.SEND_REQUEST, Timer.A, Timer.B),
    (
        Input.RECV_1XX,
        Input.RECV_2XX,
        Input.RECV_3XX_6XX,
        Input.TRANSPORT_ERROR,
        Timer.A,
        Timer.B,
        Timer.D,
        Timer.M,
    ),
    _ENTRIES,
    {
        _C: frozenset({Timer.A, Timer.B}),
        _P: frozenset(),
        _X: frozenset({Timer.D}),
        _A: frozenset({Timer.M}),
        _T: frozenset(),
    },
)
