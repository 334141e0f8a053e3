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

_P, _X, _F, _A, _T = (
    State.PROCEEDING,
    State.COMPLETED,
    State.CONFIRMED,
    State.ACCEPTED,
    State.TERMINATED,
)
_SEND = Action.SEND_RESPONSE
_RESEND = Action.RESEND_RESPONSE

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {
    (_P, Timer.TRYING): ((Action.SEND_TRYING,), _P),
    (_P, Input.SEND_1XX): ((Action.STOP_TRYING, _SEND), _P),
    (_P, Input.SEND_2XX): ((_SEND, Timer.L), _A),
    (_P, Input.SEND_3XX_6XX): ((_SEND, Timer.G, Timer.H), _X),
    (_P, Input.RECV_REQUEST): ((_RESEND,), _P),
    (_P, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _T),
    (_X, Timer.G): ((_RESEND, Timer.G), _X),
    (_X, Timer.H): ((Action.TIMED_OUT,), _T),
    (_X, Input.RECV_REQUEST): ((_RESEND,), _X),
    (_X, Input.RECV_ACK): ((Timer.I,), _F),
    (_X, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _T),
    # Confirmed: ACK and INVITE retransmissions are absorbed (the default).
    (_F, Timer.I): ((), _T),
    (_A, Input.SEND_2XX): ((_SEND,), _A),
    (_A, Input.RECV_ACK): ((Action.PASS_UP,), _A),
    # The TU is retransmitting the 2xx itself (§13.3.1.4): tell it, and let Timer L end
    # the transaction so a late INVITE retransmission is still recognised.
    (_A, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), _A),
    (_A, Timer.L): ((), _T),
}

SERVER_INVITE: Machine = make_machine(
    "INVITE server",
    _P,
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
        _P: frozenset({Timer.TRYING}),
        _X: frozenset({Timer.G, Timer.H}),
        _F: frozenset({Timer.I}),
        _A: frozenset({Timer.L}),
        _T: frozenset(),
    },
)
