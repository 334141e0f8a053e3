"""The proxy context's state table (RFC 3261 §16.6-§16.10), as data.

One context per proxied request. Its state says whether a final response has gone
upstream and whether branches are ringing; its inputs are the responses of its
branches, the caller's CANCEL, its timers and what the routing policy decides. Each
`(state, input)` maps to the steps the context carries out and its next state. The
table is total: a pair it does not name absorbs the input and stays.

The three `*_DONE` inputs are the context's own: it feeds one to itself when the
last branch of a q-group or routing step has its final response.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = ["ENTRIES", "TABLE", "Entry", "Input", "State", "Step"]


class State(enum.Enum):
    __hash__ = object.__hash__

    # No branch is ringing and no final response went upstream: the targets or the
    # next routing step are being looked up.
    WAITING = "waiting"
    PROCEEDING = "proceeding"  # branches are ringing (§16.6)
    CANCELLING = "cancelling"  # the caller cancelled; the branches are being (§16.10)
    COMPLETED = "completed"  # a final response went upstream; late 2xx still go (§16.7 step 10)


class Input(enum.Enum):
    __hash__ = object.__hash__

    START = "fork the first q-group"
    FORK = "fork a routing step"
    RECV_100 = "100 Trying from a branch"
    RECV_1XX = "101-199 from a branch"
    RECV_2XX = "2xx from a branch"
    RECV_3XX_5XX = "300-599 from a branch"
    RECV_6XX = "6xx from a branch"
    CANCEL = "CANCEL from the caller"
    TIMER_C = "a branch's Timer C fired"
    HOP_TIMER = "a branch's hop timeout fired"
    STEP_TIMER = "the routing step's timeout fired"
    GROUP_DONE = "every branch answered; another q-group waits"
    STEP_DONE = "every branch of the routing step answered; policy decides what next"
    ALL_DONE = "every branch answered; nothing left to try"
    REJECT = "policy: answer with this status now"
    EXHAUSTED = "policy: nothing more to try"


class Step(enum.Enum):
    __hash__ = object.__hash__

    HEARD = "stop the branch's hop timer: its next hop is alive"
    PROVISIONAL = "the branch may be cancelled now (§9.1); push Timer C back (§16.7 step 2)"
    RELAY = "relay the response upstream (§16.7 step 5, 9)"
    ACCEPT_2XX = "relay the 2xx; CANCEL the other branches (§16.7 step 10)"
    LATE_2XX = "a 2xx after the final response: relay it, or end an abandoned branch's"
    RECORD = "record the branch's final response; keep the best (§16.7 step 6, 7)"
    DECLINE = "a 6xx: no new branches; CANCEL the others (§16.7 step 5)"
    CHECK_DONE = "when every branch has its final response, feed a *_DONE input"
    FORK_GROUP = "fork the next q-group (§16.6)"
    FORK_STEP = "fork the routing step's targets"
    ARM_STEP_TIMER = "start the routing step's timeout"
    STOP_STEP_TIMER = "stop the routing step's timeout"
    STEP_ENDED = "report the step's best response: policy decides the next"
    SEND_BEST = "send the best response upstream (§16.7 step 6-8)"
    ANSWER = "answer with the status policy gave"
    CANCEL_ALL = "CANCEL every pending branch; no new ones (§16.10)"
    EXPIRE_TIMER_C = "Timer C: CANCEL the branch, or give it up with 408 (§16.6 step 11)"
    EXPIRE_HOP = "give up a branch that heard nothing within the hop timeout"
    EXPIRE_STEP = "abandon the step's branches: it rang long enough"


Entry = tuple[tuple[Step, ...], State]

_W, _P, _C, _X = State.WAITING, State.PROCEEDING, State.CANCELLING, State.COMPLETED
_RINGING = (_W, _P, _C)  # no final response upstream yet
S = Step

ENTRIES: dict[tuple[State, Input], Entry] = {
    (_W, Input.START): ((S.FORK_GROUP, S.CHECK_DONE), _P),
    (_W, Input.FORK): ((S.FORK_STEP, S.ARM_STEP_TIMER, S.CHECK_DONE), _P),
    (_W, Input.REJECT): ((S.ANSWER,), _X),
    (_W, Input.EXHAUSTED): ((S.SEND_BEST,), _X),
    # §16.10: nothing is ringing, so the answer goes now (487, or the best so far).
    (_W, Input.CANCEL): ((S.CANCEL_ALL, S.SEND_BEST), _X),
    (_P, Input.CANCEL): ((S.CANCEL_ALL,), _C),
    (_C, Input.CANCEL): ((S.CANCEL_ALL,), _C),
    (_X, Input.CANCEL): ((S.CANCEL_ALL,), _X),
    (_P, Input.STEP_TIMER): ((S.EXPIRE_STEP,), _P),
    (_P, Input.GROUP_DONE): ((S.FORK_GROUP, S.CHECK_DONE), _P),
    (_P, Input.STEP_DONE): ((S.STOP_STEP_TIMER, S.STEP_ENDED), _W),
    (_P, Input.ALL_DONE): ((S.STOP_STEP_TIMER, S.SEND_BEST), _X),
    (_C, Input.ALL_DONE): ((S.STOP_STEP_TIMER, S.SEND_BEST), _X),
    (_X, Input.RECV_1XX): ((S.HEARD, S.PROVISIONAL), _X),  # §16.7 step 5: too late
    (_X, Input.RECV_2XX): ((S.HEARD, S.LATE_2XX), _X),
    (_X, Input.RECV_3XX_5XX): ((S.HEARD, S.RECORD), _X),
    (_X, Input.RECV_6XX): ((S.HEARD, S.RECORD, S.DECLINE), _X),
    # A branch of an earlier step answering while the next is looked up.
    (_W, Input.RECV_3XX_5XX): ((S.HEARD, S.RECORD), _W),
    (_W, Input.RECV_6XX): ((S.HEARD, S.RECORD, S.DECLINE), _W),
}
for _s in State:
    ENTRIES[_s, Input.RECV_100] = ((S.HEARD,), _s)  # §16.7 step 5: not forwarded
    ENTRIES[_s, Input.TIMER_C] = ((S.EXPIRE_TIMER_C,), _s)
    ENTRIES[_s, Input.HOP_TIMER] = ((S.EXPIRE_HOP,), _s)
for _s in _RINGING:
    ENTRIES[_s, Input.RECV_1XX] = ((S.HEARD, S.PROVISIONAL, S.RELAY), _s)
    ENTRIES[_s, Input.RECV_2XX] = ((S.HEARD, S.ACCEPT_2XX, S.STOP_STEP_TIMER), _X)
for _s in (_P, _C):
    ENTRIES[_s, Input.RECV_3XX_5XX] = ((S.HEARD, S.RECORD, S.CHECK_DONE), _s)
    ENTRIES[_s, Input.RECV_6XX] = ((S.HEARD, S.RECORD, S.DECLINE, S.CHECK_DONE), _s)


def _complete(entries: Mapping[tuple[State, Input], Entry]) -> dict[tuple[State, Input], Entry]:
    """Every pair the entries leave out absorbs its input and stays."""
    return {(s, i): entries.get((s, i), ((), s)) for s in State for i in Input}


TABLE: Mapping[tuple[State, Input], Entry] = _complete(ENTRIES)
