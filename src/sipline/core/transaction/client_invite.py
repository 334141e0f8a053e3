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

_UP = Action.PASS_UP

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {
    (State.CALLING, Timer.A): ((Action.SEND_REQUEST, Timer.A), State.CALLING),
    (State.CALLING, Timer.B): ((Action.TIMED_OUT,), State.TERMINATED),
    (State.CALLING, Input.RECV_1XX): ((_UP,), State.PROCEEDING),
    (State.CALLING, Input.RECV_2XX): ((_UP, Timer.M), State.ACCEPTED),
    (State.CALLING, Input.RECV_3XX_6XX): ((Action.SEND_ACK, _UP, Timer.D), State.COMPLETED),
    (State.CALLING, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), State.TERMINATED),
    # §17.1.1.2: no retransmissions and no Timer B once a provisional arrived.
    (State.PROCEEDING, Input.RECV_1XX): ((_UP,), State.PROCEEDING),
    (State.PROCEEDING, Input.RECV_2XX): ((_UP, Timer.M), State.ACCEPTED),
    (State.PROCEEDING, Input.RECV_3XX_6XX): ((Action.SEND_ACK, _UP, Timer.D), State.COMPLETED),
    (State.PROCEEDING, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), State.TERMINATED),
    # Retransmitted final: ACK again, do not pass up.
    (State.COMPLETED, Input.RECV_3XX_6XX): ((Action.SEND_ACK,), State.COMPLETED),
    (State.COMPLETED, Timer.D): ((), State.TERMINATED),
    # §17.1.1.2: an ACK that cannot be sent ends the transaction; the TU has its answer.
    (State.COMPLETED, Input.TRANSPORT_ERROR): ((), State.TERMINATED),
    (State.ACCEPTED, Input.RECV_2XX): ((_UP,), State.ACCEPTED),
    (State.ACCEPTED, Timer.M): ((), State.TERMINATED),
}

CLIENT_INVITE: Machine = make_machine(
    "INVITE client",
    State.CALLING,
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
        State.CALLING: frozenset({Timer.A, Timer.B}),
        State.PROCEEDING: frozenset(),
        State.COMPLETED: frozenset({Timer.D}),
        State.ACCEPTED: frozenset({Timer.M}),
        State.TERMINATED: frozenset(),
    },
)
