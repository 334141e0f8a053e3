"""The UAS side of an INVITE's 2xx: retransmit it until the ACK (RFC 3261 §13.3.1.4).

The INVITE server transaction ends (RFC 6026: moves to Accepted) when the 2xx goes
out, so the transaction user keeps the 2xx alive itself: "the 2xx response is passed
to the transport with an interval that starts at T1 seconds and doubles for each
retransmission until it reaches T2 seconds" (over an unreliable transport only), and
"if the server retransmits the 2xx response for 64*T1 seconds without receiving an
ACK, the dialog is confirmed, but the session SHOULD be terminated" (with a BYE).

`AnswerRetransmission` is one such 2xx, sans-I/O like `sipline.core.transaction`: it
takes inputs with `now`, returns actions, and exposes `next_deadline()` and
`handle_timers(now=)`; its transitions are a table keyed by (state, input). Each
retransmission deadline is computed from the one that fired, so a late wake-up does
not shift the schedule.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from sipline.core.timers import TimerConfig

__all__ = ["ANSWER_TABLE", "AnswerRetransmission", "UsageAction", "UsageInput", "UsageState"]


class UsageState(enum.Enum):
    __hash__ = object.__hash__

    WAITING_ACK = "waiting for the ACK"
    CONFIRMED = "ACK received"
    GAVE_UP = "no ACK within 64*T1"
    STOPPED = "stopped (the call ended)"


class UsageInput(enum.Enum):
    __hash__ = object.__hash__

    ACK = "ACK received"
    STOP = "the call ended"
    RETRANSMIT = "retransmission timer fired"
    GIVE_UP = "64*T1 timer fired"


class UsageAction(enum.Enum):
    __hash__ = object.__hash__

    RESEND_2XX = "send the 2xx again"
    ARM_RETRANSMIT = "arm the next retransmission (interval doubled, at most T2)"
    PASS_ACK = "hand the ACK to the session (it may carry the SDP answer)"
    END_WITH_BYE = "confirm the dialog and end the session with BYE"


_W, _C, _G, _S = (
    UsageState.WAITING_ACK,
    UsageState.CONFIRMED,
    UsageState.GAVE_UP,
    UsageState.STOPPED,
)
_Entry = tuple[tuple[UsageAction, ...], UsageState]

_ENTRIES: dict[tuple[UsageState, UsageInput], _Entry] = {
    (_W, UsageInput.RETRANSMIT): ((UsageAction.RESEND_2XX, UsageAction.ARM_RETRANSMIT), _W),
    (_W, UsageInput.GIVE_UP): ((UsageAction.END_WITH_BYE,), _G),
    (_W, UsageInput.ACK): ((UsageAction.PASS_ACK,), _C),
    (_W, UsageInput.STOP): ((), _S),
    # Everything else is absorbed: a retransmitted ACK, a stop after the end.
}


ANSWER_TABLE: Mapping[tuple[UsageState, UsageInput], _Entry] = {
    (state, inp): _ENTRIES.get((state, inp), ((), state))
    for state in UsageState
    for inp in UsageInput
}
"""The whole table: pairs not named above absorb the input and stay."""

_FINAL = frozenset({_C, _G, _S})


class AnswerRetransmission:
    """One 2xx to an INVITE, kept alive until its ACK (§13.3.1.4).

    Created when the 2xx is sent at `now`. Over UDP the first retransmission is due
    at now + T1; over a reliable transport there are none. Either way, with no ACK by
    now + 64*T1 it gives up (`END_WITH_BYE`).
    """

    __slots__ = ("_give_up_at", "_interval", "_retransmit_at", "_t2", "reliable", "state")

    def __init__(self, *, reliable: bool, timers: TimerConfig, now: float) -> None:
        self.reliable = reliable
        self.state = _W
        self._t2 = timers.t2
        self._interval = timers.t1
        self._retransmit_at: float | None = None if reliable else now + timers.t1
        self._give_up_at: float | None = now + 64 * timers.t1

    @property
    def finished(self) -> bool:
        return self.state in _FINAL

    def receive_ack(self, *, now: float) -> tuple[UsageAction, ...]:
        return self._step(UsageInput.ACK, now)

    def stop(self, *, now: float) -> tuple[UsageAction, ...]:
        return self._step(UsageInput.STOP, now)

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self._retransmit_at, self._give_up_at) if d is not None]
        return min(deadlines) if deadlines else None

    def handle_timers(self, *, now: float) -> tuple[UsageAction, ...]:
        """Fire what is due at `now`, earliest first (64*T1 wins a tie: no last resend)."""
        actions: list[UsageAction] = []
        while True:
            due = self._due(now)
            if due is None:
                return tuple(actions)
            actions += self._step(due, now)

    def _due(self, now: float) -> UsageInput | None:
        give_up = self._give_up_at
        retransmit = self._retransmit_at
        if give_up is not None and give_up <= now and (retransmit is None or give_up <= retransmit):
            return UsageInput.GIVE_UP
        if self._retransmit_at is not None and self._retransmit_at <= now:
            return UsageInput.RETRANSMIT
        return None

    def _step(self, inp: UsageInput, now: float) -> tuple[UsageAction, ...]:
        fired: float | None = None
        if inp is UsageInput.RETRANSMIT:
            fired, self._retransmit_at = self._retransmit_at, None
        elif inp is UsageInput.GIVE_UP:
            self._give_up_at = None
        actions, self.state = ANSWER_TABLE[self.state, inp]
        if UsageAction.ARM_RETRANSMIT in actions:
            # From the deadline that fired, not from now: a late wake-up catches up.
            self._interval = min(2 * self._interval, self._t2)
            self._retransmit_at = (fired if fired is not None else now) + self._interval
        if self.state in _FINAL:
            self._retransmit_at = self._give_up_at = None
        return actions
