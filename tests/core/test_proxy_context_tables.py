"""The proxy context's table as data: every (state, input) pair, driven through the
context, moves to the state the table names (or on, through a *_DONE input it feeds
itself), never raises, and keeps the invariants; random input sequences too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from proxy_helpers import Recorder, response

from sipline.core.proxy import (
    TABLE,
    Action,
    CancelBranch,
    ProxyContext,
    Relay,
    Respond,
    SendResponse,
    better,
)
from sipline.core.proxy.context import _STEPS
from sipline.core.proxy.tables import ENTRIES, Input, State, Step

STATUS = {
    Input.RECV_100: 100,
    Input.RECV_1XX: 180,
    Input.RECV_2XX: 200,
    Input.RECV_3XX_5XX: 486,
    Input.RECV_6XX: 603,
}
DONE = (Input.GROUP_DONE, Input.STEP_DONE, Input.ALL_DONE)


def is_final_upstream(action: Action[str]) -> bool:
    if isinstance(action, Relay):
        return not action.stateless and action.response.status >= 200
    return isinstance(action, Respond | SendResponse)


def check(rec: Recorder) -> None:
    """The invariants that hold after every input."""
    ctx = rec.ctx
    assert ctx.state in State
    finals = sum(1 for a in rec.actions if is_final_upstream(a))
    assert finals == (1 if ctx.state is State.COMPLETED else 0), (ctx.state, finals)
    if not ctx.invite:
        assert not any(isinstance(a, CancelBranch) for a in rec.actions)  # §9.1
    for b in ctx.branches:
        if b.final is not None:
            assert b.timer_c_at is None
        if not ctx.invite:
            assert b.timer_c_at is None
    if ctx.state is State.WAITING:
        assert not ctx.pending and ctx.step_at is None
    if ctx.state is State.PROCEEDING:
        assert ctx.pending
    if ctx.state is State.COMPLETED:
        assert ctx.step_at is None
    deadline = ctx.next_deadline()
    if deadline is not None:
        assert any(
            at is not None and at <= deadline + 1e-9
            for at in [ctx.step_at, *(b.timer_c_at for b in ctx.branches)]
            + [b.hop_at for b in ctx.branches]
        )


def new(*, stepped: bool, invite: bool = True) -> Recorder:
    groups = [] if stepped else [["a", "b"], ["c"]]
    ctx: ProxyContext[str] = ProxyContext(
        invite=invite, timer_c_s=180.0, groups=groups, stepped=stepped
    )
    return Recorder(ctx, "INVITE" if invite else "MESSAGE")


def to_proceeding(rec: Recorder, now: float) -> None:
    if rec.ctx.stepped:
        rec.at(
            now,
            "fork",
            lambda: rec.ctx.fork(["a", "b"], timeout_s=10.0, hop_timeout_s=5.0, now=now),
        )
    else:
        rec.at(now, "start", lambda: rec.ctx.start(now=now))


def to_cancelling(rec: Recorder) -> None:
    to_proceeding(rec, 0.0)
    rec.at(0.1, "CANCEL", lambda: rec.ctx.cancel(now=0.1))


def to_completed(rec: Recorder) -> None:
    to_proceeding(rec, 0.0)
    rec.recv(0.1, 0, 200)


PATHS: dict[State, Callable[[Recorder], None]] = {
    State.WAITING: lambda rec: None,
    State.PROCEEDING: lambda rec: to_proceeding(rec, 0.0),
    State.CANCELLING: to_cancelling,
    State.COMPLETED: to_completed,
}


def feed(rec: Recorder, inp: Input, now: float) -> None:
    """Deliver `inp` the way the server's driver would (a timer: as if it fired)."""
    ctx = rec.ctx
    if inp in STATUS:
        if not ctx.branches:
            return
        pending = [b.index for b in ctx.branches if b.final is None]
        rec.recv(now, pending[0] if pending else 0, STATUS[inp])
    elif inp is Input.START:
        rec.at(now, "start", lambda: ctx.start(now=now))
    elif inp is Input.FORK:
        rec.at(now, "fork", lambda: ctx.fork(["x"], timeout_s=3.0, now=now))
    elif inp is Input.CANCEL:
        rec.at(now, "CANCEL", lambda: ctx.cancel(now=now))
    elif inp is Input.REJECT:
        rec.at(now, "reject", lambda: ctx.reject(486, now=now))
    elif inp is Input.EXHAUSTED:
        rec.at(now, "exhausted", lambda: ctx.exhausted(480, now=now))
    elif inp in (Input.TIMER_C, Input.HOP_TIMER):
        if not ctx.branches:
            return
        branch = ctx.branches[0]
        rec.at(now, inp.name, lambda: ctx._run(inp, now, branch))
    elif inp is Input.STEP_TIMER:
        rec.at(now, inp.name, lambda: ctx._run(inp, now))
    else:
        # The context's own inputs: fed (by CHECK_DONE) only when no branch is pending;
        # in PROCEEDING and CANCELLING the last final response of a branch feeds them.
        assert inp in DONE
        if not ctx.pending:
            rec.at(now, inp.name, lambda: ctx._run(inp, now))


def test_table_is_total_and_well_formed() -> None:
    assert set(TABLE) == {(s, i) for s in State for i in Input}
    for (state, inp), (steps, nxt) in TABLE.items():
        if state is State.COMPLETED:
            assert nxt is State.COMPLETED  # a final response went: no way back
        if Step.SEND_BEST in steps or Step.ANSWER in steps or Step.ACCEPT_2XX in steps:
            assert nxt is State.COMPLETED and state is not State.COMPLETED
        if inp in DONE and steps:
            assert state in (State.PROCEEDING, State.CANCELLING)
    assert set(_STEPS) == set(Step)  # every step of the table is carried out
    # Every state is reached from WAITING by some entry.
    reached = {State.WAITING} | {nxt for (_, nxt) in ENTRIES.values()}
    assert reached == set(State)


# A pair is exercised unless delivering it needs a branch the path does not have.
PAIRS = [(s, i) for s in State for i in Input]


@pytest.mark.parametrize("stepped", [False, True], ids=["groups", "steps"])
@pytest.mark.parametrize("invite", [True, False], ids=["invite", "non-invite"])
@pytest.mark.parametrize(("state", "inp"), PAIRS, ids=lambda p: getattr(p, "name", str(p)))
def test_every_state_input_pair(state: State, inp: Input, stepped: bool, invite: bool) -> None:
    rec = new(stepped=stepped, invite=invite)
    PATHS[state](rec)
    assert rec.ctx.state is state
    check(rec)
    _, nxt = TABLE[state, inp]
    feed(rec, inp, 1.0)
    check(rec)
    if not rec.ctx.branches and inp in (*STATUS, Input.TIMER_C, Input.HOP_TIMER):
        return  # no branch to deliver it to
    if inp in DONE and state in (State.PROCEEDING, State.CANCELLING):
        return  # not delivered: branches are pending
    after = rec.ctx.state
    if after is nxt:
        return
    # CHECK_DONE (or a GiveUp coming back) moved it on: only through a *_DONE entry, or
    # the branch's made-up final response.
    assert state is not State.COMPLETED
    onward = {TABLE[nxt, d][1] for d in DONE} | {
        TABLE[nxt, i][1] for i in (Input.RECV_3XX_5XX, Input.RECV_2XX)
    }
    assert after in onward | {TABLE[s, d][1] for s in onward for d in DONE}, (state, inp, after)


OPS = st.one_of(
    st.tuples(
        st.just("recv"), st.integers(0, 4), st.sampled_from([100, 180, 200, 401, 486, 503, 603])
    ),
    st.tuples(st.just("time"), st.floats(0.0, 60.0), st.just(0)),
    st.tuples(st.sampled_from(["cancel", "fork", "exhausted", "reject"]), st.just(0), st.just(0)),
)


@given(
    ops=st.lists(OPS, max_size=30),
    stepped=st.booleans(),
    invite=st.booleans(),
)
def test_random_input_sequences(
    ops: list[tuple[str, float, int]], stepped: bool, invite: bool
) -> None:
    rec = new(stepped=stepped, invite=invite)
    ctx = rec.ctx
    now = 0.0
    to_proceeding(rec, now)
    for kind, arg, status in ops:
        now += 0.01
        before = ctx.state
        if kind == "recv":
            branch = int(arg) % len(ctx.branches) if ctx.branches else None
            if branch is not None:
                rec.recv(now, branch, status)
        elif kind == "time":
            now += arg
            rec.timers_until(now)
        elif kind == "cancel":
            rec.at(now, "CANCEL", lambda now=now: ctx.cancel(now=now))
        elif kind == "fork" and stepped:
            rec.at(
                now,
                "fork",
                lambda now=now: ctx.fork(["x", "y"], timeout_s=20.0, hop_timeout_s=2.0, now=now),
            )
        elif kind == "exhausted":
            rec.at(now, "exhausted", lambda now=now: ctx.exhausted(480, now=now))
        elif kind == "reject":
            rec.at(now, "reject", lambda now=now: ctx.reject(403, now=now))
        check(rec)
        if before is State.COMPLETED:
            assert ctx.state is State.COMPLETED
    # Every branch ends; then nothing is left to do: a final went upstream, no timer.
    while ctx.pending:
        for b in [b for b in ctx.branches if b.final is None]:
            rec.recv(now, b.index, 487)
        check(rec)
    if ctx.state is State.WAITING:
        rec.at(now, "exhausted", lambda: ctx.exhausted(480, now=now))
    check(rec)
    assert ctx.state is State.COMPLETED
    assert ctx.next_deadline() is None


@pytest.mark.parametrize(
    ("stepped", "groups", "cancel", "expected", "last_action"),
    [
        (False, [["a"], ["b"]], False, State.PROCEEDING, "Fork 1 b"),  # GROUP_DONE
        (False, [["a"]], False, State.COMPLETED, "Relay 486"),  # ALL_DONE
        (True, [], False, State.WAITING, "StepEnded 486"),  # STEP_DONE
        (False, [["a"], ["b"]], True, State.COMPLETED, "Relay 486"),  # CANCELLING, ALL_DONE
        (True, [], True, State.COMPLETED, "Relay 486"),  # CANCELLING, ALL_DONE
    ],
)
def test_the_last_final_response_feeds_the_done_input(
    stepped: bool, groups: list[list[str]], cancel: bool, expected: State, last_action: str
) -> None:
    ctx: ProxyContext[str] = ProxyContext(
        invite=True, timer_c_s=180.0, groups=groups, stepped=stepped
    )
    rec = Recorder(ctx)
    if stepped:
        rec.at(0.0, "fork", lambda: ctx.fork(["a"], now=0.0))
    else:
        rec.at(0.0, "start", lambda: ctx.start(now=0.0))
    if cancel:
        rec.at(0.5, "CANCEL", lambda: ctx.cancel(now=0.5))
    rec.recv(1.0, 0, 486)
    assert ctx.state is expected
    assert rec.rows[-1][2][-1] == last_action
    check(rec)


def test_the_response_helpers_pick_as_section_16_7_says() -> None:
    assert better(response(603), response(200))  # 6xx first (§16.7 step 6)
    assert not better(response(486), response(600))
    assert better(response(407), response(404))  # a challenge the caller can act on
    assert not better(response(404), response(401))
    assert better(response(302), response(486))  # the lowest class
    assert better(response(404), response(480))
