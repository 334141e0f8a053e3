"""Rule evaluation for one call: which targets ring, in which steps, and where the
call goes when a step fails.

`plan_leg` turns one user's rules, devices and the call (caller, regions, instant)
into a `LegPlan`: the rules that applied, the find-me steps, and the forward targets
for busy / no answer / unavailable. `CallRouter` walks legs as the proxy reports
outcomes, chaining forwards with loop prevention: an address is entered at most
once per call, the chain is bounded, and a target already rung is never rung again.

Pure and synchronous: the directory of rules and devices is given, time is `at`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Response
from sipline.core.uri import SipUri, parse_uri
from sipline.server.features.decisions import (
    Decision,
    Exhausted,
    Outcome,
    Reject,
    RingStep,
    RingTarget,
)
from sipline.server.features.history import DiversionReason, Hop, branch_history, cause_for
from sipline.server.features.rules import (
    Action,
    Rule,
    StepSpec,
    UserRules,
    caller_matches,
    target_aor,
)
from sipline.server.voicemail.address import TARGET as VOICEMAIL
from sipline.server.voicemail.address import voicemail_uri
from sipline.storage.base import Binding

__all__ = [
    "DEFAULT_NO_ANSWER_S",
    "CallInfo",
    "CallRouter",
    "Device",
    "Directory",
    "LegPlan",
    "RoutingSettings",
    "plan_leg",
    "target_key",
]

DEFAULT_NO_ANSWER_S = 20.0


@dataclass(frozen=True, slots=True)
class Device:
    """A registered contact of a user, with what we know about it."""

    contact: str
    binding: Binding | None = None
    q: float = 1.0
    label: str | None = None
    region: str | None = None
    updated_at: float = 0.0
    pidf: str = ""  # the PIDF-LO it registered with, if any (RFC 6442)


class Directory(Protocol):
    def is_local(self, host: str) -> bool: ...

    def rules(self, aor: str) -> UserRules | None: ...

    def devices(self, aor: str) -> list[Device]: ...


@dataclass(frozen=True, slots=True)
class CallInfo:
    callee: str  # the local address-of-record called, user@domain
    caller: str  # the From address, user@host (host lower-case)
    at: float  # wall-clock seconds (epoch) of the call
    caller_region: str | None = None


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    history_info: bool = True
    diversion: bool = True
    max_depth: int = 5  # forwards in one call


@dataclass(slots=True)
class StepPlan:
    targets: list[RingTarget]
    timeout_s: float | None
    spec: str  # what was written, for explanations


@dataclass(slots=True)
class LegPlan:
    """What to do with a call for one address."""

    aor: str
    notes: list[str] = field(default_factory=list)
    steps: list[StepPlan] = field(default_factory=list)
    reject: Reject | None = None
    forward_now: tuple[str, DiversionReason] | None = None
    dnd: bool = False
    on_busy: str | None = None
    on_no_answer: str | None = None
    on_unavailable: str | None = None
    external: bool = False

    def handler(self, outcome: Outcome) -> tuple[str, DiversionReason] | None:
        if outcome is Outcome.BUSY and self.on_busy:
            return self.on_busy, "do-not-disturb" if self.dnd else "user-busy"
        if outcome is Outcome.NO_ANSWER and self.on_no_answer:
            return self.on_no_answer, "no-answer"
        if outcome is Outcome.UNAVAILABLE and self.on_unavailable:
            return self.on_unavailable, "unavailable"
        return None


@lru_cache(maxsize=4096)  # contacts repeat call after call; parsing them is the cost
def target_key(uri: str) -> object:
    """Identity of a target for "never ring twice": the URI without its parameters."""
    try:
        parsed = parse_uri(uri)
    except RemoteProtocolError:
        return uri
    if isinstance(parsed, SipUri):
        return ("sip", parsed.user, parsed.host.lower(), parsed.port)
    return str(parsed).lower()


def current_region(devices: Sequence[Device]) -> str | None:
    """Where the user is now: the region of the device heard from most recently."""
    located = [d for d in devices if d.region]
    if not located:
        return None
    return max(located, key=lambda d: d.updated_at).region


def plan_leg(aor: str, call: CallInfo, directory: Directory) -> LegPlan:
    """Apply `aor`'s rules (or the defaults) to `call`."""
    rules = directory.rules(aor) or UserRules(aor)
    devices = directory.devices(aor)
    plan = LegPlan(aor)
    f = rules.forward
    plan.on_busy, plan.on_no_answer, plan.on_unavailable = f.busy, f.no_answer, f.unavailable
    blocked = next((p for p in rules.block if caller_matches(p, call.caller)), None)
    if blocked is not None:
        plan.notes.append(f"caller {call.caller} is blocked ({blocked})")
        plan.reject = Reject(603, "Decline")
        return plan
    if rules.dnd:
        plan.notes.append("do not disturb is on")
        plan.dnd = True
        return plan
    if f.always:
        plan.notes.append(f"forward always to {f.always}")
        plan.forward_now = (f.always, "unconditional")
        return plan
    here = current_region(devices)
    steps: Sequence[StepSpec] = rules.ring
    rule = _first_match(rules.rules, call, here)
    if rule is not None:
        plan.notes.append(
            f"rule {rule.name!r} ({rule.describe_conditions()}): {rule.action.describe()}"
        )
        action: Action = rule.action
        if action.kind == "reject":
            plan.reject = Reject(action.status, action.reason)
            return plan
        if action.kind == "forward" and action.target:
            plan.forward_now = (
                action.target,
                "time-of-day" if rule.schedule is not None else "unconditional",
            )
            return plan
        if action.kind == "dnd":
            plan.dnd = True
            return plan
        steps = action.steps
    no_answer_s = (f.no_answer_s or DEFAULT_NO_ANSWER_S) if f.no_answer else None
    if steps:
        for spec in steps:
            targets = _expand(spec.targets, devices, here, directory)
            plan.steps.append(
                StepPlan(targets, spec.timeout_s or no_answer_s, " + ".join(spec.targets))
            )
    else:
        # All devices together; lower q-values after higher ones (RFC 3261 §16.6).
        groups: dict[float, list[Device]] = {}
        for d in devices:
            groups.setdefault(d.q, []).append(d)
        for q in sorted(groups, reverse=True):
            plan.steps.append(
                StepPlan([_device_target(d) for d in groups[q]], no_answer_s, f"devices q={q:g}")
            )
    if not devices and not steps:
        plan.notes.append("no registered device")
    return plan


def _first_match(rules: Sequence[Rule], call: CallInfo, here: str | None) -> Rule | None:
    for rule in rules:
        if rule.schedule is not None and not rule.schedule.active(call.at):
            continue
        if rule.caller_region is not None and rule.caller_region != call.caller_region:
            continue
        if rule.callee_region is not None and rule.callee_region != here:
            continue
        if rule.callers and not any(caller_matches(p, call.caller) for p in rule.callers):
            continue
        return rule
    return None


def _device_target(d: Device) -> RingTarget:
    return RingTarget(d.contact, d.binding, label=d.label or "")


def _expand(
    specs: Sequence[str], devices: Sequence[Device], here: str | None, directory: Directory
) -> list[RingTarget]:
    out: list[RingTarget] = []
    for spec in specs:
        kind, _, arg = spec.partition(":")
        if spec == "devices":
            out += [_device_target(d) for d in devices]
        elif kind == "device":
            out += [_device_target(d) for d in devices if (d.label or "").lower() == arg.lower()]
        elif kind == "region":
            region = here if arg == "here" else arg
            out += [_device_target(d) for d in devices if region and d.region == region]
        else:
            other = target_aor(spec, directory.is_local)
            if other is not None:
                out += [_device_target(d) for d in directory.devices(other)]
            else:
                out.append(RingTarget(spec.removeprefix("user:"), label=spec))
    return out


_LEG_PRIORITY = (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.UNAVAILABLE, Outcome.FAILED)
_EXHAUSTED = {
    Outcome.BUSY: Exhausted(486, "Busy Here"),
    Outcome.NO_ANSWER: Exhausted(480, "Temporarily Unavailable (no answer)"),
    Outcome.UNAVAILABLE: Exhausted(480, "Temporarily Unavailable"),
    Outcome.FAILED: Exhausted(480, "Temporarily Unavailable"),
    Outcome.DECLINED: Exhausted(603, "Decline"),
}


class CallRouter:
    """The `RouteSession` for a call to a local user (see `decisions.RouteSession`)."""

    def __init__(
        self,
        call: CallInfo,
        directory: Directory,
        settings: RoutingSettings | None = None,
        *,
        on_leg: Callable[[LegPlan], None] | None = None,
        on_missed: Callable[[str, str], None] | None = None,
    ) -> None:
        self.call = call
        self.directory = directory
        self.settings = settings if settings is not None else RoutingSettings()
        self.rung: set[object] = set()
        self.hops: list[Hop] = []
        self.legs: list[LegPlan] = []
        self._leg: LegPlan | None = None
        self._step = 0
        self._outcomes: list[Outcome] = []
        self._on_leg = on_leg
        # (callee, caller) once a user's devices rang unanswered or were busy.
        self._on_missed = on_missed

    # -- RouteSession ------------------------------------------------------------------------
    def start(self) -> Decision:
        return self._enter(self.call.callee, None)

    def step_failed(self, outcome: Outcome, best: Response | None) -> Decision:
        if outcome is Outcome.DECLINED:
            return _EXHAUSTED[outcome]  # §16.7 step 5: a 6xx ends the search
        self._outcomes.append(outcome)
        return self._next_step()

    # -- walking -----------------------------------------------------------------------------
    def _enter(self, target: str, why: DiversionReason | None) -> Decision:
        while True:
            if self.hops and why is not None:
                self.hops[-1] = Hop(self.hops[-1].uri, why)
            if target == VOICEMAIL and self.hops:
                # RFC 4458 §3: the mailbox of the user being left, and why.
                mailbox = target_aor(self.hops[-1].uri, self.directory.is_local)
                if mailbox is None:
                    return Exhausted(480, "Temporarily Unavailable (no mailbox)")
                target = voicemail_uri(mailbox, cause_for(why or "unconditional"))
            aor = target_aor(target, self.directory.is_local)
            key = aor if aor is not None else target_key(target)
            if any(_hop_key(h, self.directory) == key for h in self.hops):
                return Exhausted(480, "Temporarily Unavailable (forwarding loop)")
            if len(self.hops) > self.settings.max_depth:
                return Exhausted(480, "Temporarily Unavailable (forwarding chain too long)")
            if aor is None:
                leg = LegPlan(target, external=True)
                leg.steps.append(StepPlan([RingTarget(target, label=target)], None, target))
                self.hops.append(Hop(_sip_form(target)))
            else:
                leg = plan_leg(aor, self.call, self.directory)
                self.hops.append(Hop(f"sip:{aor}"))
            self._begin(leg)
            if leg.reject is not None:
                return leg.reject
            if leg.forward_now is not None:
                target, why = leg.forward_now
                continue
            if leg.dnd:
                handled = leg.handler(Outcome.BUSY)
                if handled is None:
                    return Reject(486, "Busy Here (do not disturb)")
                target, why = handled
                continue
            return self._next_step()

    def _begin(self, leg: LegPlan) -> None:
        self._leg, self._step, self._outcomes = leg, 0, []
        self.legs.append(leg)
        if self._on_leg is not None:
            self._on_leg(leg)

    def _next_step(self) -> Decision:
        leg = self._leg
        assert leg is not None  # set by _enter before any step
        while self._step < len(leg.steps):
            step = leg.steps[self._step]
            self._step += 1
            fresh: list[RingTarget] = []
            for t in step.targets:
                key = target_key(t.uri)
                if key not in self.rung:
                    self.rung.add(key)
                    fresh.append(t)
            if not fresh:
                self._outcomes.append(Outcome.UNAVAILABLE)
                continue
            s = self.settings
            targets = tuple(
                RingTarget(
                    t.uri,
                    t.binding,
                    branch_history(
                        self.hops,
                        t.uri,
                        registered=t.binding is not None,
                        fork=i + 1,
                        history_info=s.history_info,
                        diversion=s.diversion,
                    ),
                    t.label,
                )
                for i, t in enumerate(fresh)
            )
            return RingStep(targets, step.timeout_s, label=f"{leg.aor}: {step.spec}")
        outcome = next((o for o in _LEG_PRIORITY if o in self._outcomes), Outcome.UNAVAILABLE)
        if (
            self._on_missed is not None
            and not leg.external
            and outcome in (Outcome.NO_ANSWER, Outcome.BUSY)
        ):
            self._on_missed(leg.aor, self.call.caller)
        handled = leg.handler(outcome)
        if handled is None:
            return _EXHAUSTED[outcome]
        target, why = handled
        return self._enter(target, why)


def _hop_key(hop: Hop, directory: Directory) -> object:
    aor = target_aor(hop.uri, directory.is_local)
    return aor if aor is not None else target_key(hop.uri)


def _sip_form(target: str) -> str:
    t = target.removeprefix("user:")
    return t if ":" in t.split("@", 1)[0] else f"sip:{t}"
