"""The voicemail dialogues as golden tables: (now, input) -> actions, state, deadline."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.server.voicemail.machine import (
    DEPOSIT_TABLE,
    DeleteMessage,
    Deposit,
    DepositState,
    Hangup,
    MarkHeard,
    Play,
    PlayMessage,
    Retrieval,
    RetrievalState,
    SaveRecording,
    StartRecording,
)

D = DepositState
R = RetrievalState


def _feed(m: Deposit | Retrieval, step: tuple[float, str, str]) -> list[object]:
    now, kind, arg = step
    if kind == "start":
        return list(m.start(now=now))
    if kind == "played":
        return list(m.played(now=now))
    if kind == "dtmf":
        return list(m.dtmf(arg, now=now))
    if kind == "hangup":
        return list(m.hung_up(now=now))
    assert kind == "tick"
    return list(m.tick(now=now))


DEPOSIT_GOLDEN = {
    "message left, caller hangs up": [
        ((0.0, "start", ""), [Play("greeting")], D.GREETING, None),
        ((4.0, "played", ""), [Play("beep")], D.BEEP, None),
        ((4.3, "played", ""), [StartRecording()], D.RECORDING, 124.3),
        ((10.0, "dtmf", "5"), [], D.RECORDING, 124.3),
        ((12.0, "hangup", ""), [SaveRecording()], D.DONE, None),
    ],
    "greeting skipped with #": [
        ((0.0, "start", ""), [Play("greeting")], D.GREETING, None),
        ((1.0, "dtmf", "#"), [Play("beep")], D.BEEP, None),
        ((1.3, "played", ""), [StartRecording()], D.RECORDING, 121.3),
        ((3.0, "dtmf", "#"), [SaveRecording(), Hangup()], D.DONE, None),
    ],
    "limit reached": [
        ((0.0, "start", ""), [Play("greeting")], D.GREETING, None),
        ((4.0, "played", ""), [Play("beep")], D.BEEP, None),
        ((4.3, "played", ""), [StartRecording()], D.RECORDING, 124.3),
        ((124.2, "tick", ""), [], D.RECORDING, 124.3),
        ((124.3, "tick", ""), [SaveRecording(), Hangup()], D.DONE, None),
        ((125.0, "hangup", ""), [], D.DONE, None),
    ],
    "hang-up during the greeting leaves nothing": [
        ((0.0, "start", ""), [Play("greeting")], D.GREETING, None),
        ((2.0, "hangup", ""), [], D.DONE, None),
        ((3.0, "played", ""), [], D.DONE, None),
    ],
}


@pytest.mark.parametrize("name", list(DEPOSIT_GOLDEN))
def test_deposit_golden(name: str) -> None:
    m = Deposit(max_message_s=120.0)
    for step, actions, state, deadline in DEPOSIT_GOLDEN[name]:
        assert _feed(m, step) == actions, step
        assert m.state is state, step
        assert m.next_deadline() == deadline, step


@pytest.mark.parametrize(
    ("state", "event"),
    list(itertools.product(DepositState, ["start", "played", "skip", "hangup", "limit"])),
)
def test_deposit_every_pair_is_defined_or_ignored(state: DepositState, event: str) -> None:
    """Every (state, input) pair either transitions by the table or changes nothing;
    DONE is terminal."""
    m = Deposit(state=state)
    m.recording_since = 0.0 if state is D.RECORDING else None
    before = m.state
    entry = DEPOSIT_TABLE.get((state, event))
    actions = m._step(event, 1.0)
    if entry is None:
        assert actions == [] and m.state is before
    else:
        assert (tuple(actions), m.state) == entry
    if state is D.DONE:
        assert entry is None


def _pin(expected: str):  # type: ignore[no-untyped-def]
    return lambda pin: pin == expected


RETRIEVAL_GOLDEN = {
    "PIN, two messages, delete the first, next": [
        ((0.0, "start", ""), [Play("pin")], R.PIN, 15.0),
        ((1.0, "dtmf", "1"), [], R.PIN, 16.0),
        ((1.2, "dtmf", "2"), [], R.PIN, 16.2),
        ((1.4, "dtmf", "3"), [], R.PIN, 16.4),
        ((1.6, "dtmf", "4"), [], R.PIN, 16.6),
        ((1.8, "dtmf", "#"), [PlayMessage(11), MarkHeard(11)], R.PLAYING, None),
        ((5.0, "played", ""), [], R.WAITING, 20.0),
        ((6.0, "dtmf", "1"), [PlayMessage(11), MarkHeard(11)], R.PLAYING, None),
        ((7.0, "dtmf", "7"), [DeleteMessage(11), PlayMessage(12), MarkHeard(12)], R.PLAYING, None),
        ((9.0, "dtmf", "4"), [PlayMessage(12), MarkHeard(12)], R.PLAYING, None),
        ((9.5, "dtmf", "#"), [Play("no-more")], R.ENDING, None),
        ((11.0, "played", ""), [Hangup()], R.DONE, None),
    ],
    "wrong PIN three times": [
        ((0.0, "start", ""), [Play("pin")], R.PIN, 15.0),
        ((1.0, "dtmf", "9"), [], R.PIN, 16.0),
        ((1.1, "dtmf", "#"), [Play("bad-pin")], R.PIN, 16.1),
        ((2.0, "dtmf", "#"), [Play("bad-pin")], R.PIN, 17.0),
        ((3.0, "dtmf", "#"), [Play("goodbye")], R.ENDING, None),
    ],
    "no key pressed": [
        ((0.0, "start", ""), [Play("pin")], R.PIN, 15.0),
        ((14.9, "tick", ""), [], R.PIN, 15.0),
        ((15.0, "tick", ""), [Play("goodbye")], R.ENDING, None),
        ((16.0, "played", ""), [Hangup()], R.DONE, None),
    ],
    "menu prompt, then next": [
        ((0.0, "start", ""), [Play("pin")], R.PIN, 15.0),
        ((1.0, "dtmf", "1"), [], R.PIN, 16.0),
        ((1.1, "dtmf", "2"), [], R.PIN, 16.1),
        ((1.2, "dtmf", "3"), [], R.PIN, 16.2),
        ((1.3, "dtmf", "4"), [], R.PIN, 16.3),
        ((1.4, "dtmf", "#"), [PlayMessage(11), MarkHeard(11)], R.PLAYING, None),
        ((2.0, "dtmf", "0"), [Play("menu")], R.PLAYING, None),
        ((3.0, "dtmf", "6"), [PlayMessage(12), MarkHeard(12)], R.PLAYING, None),
        ((4.0, "hangup", ""), [], R.DONE, None),
    ],
}


@pytest.mark.parametrize("name", list(RETRIEVAL_GOLDEN))
def test_retrieval_golden(name: str) -> None:
    m = Retrieval([11, 12], _pin("1234"))
    for step, actions, state, deadline in RETRIEVAL_GOLDEN[name]:
        assert _feed(m, step) == actions, step
        assert m.state is state, step
        assert m.next_deadline() == deadline, step


def test_retrieval_without_pin_or_messages() -> None:
    m = Retrieval([], None)
    assert m.start(now=0.0) == [Play("no-messages")]
    assert m.played(now=1.0) == [Hangup()]
    m = Retrieval([5], None)
    assert m.start(now=0.0) == [PlayMessage(5), MarkHeard(5)]
    assert m.dtmf("7", now=1.0) == [DeleteMessage(5), Play("no-more")]


def test_pin_digits_are_bounded() -> None:
    m = Retrieval([1], _pin("1" * 32))
    m.start(now=0.0)
    for _ in range(100):
        m.dtmf("1", now=0.0)
    assert len(m.digits) == 32


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["dtmf", "played", "tick"]),
            st.sampled_from(list("0123456789*#")),
        ),
        max_size=60,
    ),
    st.booleans(),
)
def test_retrieval_any_key_sequence_is_safe(steps: list[tuple[str, str]], pin: bool) -> None:
    """Whatever is pressed: no message is deleted twice or played after its deletion,
    every action names a message of the mailbox, and a hang-up always ends it."""
    ids = [1, 2, 3]
    m = Retrieval(ids, _pin("1234") if pin else None)
    deleted: set[int] = set()
    now = 0.0
    actions = list(m.start(now=now))
    for kind, digit in steps:
        now += 1.0
        for a in actions:
            if isinstance(a, DeleteMessage):
                assert a.message_id in ids and a.message_id not in deleted
                deleted.add(a.message_id)
            elif isinstance(a, PlayMessage | MarkHeard):
                assert a.message_id in ids and a.message_id not in deleted
        actions = list(_feed(m, (now, kind, digit)))  # type: ignore[arg-type]
    m.hung_up(now=now + 1)
    assert m.state is RetrievalState.DONE and m.next_deadline() is None
