"""INVITE server transaction (RFC 3261 §17.2.1, Figure 7, as updated by RFC 6026 §7.1).

Proceeding: a 100 Trying goes out by itself if the TU has not answered within 200 ms;
a retransmitted INVITE gets the last provisional again. A non-2xx final moves to
Completed, where Timer G retransmits it (unreliable only) and Timer H waits for the
ACK; the ACK moves to Confirmed, where Timer I absorbs ACK retransmissions. A 2xx
moves to Accepted (RFC 6026): the TU's 2xx retransmissions pass through, an ACK that
matches is handed to the TU (not absorbed), INVITE retransmissions are absorbed, and
Timer L ends it.
"""

from __future__ import annotations

from sipline.core.timers import Timer
from sipline.core.transaction.tables import Action, Entry, Input, Machine, State, make_machine

__all__ = ["SERVER_INVITE"]

_PROCEEDING, _COMPLETED, _CONFIRMED, _ACCEPTED, _TERMINATED = (
    State.PROCEEDING,
    State.COMPLETED,
    State.CONFIRMED,
    State.ACCEPTED,
    State.TERMINATED,
)
_SEND = Action.SEND_RESPONSE
_RESEND = Action.RESEND_RESPONSE

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {
    (_PROCEEDING, Timer.TRYING): ((Action.SEND_TRYING,), _PROCEEDING),
    (_PROCEEDING, Input.SEND_1XX): ((Action.STOP_TRYING, _SEND), _PROCEEDING),
    (_PROCEEDING, Input.SEND_2XX): ((_SEND, Timer.L), _ACCEPTED),
    (_PROCEEDING, Input.SEND_3XX_6XX): ((_SEND, Timer.G, Timer.H), _COMPLETED),
    (_PROCEEDING, Input.RECV_REQUEST): ((_RESEND,), _PROCEEDING),
    (_PROCEEDING, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _TERMINATED),
    (_COMPLETED, Timer.G): ((_RESEND, Timer.G), _COMPLETED),
    (_COMPLETED, Timer.H): ((Action.TIMED_OUT,), _TERMINATED),
    (_COMPLETED, Input.RECV_REQUEST): ((_RESEND,), _COMPLETED),
    (_COMPLETED, Input.RECV_ACK): ((Timer.I,), _CONFIRMED),
    (_COMPLETED, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _TERMINATED),
    # Confirmed: ACK and INVITE retransmissions are absorbed (the default).
    (_CONFIRMED, Timer.I): ((), _TERMINATED),
    (_ACCEPTED, Input.SEND_2XX): ((_SEND,), _ACCEPTED),
    (_ACCEPTED, Input.RECV_ACK): ((Action.PASS_UP,), _ACCEPTED),
    # The TU is retransmitting the 2xx itself (§13.3.1.4): tell it, and let Timer L end
    # the transaction so a late INVITE retransmission is still recognised.
    (_ACCEPTED, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _ACCEPTED),
    (_ACCEPTED, Timer.L): ((), _TERMINATED),
}

SERVER_INVITE: Machine = make_machine(
    "INVITE server",
    _PROCEEDING,
    (Timer.TRYING,),
    (
        Input.SEND_1XX,
        Input.SEND_2XX,
        Input.SEND_3XX_6XX,
        Input.RECV_REQUEST,
        Input.RECV_ACK,
        Input.TRANSPORT_ERROR,
        Timer.TRYING,
        Timer.G,
        Timer.H,
        Timer.I,
        Timer.L,
    ),
    _ENTRIES,
    {
        _PROCEEDING: frozenset({Timer.TRYING}),
        _COMPLETED: frozenset({Timer.G, Timer.H}),
        _CONFIRMED: frozenset({Timer.I}),
        _ACCEPTED: frozenset({Timer.L}),
        _TERMINATED: frozenset(),
    },
)
