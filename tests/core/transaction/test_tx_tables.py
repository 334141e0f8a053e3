"""The four machines as data: every (state, input) pair of every table, driven through
the layer, either moves to a defined state or ends terminal, never raises (except the
LocalProtocolError a REJECT entry stands for), and never leaves a stale timer."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st
from txhelpers import request, response

from sipline.core.errors import LocalProtocolError
from sipline.core.message import Request
from sipline.core.timers import Timer
from sipline.core.transaction import Action, Input, Machine, State, Transaction, TransactionLayer
from sipline.core.transaction.client_invite import CLIENT_INVITE
from sipline.core.transaction.client_non_invite import CLIENT_NON_INVITE
from sipline.core.transaction.server_invite import SERVER_INVITE
from sipline.core.transaction.server_non_invite import SERVER_NON_INVITE

MACHINES = [CLIENT_INVITE, CLIENT_NON_INVITE, SERVER_INVITE, SERVER_NON_INVITE]
CLIENT = {CLIENT_INVITE, CLIENT_NON_INVITE}
STATUS = {
    Input.RECV_1XX: 180,
    Input.RECV_2XX: 200,
    Input.RECV_3XX_6XX: 486,
    Input.SEND_1XX: 180,
    Input.SEND_2XX: 200,
    Input.SEND_3XX_6XX: 486,
}
# Each transaction's request, by key: a server transaction drops its own once it sent a
# final response, and the inputs fed afterwards (retransmissions) still need it.
ORIGINAL: dict[object, Request] = {}


def new_transaction(machine: Machine, reliable: bool) -> tuple[TransactionLayer, Transaction]:
    layer = TransactionLayer()
    method = "INVITE" if machine in (CLIENT_INVITE, SERVER_INVITE) else "OPTIONS"
    req = request(method, transport="TCP" if reliable else "UDP")
    if machine in CLIENT:
        key = layer.send_request(req, target="peer", reliable=reliable, now=0.0)
        txn = layer.get(key)
    else:
        layer.receive(req, source="peer", reliable=reliable, now=0.0)
        [txn] = layer._servers.values()
    assert txn is not None and txn.machine is machine
    ORIGINAL[txn.key] = req
    return layer, txn


def feed(layer: TransactionLayer, txn: Transaction, inp: Input | Timer, now: float) -> None:
    """Deliver one input the way the runtime would (timers: as if it just fired)."""
    req = ORIGINAL[txn.key]
    if isinstance(inp, Timer):
        deadline = txn.timers.get(inp, now)
        layer._disarm(txn, inp)
        layer._step(txn, inp, now, deadline)
    elif inp in (Input.RECV_1XX, Input.RECV_2XX, Input.RECV_3XX_6XX):
        layer.receive(response(req, STATUS[inp]), source="peer", reliable=txn.reliable, now=now)
    elif inp in (Input.SEND_1XX, Input.SEND_2XX, Input.SEND_3XX_6XX):
        layer.send_response(response(req, STATUS[inp]), now=now)
    elif inp is Input.RECV_REQUEST:
        layer.receive(req, source="peer", reliable=txn.reliable, now=now)
    elif inp is Input.RECV_ACK:
        ack = request("ACK", transport=req.top_via.transport, to_tag="8321234356")
        layer.receive(ack, source="peer", reliable=txn.reliable, now=now)
    else:
        assert inp is Input.TRANSPORT_ERROR
        layer.transport_error(txn.key, now=now)


def check(layer: TransactionLayer, txn: Transaction) -> None:
    """The invariants that must hold after every step."""
    machine = txn.machine
    assert txn.state in machine.states
    if txn.state is State.TERMINATED:
        assert layer.get(txn.key) is None
        assert not txn.timers
    else:
        assert layer.get(txn.key) is txn
        assert set(txn.timers) <= machine.timers[txn.state], (txn.state, txn.timers)
        if txn.reliable:
            assert not set(txn.timers) & {Timer.A, Timer.E, Timer.G}
        if txn.timers:
            nd = layer.next_deadline()
            assert nd is not None and nd <= min(txn.timers.values())
    if machine is SERVER_INVITE and txn.response_data is not None:
        assert Timer.TRYING not in txn.timers  # answered: no automatic 100 any more
    assert layer._armed == sum(
        len(t.timers) for t in [*layer._clients.values(), *layer._servers.values()]
    )


def terminated(txn: Transaction) -> bool:
    return txn.state is State.TERMINATED


def paths(machine: Machine) -> dict[State, list[Input | Timer]]:
    """Shortest input sequence from the initial state to each state, read off the table."""
    found: dict[State, list[Input | Timer]] = {machine.initial: []}
    todo = deque([machine.initial])
    while todo:
        state = todo.popleft()
        for inp in machine.inputs:
            actions, nxt = machine.transition(state, inp)
            if nxt not in found and Action.REJECT not in actions:
                found[nxt] = [*found[state], inp]
                todo.append(nxt)
    return found


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_table_is_total_and_well_formed(machine: Machine) -> None:
    assert set(machine.table) == {(s, i) for s in machine.states for i in machine.inputs}
    assert set(paths(machine)) == set(machine.states)  # every state is reachable
    for (state, inp), (actions, nxt) in machine.table.items():
        assert nxt in machine.states
        if state is State.TERMINATED:
            assert nxt is State.TERMINATED and actions in ((), (Action.REJECT,))
        if Action.REJECT in actions:
            assert actions == (Action.REJECT,) and nxt is state
        for step in actions:
            if isinstance(step, Timer):  # a timer armed is one allowed in the next state
                assert step in machine.timers[nxt], (state, inp, step)
    assert machine.timers[State.TERMINATED] == frozenset()


@pytest.mark.parametrize("reliable", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_every_state_input_pair(machine: Machine, reliable: bool) -> None:
    reached = 0
    for state, path in paths(machine).items():
        for inp in machine.inputs:
            layer, txn = new_transaction(machine, reliable)
            now = 0.0
            for step in path:
                now += 0.01
                feed(layer, txn, step, now)
            if txn.state is not state:
                # A zero-duration timer (D, I, J or K over TCP) went straight on.
                assert reliable and txn.state is State.TERMINATED
                continue
            reached += 1
            actions, nxt = machine.transition(state, inp)
            if state is State.TERMINATED:
                continue  # the layer has forgotten it: inputs go elsewhere
            if Action.REJECT in actions:
                with pytest.raises(LocalProtocolError):
                    feed(layer, txn, inp, now + 0.01)
                assert txn.state is state
            else:
                feed(layer, txn, inp, now + 0.01)
                zero = reliable and any(
                    isinstance(a, Timer) and layer._durations[True][a] == 0.0 for a in actions
                )
                assert txn.state is (State.TERMINATED if zero else nxt), (state, inp)
            check(layer, txn)
    assert reached >= len(machine.states) - (2 if reliable else 0)


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
@given(data=st.data(), reliable=st.booleans())
def test_random_input_sequences(machine: Machine, reliable: bool, data: st.DataObject) -> None:
    layer, txn = new_transaction(machine, reliable)
    check(layer, txn)
    inputs = data.draw(st.lists(st.sampled_from(machine.inputs), max_size=25))
    now = 0.0
    for inp in inputs:
        now += data.draw(st.floats(min_value=0.0, max_value=5.0))
        # Real timers may fire in between, exactly as the runtime would fire them.
        layer.handle_timers(now=now)
        if terminated(txn):
            break
        before = txn.state
        try:
            feed(layer, txn, inp, now)
        except LocalProtocolError:
            assert machine.transition(before, inp)[0] == (Action.REJECT,)
            assert txn.state is before
        check(layer, txn)
    layer.handle_timers(now=now + 1000.0)
    # Every machine ends on its own, except where only the TU can end it.
    if txn.state is not State.TERMINATED:
        assert not txn.timers
        assert txn.state in (State.PROCEEDING, State.TRYING)
        assert machine is not CLIENT_NON_INVITE
    assert layer.next_deadline() is None or txn.state is State.TERMINATED
