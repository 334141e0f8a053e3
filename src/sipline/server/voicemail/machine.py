"""The voicemail dialogues as sans-I/O state machines: leaving a message, and
listening to one's messages. No sockets, clock or files here: the media host feeds
in what happened (`started`, `played`, `dtmf`, `hung_up`, `tick`, each with `now`)
and carries out the actions handed back.

Leaving a message (the caller did not reach the user):

    greeting --played or #--> beep --played--> recording --hang-up, # or max_message_s--> done
    (a hang-up before the beep leaves nothing)

Listening (the user called *98), keys after the PIN:

    PIN digits then #   (3 wrong PINs, or no key for `input_s`, hang up)
    1  play the current message again        4  the previous message
    6 or #  the next message                 7  delete the current message (then the next)
    0  hear the keys again (the menu prompt)

New messages are played first (oldest first), then the old ones. A message counts as
heard once its playback has begun (as app_voicemail marks a message old when opened).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "Action",
    "DeleteMessage",
    "Deposit",
    "DepositState",
    "Hangup",
    "MarkHeard",
    "Play",
    "PlayMessage",
    "Retrieval",
    "RetrievalState",
    "SaveRecording",
    "StartRecording",
]


# -- actions ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Play:
    """Play a prompt (replacing what plays): greeting, beep, pin, bad-pin, menu,
    no-messages, no-more, deleted, goodbye."""

    prompt: str


@dataclass(frozen=True, slots=True)
class PlayMessage:
    message_id: int


@dataclass(frozen=True, slots=True)
class StartRecording:
    pass


@dataclass(frozen=True, slots=True)
class SaveRecording:
    pass


@dataclass(frozen=True, slots=True)
class MarkHeard:
    message_id: int


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    message_id: int


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


Action = Play | PlayMessage | StartRecording | SaveRecording | MarkHeard | DeleteMessage | Hangup


# -- leaving a message -----------------------------------------------------------------------
class DepositState(StrEnum):
    IDLE = "idle"
    GREETING = "greeting"
    BEEP = "beep"
    RECORDING = "recording"
    DONE = "done"


S = DepositState
# (state, input) -> (actions, next state). Inputs: start, played, skip (the # key),
# hangup, limit (max_message_s reached). A pair not listed changes nothing.
DEPOSIT_TABLE: dict[tuple[DepositState, str], tuple[tuple[Action, ...], DepositState]] = {
    (S.IDLE, "start"): ((Play("greeting"),), S.GREETING),
    (S.IDLE, "hangup"): ((), S.DONE),
    (S.GREETING, "played"): ((Play("beep"),), S.BEEP),
    (S.GREETING, "skip"): ((Play("beep"),), S.BEEP),
    (S.GREETING, "hangup"): ((), S.DONE),
    (S.BEEP, "played"): ((StartRecording(),), S.RECORDING),
    (S.BEEP, "hangup"): ((), S.DONE),
    (S.RECORDING, "hangup"): ((SaveRecording(),), S.DONE),
    (S.RECORDING, "skip"): ((SaveRecording(), Hangup()), S.DONE),
    (S.RECORDING, "limit"): ((SaveRecording(), Hangup()), S.DONE),
}


@dataclass(slots=True)
class Deposit:
    """Greeting, beep, then recording until hang-up, # or `max_message_s`."""

    max_message_s: float = 120.0
    state: DepositState = DepositState.IDLE
    recording_since: float | None = None

    def _step(self, event: str, now: float) -> list[Action]:
        entry = DEPOSIT_TABLE.get((self.state, event))
        if entry is None:
            return []
        actions, self.state = entry
        if self.state is DepositState.RECORDING and self.recording_since is None:
            self.recording_since = now
        return list(actions)

    def start(self, *, now: float) -> list[Action]:
        return self._step("start", now)

    def played(self, *, now: float) -> list[Action]:
        return self._step("played", now)

    def dtmf(self, digit: str, *, now: float) -> list[Action]:
        return self._step("skip", now) if digit == "#" else []

    def hung_up(self, *, now: float) -> list[Action]:
        return self._step("hangup", now)

    def next_deadline(self) -> float | None:
        if self.state is DepositState.RECORDING and self.recording_since is not None:
            return self.recording_since + self.max_message_s
        return None

    def tick(self, *, now: float) -> list[Action]:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            return self._step("limit", now)
        return []


# -- listening -------------------------------------------------------------------------------
class RetrievalState(StrEnum):
    IDLE = "idle"
    PIN = "pin"  # collecting digits
    PLAYING = "playing"  # a message or prompt is playing; keys act at once
    WAITING = "waiting"  # nothing plays; keys still act, `input_s` runs
    ENDING = "ending"  # the goodbye plays
    DONE = "done"


@dataclass(slots=True)
class Retrieval:
    """The *98 menu. `messages`: the mailbox's message ids, new ones first.
    `pin_ok` checks an entered PIN; None means the mailbox has no PIN."""

    messages: Sequence[int]
    pin_ok: Callable[[str], bool] | None
    input_s: float = 15.0
    max_pin_tries: int = 3
    state: RetrievalState = RetrievalState.IDLE
    index: int = 0
    digits: str = ""
    tries: int = 0
    deadline: float | None = None
    _ids: list[int] = field(default_factory=list)

    def start(self, *, now: float) -> list[Action]:
        self._ids = list(self.messages)
        if self.pin_ok is None:
            return self._first(now)
        self.state = RetrievalState.PIN
        self.deadline = now + self.input_s
        return [Play("pin")]

    def _first(self, now: float) -> list[Action]:
        if not self._ids:
            return self._goodbye("no-messages")
        return self._play(0, now)

    def _play(self, index: int, now: float) -> list[Action]:
        if index >= len(self._ids):
            self.index = len(self._ids)
            return self._goodbye("no-more")
        self.index = max(index, 0)
        self.state = RetrievalState.PLAYING
        self.deadline = None
        mid = self._ids[self.index]
        return [PlayMessage(mid), MarkHeard(mid)]

    def _goodbye(self, prompt: str) -> list[Action]:
        self.state = RetrievalState.ENDING
        self.deadline = None
        return [Play(prompt)]

    def played(self, *, now: float) -> list[Action]:
        if self.state is RetrievalState.ENDING:
            self.state = RetrievalState.DONE
            return [Hangup()]
        if self.state is RetrievalState.PLAYING:
            self.state = RetrievalState.WAITING
            self.deadline = now + self.input_s
        return []

    def dtmf(self, digit: str, *, now: float) -> list[Action]:
        st = self.state
        if st is RetrievalState.PIN:
            return self._pin_digit(digit, now)
        if st not in (RetrievalState.PLAYING, RetrievalState.WAITING):
            return []
        if digit == "1":
            return self._play(self.index, now)
        if digit == "4":
            return self._play(self.index - 1, now)
        if digit in ("6", "#"):
            return self._play(self.index + 1, now)
        if digit == "7":
            mid = self._ids.pop(self.index)
            return [DeleteMessage(mid), *self._play(self.index, now)]
        if digit == "0":
            self.state = RetrievalState.PLAYING
            self.deadline = None
            return [Play("menu")]
        return []

    def _pin_digit(self, digit: str, now: float) -> list[Action]:
        assert self.pin_ok is not None  # the PIN state is entered only with a check
        self.deadline = now + self.input_s
        if digit != "#":
            if len(self.digits) < 32:
                self.digits += digit
            return []
        entered, self.digits = self.digits, ""
        if self.pin_ok(entered):
            return self._first(now)
        self.tries += 1
        if self.tries >= self.max_pin_tries:
            return self._goodbye("goodbye")
        return [Play("bad-pin")]  # "wrong PIN; enter your PIN"

    def hung_up(self, *, now: float) -> list[Action]:
        self.state = RetrievalState.DONE
        self.deadline = None
        return []

    def next_deadline(self) -> float | None:
        return self.deadline

    def tick(self, *, now: float) -> list[Action]:
        if self.deadline is not None and now >= self.deadline:
            return self._goodbye("goodbye")
        return []
