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

_CALLING, _PROCEEDING, _COMPLETED, _ACCEPTED, _TERMINATED = (
    State.CALLING,
    State.PROCEEDING,
    State.COMPLETED,
    State.ACCEPTED,
    State.TERMINATED,
)
_UP = Action.PASS_UP

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {
    (_CALLING, Timer.A): ((Action.SEND_REQUEST, Timer.A), _CALLING),
    (_CALLING, Timer.B): ((Action.TIMED_OUT,), _TERMINATED),
    (_CALLING, Input.RECV_1XX): ((_UP,), _PROCEEDING),
    (_CALLING, Input.RECV_2XX): ((_UP, Timer.M), _ACCEPTED),
    (_CALLING, Input.RECV_3XX_6XX): ((Action.SEND_ACK, _UP, Timer.D), _COMPLETED),
    (_CALLING, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _TERMINATED),
    # §17.1.1.2: no retransmissions and no Timer B once a provisional arrived.
    (_PROCEEDING, Input.RECV_1XX): ((_UP,), _PROCEEDING),
    (_PROCEEDING, Input.RECV_2XX): ((_UP, Timer.M), _ACCEPTED),
    (_PROCEEDING, Input.RECV_3XX_6XX): ((Action.SEND_ACK, _UP, Timer.D), _COMPLETED),
    (_PROCEEDING, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _TERMINATED),
    # Retransmitted final: ACK again, do not pass up.
    (_COMPLETED, Input.RECV_3XX_6XX): ((Action.SEND_ACK,), _COMPLETED),
    (_COMPLETED, Timer.D): ((), _TERMINATED),
    # §17.1.1.2: an ACK that cannot be sent ends the transaction; the TU has its answer.
    (_COMPLETED, Input.TRANSPORT_ERROR): ((), _TERMINATED),
    (_ACCEPTED, Input.RECV_2XX): ((_UP,), _ACCEPTED),
    (_ACCEPTED, Timer.M): ((), _TERMINATED),
}

CLIENT_INVITE: Machine = make_machine(
    "INVITE client",
    _CALLING,
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
        _CALLING: frozenset({Timer.A, Timer.B}),
        _PROCEEDING: frozenset(),
        _COMPLETED: frozenset({Timer.D}),
        _ACCEPTED: frozenset({Timer.M}),
        _TERMINATED: frozenset(),
    },
)
