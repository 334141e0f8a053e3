"""The proxy context of one proxied request (RFC 3261 §16.6-§16.10), sans-I/O.

Shaped like the transaction layer: the element feeds it the responses of its
branches, the caller's CANCEL, the routing policy's decisions and the time
(`handle_timers`), each with `now`; it returns actions (`sipline.core.proxy.actions`)
and exposes `next_deadline()`. The rules are the table in `tables.py`; this module
carries out its steps for one branch or for the whole context.

What it owns: forking in q-groups (§16.6, highest q first, equal q in parallel) or in
the steps a routing policy decides; the best response (§16.7 step 6: 6xx first, then
the lowest class, 401/407 before the generic failures; 503 becomes 500); aggregated
challenges (§16.7 step 7); every 2xx relayed and the other branches cancelled
(§16.7 step 10, RFC 3326 Reason); Timer C per INVITE branch (§16.6 step 11, pushed
back by provisionals, §16.7 step 2); a step's ring timeout and a branch's hop
timeout (Timer B cut short). Only INVITE branches are ever cancelled (§9.1): the
branches of a forked non-INVITE request run to their own end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from sipline.core.message import Response
from sipline.core.proxy.actions import (
    Action,
    CancelBranch,
    Fork,
    GiveUp,
    HangUp,
    Relay,
    Respond,
    SendResponse,
    StepEnded,
)
from sipline.core.proxy.responses import (
    ANSWERED_ELSEWHERE,
    better,
    challenges_of,
    decline_reason,
    merge_challenges,
)
from sipline.core.proxy.tables import TABLE, Input, State, Step

__all__ = ["Branch", "ProxyContext"]

T = TypeVar("T")


class Branch(Generic[T]):
    """One client transaction of the context, as the context sees it."""

    __slots__ = (
        "abandoned",
        "final",
        "hop_at",
        "hop_timeout_s",
        "hung_up",
        "index",
        "provisional",
        "target",
        "timer_c_at",
    )

    def __init__(self, index: int, target: T) -> None:
        self.index = index
        self.target = target
        self.provisional = False  # a provisional (>100) arrived: CANCEL may go (§9.1)
        self.final: Response | None = None
        self.timer_c_at: float | None = None  # INVITE only; pushed back by provisionals
        self.hop_at: float | None = None  # until a first response shows the hop alive
        self.hop_timeout_s = 0.0
        self.abandoned = False  # given up by a timeout: its 487 or 408 is not an answer
        self.hung_up = False  # a late 2xx on this abandoned branch was ACKed and BYEd


def _input_for(status: int) -> Input:
    if status < 200:
        return Input.RECV_100 if status == 100 else Input.RECV_1XX
    if status < 300:
        return Input.RECV_2XX
    return Input.RECV_6XX if status >= 600 else Input.RECV_3XX_5XX


class ProxyContext(Generic[T]):
    """§16: everything about one proxied request, but its messages and transactions.

    `groups`: the q-ordered target groups to fork in turn (start with `start`);
    `stepped`: the targets come instead from a routing policy, one step at a time
    (`fork`), and the context reports each failed step (`StepEnded`).
    """

    def __init__(
        self,
        *,
        invite: bool,
        timer_c_s: float,
        groups: Iterable[Sequence[T]] = (),
        stepped: bool = False,
    ) -> None:
        self.invite = invite
        self.timer_c_s = timer_c_s
        self.stepped = stepped
        self.state = State.WAITING
        self.groups = [list(g) for g in groups]
        self.branches: list[Branch[T]] = []
        self.best: Response | None = None
        self.challenges: list[tuple[str, str]] = []
        self.cancelled = False
        self.step_first = 0  # the branches of the current routing step start here
        self.step_at: float | None = None
        self.step_timed_out = False
        self._step_args: tuple[Sequence[T], float | None, float | None] = ((), None, None)
        self._answer = Respond(500)  # what a REJECT answers
        self._fallback: Respond | None = None  # an EXHAUSTED's answer when nothing is better
        self._out: list[Action[T]] = []

    # -- inputs ------------------------------------------------------------------------
    def start(self, *, now: float) -> list[Action[T]]:
        """Fork the first q-group (§16.6)."""
        return self._run(Input.START, now)

    def fork(
        self,
        targets: Sequence[T],
        *,
        timeout_s: float | None = None,
        hop_timeout_s: float | None = None,
        now: float,
    ) -> list[Action[T]]:
        """A routing step: ring `targets` in parallel; after `timeout_s` abandon those
        still ringing; give up a branch that hears nothing within `hop_timeout_s`."""
        self._step_args = (targets, timeout_s, hop_timeout_s)
        return self._run(Input.FORK, now)

    def receive_response(self, branch: int, response: Response, *, now: float) -> list[Action[T]]:
        """A response of `branch` (also the one a `GiveUp` made)."""
        return self._run(_input_for(response.status), now, self.branches[branch], response)

    def cancel(self, *, now: float) -> list[Action[T]]:
        """§16.10: the caller's CANCEL for this request arrived."""
        return self._run(Input.CANCEL, now)

    def reject(
        self,
        status: int,
        reason: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
        *,
        now: float,
    ) -> list[Action[T]]:
        """The routing policy answers the caller now."""
        self._answer = Respond(status, reason, extra)
        return self._run(Input.REJECT, now)

    def exhausted(self, status: int, reason: str | None = None, *, now: float) -> list[Action[T]]:
        """Nothing more to try: the best response, or `status` when there is none."""
        self._fallback = Respond(status, reason)
        return self._run(Input.EXHAUSTED, now)

    def next_deadline(self) -> float | None:
        """When `handle_timers` must next be called (None: no timer armed)."""
        deadline = self.step_at
        for b in self.branches:
            for at in (b.timer_c_at, b.hop_at):
                if at is not None and (deadline is None or at < deadline):
                    deadline = at
        return deadline

    def handle_timers(self, *, now: float) -> list[Action[T]]:
        """Fire every timer due by `now`, in deadline order."""
        out: list[Action[T]] = []
        while (due := self._due(now)) is not None:
            inp, branch = due
            out += self._run(inp, now, branch)
        return out

    @property
    def pending(self) -> bool:
        """Some branch has no final response yet."""
        return any(b.final is None for b in self.branches)

    # -- the interpreter -----------------------------------------------------------------
    def _run(
        self,
        inp: Input,
        now: float,
        branch: Branch[T] | None = None,
        response: Response | None = None,
    ) -> list[Action[T]]:
        self._feed(inp, now, branch, response)
        out, self._out = self._out, []
        return out

    def _feed(
        self, inp: Input, now: float, branch: Branch[T] | None, response: Response | None
    ) -> None:
        steps, self.state = TABLE[self.state, inp]
        for step in steps:
            if not _STEPS[step](self, branch, response, now):
                return

    def _due(self, now: float) -> tuple[Input, Branch[T] | None] | None:
        """The earliest timer due by `now`, disarmed (each fires once)."""
        best: tuple[float, Input, Branch[T] | None] | None = None
        if self.step_at is not None and self.step_at <= now:
            best = (self.step_at, Input.STEP_TIMER, None)
        for b in self.branches:
            for at, inp in ((b.timer_c_at, Input.TIMER_C), (b.hop_at, Input.HOP_TIMER)):
                if at is not None and at <= now and (best is None or at < best[0]):
                    best = (at, inp, b)
        if best is None:
            return None
        _, inp, branch = best
        if branch is None:
            self.step_at = None
        elif inp is Input.TIMER_C:
            branch.timer_c_at = None
        else:
            branch.hop_at = None
        return inp, branch

    # -- steps (each returns False to skip the entry's remaining steps) --------------------
    def _heard(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        assert b is not None
        b.hop_at = None
        return True

    def _provisional(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        assert b is not None
        b.provisional = True
        if b.timer_c_at is not None:
            b.timer_c_at = now + self.timer_c_s  # §16.7 step 2
        return True

    def _relay(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        assert r is not None
        self._out.append(Relay(r))
        return True

    def _accept_2xx(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        # Every 2xx goes upstream (§16.7 step 10). A branch given up (a made-up 408)
        # that answers first still wins.
        assert b is not None and r is not None
        first = b.final is None or b.final.status >= 300
        b.final, b.timer_c_at = r, None
        self._out.append(Relay(r))
        if first:
            self._cancel_pending(ANSWERED_ELSEWHERE)
        return True

    def _late_2xx(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        assert b is not None and r is not None
        b.timer_c_at = None
        if b.abandoned:
            # A branch we gave up is not a fork the caller asked for: it already has
            # its answer, so this dialog is ended here (sipline.server.proxy.abandoned).
            self._out.append(HangUp(b.index, r, send_bye=not b.hung_up))
            b.hung_up = True
            return True
        first = b.final is None or b.final.status >= 300
        b.final = r
        self._out.append(Relay(r, stateless=True))
        if first:
            self._cancel_pending(ANSWERED_ELSEWHERE)
        return True

    def _record(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        assert b is not None and r is not None
        b.timer_c_at = None
        if b.final is not None:
            return False  # a second final (a 487 after a made-up 408): nothing new
        b.final = r
        if r.status in (401, 407):
            self.challenges += challenges_of(r)  # §16.7 step 7
        if not b.abandoned and (self.best is None or better(r, self.best)):
            self.best = r
        return True

    def _decline(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        assert r is not None
        self.groups.clear()  # §16.7 step 5: a 6xx ends the search
        self._cancel_pending(decline_reason(r.status))
        return True

    def _check_done(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        if self.pending:
            return True
        if self.cancelled:
            inp = Input.ALL_DONE
        elif self.stepped:
            inp = Input.STEP_DONE
        else:
            inp = Input.GROUP_DONE if self.groups else Input.ALL_DONE
        self._feed(inp, now, None, None)
        return True

    def _fork_group(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        if self.groups:
            self._fork(self.groups.pop(0), None, now)
        return True

    def _fork_step(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        targets, _, hop_timeout_s = self._step_args
        self.step_first, self.step_timed_out = len(self.branches), False
        self._fork(targets, hop_timeout_s, now)
        return True

    def _fork(self, targets: Iterable[T], hop_timeout_s: float | None, now: float) -> None:
        for target in targets:
            branch = Branch(len(self.branches), target)
            if self.invite:
                branch.timer_c_at = now + self.timer_c_s  # §16.6 step 11
            if hop_timeout_s is not None:
                branch.hop_at, branch.hop_timeout_s = now + hop_timeout_s, hop_timeout_s
            self.branches.append(branch)
            self._out.append(Fork(branch.index, target))

    def _arm_step_timer(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        timeout_s = self._step_args[1]
        self.step_at = None if timeout_s is None else now + timeout_s
        return True

    def _stop_step_timer(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        self.step_at = None
        return True

    def _step_ended(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        best: Response | None = None
        for branch in self.branches[self.step_first :]:
            final = branch.final
            if final is not None and not branch.abandoned and (best is None or better(final, best)):
                best = final
        self._out.append(StepEnded(best, self.step_timed_out))
        return True

    def _send_best(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        """§16.7 steps 6-8: the best response; 503 becomes 500 (§16.7 step 6), and a
        401/407 carries every branch's challenges (step 7)."""
        best = self.best
        if best is None:
            if self._fallback is not None and not self.cancelled:
                self._out.append(self._fallback)
            else:
                self._out.append(Respond(487 if self.cancelled else 408))
        elif best.status == 503:
            self._out.append(Respond(500, "Server Internal Error (downstream unavailable)"))
        elif best.status in (401, 407) and self.challenges:
            self._out.append(SendResponse(merge_challenges(best, self.challenges)))
        else:
            self._out.append(Relay(best))
        return True

    def _answer_now(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        self._out.append(self._answer)
        return True

    def _cancel_all(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        self.cancelled = True
        self.groups.clear()
        self._cancel_pending(None)
        return True

    def _expire_timer_c(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        """§16.6 step 11 / §16.8: cancel a branch that rang too long, or give it up."""
        assert b is not None
        if b.final is None:
            if b.provisional:
                self._out.append(CancelBranch(b.index))
            else:
                self._out.append(GiveUp(b.index, 408, "Request Timeout"))
        return True

    def _expire_hop(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        """Timer B cut short: not the step's answer; the step goes on to its next
        destination. The CANCEL waits for a provisional (§9.1) if one still comes."""
        assert b is not None
        if b.final is None:
            b.abandoned = True
            if self.invite:
                self._out.append(CancelBranch(b.index))
            why = f"Request Timeout (no response within {b.hop_timeout_s:g} s)"
            self._out.append(GiveUp(b.index, 408, why))
        return True

    def _expire_step(self, b: Branch[T] | None, r: Response | None, now: float) -> bool:
        """The step rang long enough (no answer): cancel its branches (§9.1); their
        487s then end the step. A branch with no provisional yet cannot be cancelled
        on the wire until one arrives, so it is given up at once."""
        self.step_timed_out = True
        for branch in self.branches[self.step_first :]:
            if branch.final is None:
                branch.abandoned = True
                if self.invite:
                    self._out.append(CancelBranch(branch.index))
                if not self.invite or not branch.provisional:
                    self._out.append(GiveUp(branch.index, 408, "Request Timeout (step timed out)"))
        return True

    def _cancel_pending(self, reason: str | None) -> None:
        """§16.7 step 10 / §16.10: CANCEL every INVITE branch still without a final
        response. Only an INVITE can be cancelled (§9.1)."""
        if self.invite:
            for b in self.branches:
                if b.final is None:
                    self._out.append(CancelBranch(b.index, reason))


# What each step of the table does (one function per step, shared by every context).
_STEPS: dict[Step, Callable[[ProxyContext[Any], Branch[Any] | None, Response | None, float], bool]]
_STEPS = {
    Step.HEARD: ProxyContext._heard,
    Step.PROVISIONAL: ProxyContext._provisional,
    Step.RELAY: ProxyContext._relay,
    Step.ACCEPT_2XX: ProxyContext._accept_2xx,
    Step.LATE_2XX: ProxyContext._late_2xx,
    Step.RECORD: ProxyContext._record,
    Step.DECLINE: ProxyContext._decline,
    Step.CHECK_DONE: ProxyContext._check_done,
    Step.FORK_GROUP: ProxyContext._fork_group,
    Step.FORK_STEP: ProxyContext._fork_step,
    Step.ARM_STEP_TIMER: ProxyContext._arm_step_timer,
    Step.STOP_STEP_TIMER: ProxyContext._stop_step_timer,
    Step.STEP_ENDED: ProxyContext._step_ended,
    Step.SEND_BEST: ProxyContext._send_best,
    Step.ANSWER: ProxyContext._answer_now,
    Step.CANCEL_ALL: ProxyContext._cancel_all,
    Step.EXPIRE_TIMER_C: ProxyContext._expire_timer_c,
    Step.EXPIRE_HOP: ProxyContext._expire_hop,
    Step.EXPIRE_STEP: ProxyContext._expire_step,
}
