"""The RFC 4028 session timer of one dialog, sans-I/O.

Every 2xx to an INVITE or UPDATE negotiates the timer afresh (§7.2 for the UAC, §9
for the UAS): an interval and who refreshes. RFC 4028 §10: the refresher sends a
refresh at half the interval; the other side, if no refresh came, sends BYE "before
the session expiration", at the interval minus min(32 s, a third of it). A refresh
that fails ends the session (§10, "the UA SHOULD send a BYE").

`SessionRefresh` is shaped like `sipline.core.transaction`: inputs with `now`, actions
out, `next_deadline()` and `handle_timers(now=)`, transitions as a table keyed by
(state, input).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "REFRESH_TABLE",
    "RefreshAction",
    "RefreshInput",
    "RefreshState",
    "SessionRefresh",
    "SessionTimer",
]


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """The negotiated interval and who refreshes (RFC 4028 §7.2, §9)."""

    interval_s: int
    refresher: str  # "uac" or "uas", as written in Session-Expires
    we_refresh: bool

    def refresh_after(self) -> float:
        """Seconds until the refresher refreshes (§10: half the interval)."""
        return self.interval_s / 2

    def expire_after(self) -> float:
        """Seconds until the other side gives up without a refresh (§10)."""
        return self.interval_s - min(32.0, self.interval_s / 3)


class RefreshState(enum.Enum):
    __hash__ = object.__hash__

    INACTIVE = "no session timer"
    REFRESHER = "we refresh: waiting for half the interval"
    REFRESHING = "our refresh is in progress"
    WATCHING = "the peer refreshes: waiting for its refresh"
    ENDED = "ended"


class RefreshInput(enum.Enum):
    __hash__ = object.__hash__

    WE_REFRESH = "a 2xx negotiated a timer that we refresh"
    PEER_REFRESHES = "a 2xx negotiated a timer that the peer refreshes"
    NO_TIMER = "a 2xx negotiated no timer"
    REFRESH_FAILED = "our refresh got no 2xx"
    STOP = "the session ended"
    REFRESH_DUE = "half the interval passed (timer)"
    EXPIRY_DUE = "the session is about to expire (timer)"


class RefreshAction(enum.Enum):
    __hash__ = object.__hash__

    SEND_REFRESH = "send a refresh (re-INVITE)"
    REPORT_REFRESHED = "our refresh succeeded"
    END_WITH_BYE = "end the session with BYE"


_I, _R, _G, _W, _E = (
    RefreshState.INACTIVE,
    RefreshState.REFRESHER,
    RefreshState.REFRESHING,
    RefreshState.WATCHING,
    RefreshState.ENDED,
)
_Entry = tuple[tuple[RefreshAction, ...], RefreshState]
_BYE = (RefreshAction.END_WITH_BYE,)
_REPORT = (RefreshAction.REPORT_REFRESHED,)

_ENTRIES: dict[tuple[RefreshState, RefreshInput], _Entry] = {
    (_I, RefreshInput.WE_REFRESH): ((), _R),
    (_I, RefreshInput.PEER_REFRESHES): ((), _W),
    (_R, RefreshInput.WE_REFRESH): ((), _R),
    (_R, RefreshInput.PEER_REFRESHES): ((), _W),
    (_R, RefreshInput.NO_TIMER): ((), _I),
    (_R, RefreshInput.REFRESH_DUE): ((RefreshAction.SEND_REFRESH,), _G),
    (_G, RefreshInput.WE_REFRESH): (_REPORT, _R),
    (_G, RefreshInput.PEER_REFRESHES): (_REPORT, _W),
    # A refresh answered without a timer is not the refresh we asked for: it fails.
    (_G, RefreshInput.NO_TIMER): (_BYE, _E),
    (_G, RefreshInput.REFRESH_FAILED): (_BYE, _E),
    (_W, RefreshInput.WE_REFRESH): ((), _R),
    (_W, RefreshInput.PEER_REFRESHES): ((), _W),
    (_W, RefreshInput.NO_TIMER): ((), _I),
    (_W, RefreshInput.EXPIRY_DUE): (_BYE, _E),
    (_I, RefreshInput.STOP): ((), _E),
    (_R, RefreshInput.STOP): ((), _E),
    (_G, RefreshInput.STOP): ((), _E),
    (_W, RefreshInput.STOP): ((), _E),
}

REFRESH_TABLE: Mapping[tuple[RefreshState, RefreshInput], _Entry] = {
    (state, inp): _ENTRIES.get((state, inp), ((), state))
    for state in RefreshState
    for inp in RefreshInput
}
"""The whole table: pairs not named above absorb the input and stay."""

_NEGOTIATED = (RefreshInput.WE_REFRESH, RefreshInput.PEER_REFRESHES, RefreshInput.NO_TIMER)


class SessionRefresh:
    """The session timer of one dialog (see the module docstring)."""

    __slots__ = ("_deadline", "state", "timer")

    def __init__(self) -> None:
        self.state = _I
        self.timer: SessionTimer | None = None
        self._deadline: float | None = None  # REFRESH_DUE or EXPIRY_DUE, by state

    def negotiate(self, timer: SessionTimer | None, *, now: float) -> tuple[RefreshAction, ...]:
        """A 2xx (sent or received) set the timer to `timer` (None: no timer)."""
        if timer is None:
            inp = RefreshInput.NO_TIMER
        else:
            inp = RefreshInput.WE_REFRESH if timer.we_refresh else RefreshInput.PEER_REFRESHES
        return self._step(inp, now, timer)

    def refresh_failed(self, *, now: float) -> tuple[RefreshAction, ...]:
        return self._step(RefreshInput.REFRESH_FAILED, now)

    def stop(self, *, now: float) -> tuple[RefreshAction, ...]:
        return self._step(RefreshInput.STOP, now)

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timers(self, *, now: float) -> tuple[RefreshAction, ...]:
        if self._deadline is None or self._deadline > now:
            return ()
        if self.state is _R:
            return self._step(RefreshInput.REFRESH_DUE, now)
        return self._step(RefreshInput.EXPIRY_DUE, now)

    def _step(
        self, inp: RefreshInput, now: float, timer: SessionTimer | None = None
    ) -> tuple[RefreshAction, ...]:
        actions, self.state = REFRESH_TABLE[self.state, inp]
        if inp in _NEGOTIATED and self.state is not _E:
            self.timer = timer
        if self.state is _R and self.timer is not None and inp in _NEGOTIATED:
            self._deadline = now + self.timer.refresh_after()
        elif self.state is _W and self.timer is not None and inp in _NEGOTIATED:
            self._deadline = now + self.timer.expire_after()
        elif self.state not in (_R, _W):
            self._deadline = None
        return actions
