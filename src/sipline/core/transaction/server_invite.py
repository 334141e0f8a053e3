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

_SEND = Action.SEND_RESPONSE
_RESEND = Action.RESEND_RESPONSE

_ENTRIES: dict[tuple[State, Input | Timer], Entry] = {
    (State.PROCEEDING, Timer.TRYING): ((Action.SEND_TRYING,), State.PROCEEDING),
    (State.PROCEEDING, Input.SEND_1XX): ((Action.STOP_TRYING, _SEND), State.PROCEEDING),
    (State.PROCEEDING, Input.SEND_2XX): ((_SEND, Timer.L), State.ACCEPTED),
    (State.PROCEEDING, Input.SEND_3XX_6XX): ((_SEND, Timer.G, Timer.H), State.COMPLETED),
    (State.PROCEEDING, Input.RECV_REQUEST): ((_RESEND,), State.PROCEEDING),
    (State.PROCEEDING, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), State.TERMINATED),
    (State.COMPLETED, Timer.G): ((_RESEND, Timer.G), State.COMPLETED),
    (State.COMPLETED, Timer.H): ((Action.TIMED_OUT,), State.TERMINATED),
    (State.COMPLETED, Input.RECV_REQUEST): ((_RESEND,), State.COMPLETED),
    (State.COMPLETED, Input.RECV_ACK): ((Timer.I,), State.CONFIRMED),
    (State.COMPLETED, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), State.TERMINATED),
    # Confirmed: ACK and INVITE retransmissions are absorbed (the default).
    (State.CONFIRMED, Timer.I): ((), State.TERMINATED),
    (State.ACCEPTED, Input.SEND_2XX): ((_SEND,), State.ACCEPTED),
    (State.ACCEPTED, Input.RECV_ACK): ((Action.PASS_UP,), State.ACCEPTED),
    # The TU is retransmitting the 2xx itself (§13.3.1.4): tell it, and let Timer L end
    # the transaction so a late INVITE retransmission is still recognised.
    (State.ACCEPTED, Input.TRANSPORT_ERROR): ((Action.TRANSPORT_FAILED,), State.ACCEPTED),
    (State.ACCEPTED, Timer.L): ((), State.TERMINATED),
}

SERVER_INVITE: Machine = make_machine(
    "INVITE server",
    State.PROCEEDING,
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
        State.PROCEEDING: frozenset({Timer.TRYING}),
        State.COMPLETED: frozenset({Timer.G, Timer.H}),
        State.CONFIRMED: frozenset({Timer.I}),
        State.ACCEPTED: frozenset({Timer.L}),
        State.TERMINATED: frozenset(),
    },
)
