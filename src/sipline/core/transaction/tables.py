"""The vocabulary of the transaction state tables (h2 style: data, not code).

Each machine maps `(state, input) -> (actions, next state)`. Inputs are messages
arriving from the wire, responses the TU hands down, transport errors and timers
firing (a `Timer` member is both an input, "this timer fired", and an action, "arm
this timer"). The table is total: pairs a machine does not name are filled in as
"absorb, stay" (or "reject" for a response the TU may not send in that state), so a
step can never fail. Which timers may be armed in each state is data too; the layer
cancels every other timer on a transition, so none is ever left stale.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sipline.core.timers import Timer

__all__ = ["Action", "Entry", "Input", "Machine", "State", "Step", "make_machine"]


class State(enum.Enum):
    """RFC 3261 §17 state names (ACCEPTED from RFC 6026)."""

    # Members are singletons compared by identity; the C-level identity hash keeps the
    # table and timer lookups of every message off Enum's Python-level __hash__.
    __hash__ = object.__hash__

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Input(enum.Enum):
    __hash__ = object.__hash__

    RECV_1XX = "1xx received"
    RECV_2XX = "2xx received"
    RECV_3XX_6XX = "300-699 received"
    SEND_1XX = "1xx from TU"
    SEND_2XX = "2xx from TU"
    SEND_3XX_6XX = "300-699 from TU"
    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    TRANSPORT_ERROR = "transport error"


class Action(enum.Enum):
    __hash__ = object.__hash__

    SEND_REQUEST = "send the request (again)"
    SEND_ACK = "send the ACK for a non-2xx final response (again)"
    SEND_RESPONSE = "send the response from the TU, remember it"
    RESEND_RESPONSE = "send the last response again"
    SEND_TRYING = "send 100 Trying"
    STOP_TRYING = "disarm the 100 Trying timer"
    PASS_UP = "pass the message to the TU"
    TIMED_OUT = "report a timeout to the TU"
    TRANSPORT_FAILED = "report a transport failure to the TU"
    REJECT = "refuse the TU's response (LocalProtocolError)"


Step = Action | Timer
Entry = tuple[tuple[Step, ...], State]


@dataclass(frozen=True, slots=True, eq=False)  # identity: each machine is a singleton
class Machine:
    name: str
    initial: State
    start: tuple[Step, ...]  # actions on creation
    states: tuple[State, ...]
    inputs: tuple[Input | Timer, ...]
    table: Mapping[tuple[State, Input | Timer], Entry]
    timers: Mapping[State, frozenset[Timer]]  # the timers that may be armed in each state

    def transition(self, state: State, inp: Input | Timer) -> Entry:
        return self.table[state, inp]


_TU_INPUTS = (Input.SEND_1XX, Input.SEND_2XX, Input.SEND_3XX_6XX)
_REJECT: tuple[Step, ...] = (Action.REJECT,)


def make_machine(
    name: str,
    initial: State,
    start: tuple[Step, ...],
    inputs: tuple[Input | Timer, ...],
    entries: dict[tuple[State, Input | Timer], Entry],
    timers: dict[State, frozenset[Timer]],
) -> Machine:
    """Complete `entries` into a total table over `timers`' states × `inputs`."""
    states = tuple(timers)
    table: dict[tuple[State, Input | Timer], Entry] = {}
    for state in states:
        for inp in inputs:
            entry = entries.get((state, inp))
            if entry is None:
                entry = (_REJECT if inp in _TU_INPUTS else (), state)
            table[state, inp] = entry
    unknown = set(entries) - set(table)
    if unknown:
        raise ValueError(f"{name}: entries outside the machine: {unknown}")
    return Machine(name, initial, start, states, inputs, table, timers)
