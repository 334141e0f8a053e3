"""`sipline route explain`: the routing decision for a call, without placing it.

`explain_call` walks the same `plan_leg` the server runs: the rules that apply to
the callee at the instant given, the find-me steps with their targets, and for
each way a leg can fail (busy, no answer, unavailable) where the call would go
next, recursively, with the loop and depth limits the server applies. Targets that
an earlier leg already rang are marked, as the server would skip them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sipline.core.message import Request
from sipline.server.features.decisions import Exhausted, Outcome, Reject, RingStep
from sipline.server.features.emergency import CallerLocation, EmergencySession, EmergencySettings
from sipline.server.features.forwarding import (
    CallInfo,
    CallRouter,
    Directory,
    RoutingSettings,
    plan_leg,
    target_key,
)
from sipline.server.features.rules import target_aor

__all__ = ["Explanation", "explain_call", "explain_emergency"]

_FAILURES = (
    (Outcome.BUSY, "busy"),
    (Outcome.NO_ANSWER, "no answer"),
    (Outcome.UNAVAILABLE, "unavailable"),
)


@dataclass(slots=True)
class Explanation:
    header: list[str]
    legs: dict[str, Any]
    lines: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"call": self.header, "route": self.legs}

    def text(self) -> str:
        return "\n".join([*self.header, *self.lines])


def explain_call(
    call: CallInfo, directory: Directory, settings: RoutingSettings, *, zone_label: str
) -> Explanation:
    at = datetime.fromtimestamp(call.at, UTC)
    header = [
        f"call to {call.callee} from {call.caller}",
        f"at {zone_label} ({at:%Y-%m-%d %H:%M} UTC); caller region: {call.caller_region or 'unknown'}",
    ]
    rung: set[object] = set()
    lines: list[str] = []
    legs = _leg(call.callee, None, call, directory, settings, [], rung, lines, "")
    order, end = unanswered_order(call, directory, settings)
    legs["unanswered"] = {"targets": order, "then": end}
    lines.append("if nobody answers, the server rings in this order:")
    lines.extend(f"  {i}. {uri}" for i, uri in enumerate(order, 1))
    lines.append(f"  then answers {end}")
    return Explanation(header, legs, lines)


def unanswered_order(
    call: CallInfo, directory: Directory, settings: RoutingSettings
) -> tuple[list[str], str]:
    """The targets the server itself would ring, in order, if no one answered: the
    router is driven as the proxy drives it, every step failing as unanswered (its
    timeout fires, or Timer C's 408 when it has none)."""
    router = CallRouter(call, directory, settings)
    decision = router.start()
    order: list[str] = []
    while isinstance(decision, RingStep) and len(order) < 200:
        order += [t.uri for t in decision.targets]
        outcome = Outcome.NO_ANSWER if decision.timeout_s is not None else Outcome.UNAVAILABLE
        decision = router.step_failed(outcome, None)
    if isinstance(decision, Reject | Exhausted):
        return order, f"{decision.status} {decision.reason or ''}".strip()
    return order, "(stopped listing)"


def _leg(
    target: str,
    why: str | None,
    call: CallInfo,
    directory: Directory,
    settings: RoutingSettings,
    chain: list[object],
    rung: set[object],
    lines: list[str],
    indent: str,
) -> dict[str, Any]:
    aor = target_aor(target, directory.is_local)
    key = aor if aor is not None else target_key(target)
    out: dict[str, Any] = {"address": aor or target}
    title = f"{indent}{aor or target}" + (f"  [{why}]" if why else "")
    if key in chain:
        lines.append(f"{title}: already in this call: forwarding loop, stops here")
        out["result"] = "loop: stops here"
        return out
    if len(chain) > settings.max_depth:
        lines.append(f"{title}: more than {settings.max_depth} forwards: stops here")
        out["result"] = "too many forwards: stops here"
        return out
    lines.append(title)
    inner = indent + "  "
    chain = [*chain, key]
    if aor is None:
        out["steps"] = [_step([target], None, rung, lines, inner, 1)]
        return out
    plan = plan_leg(aor, call, directory)
    out["rules"] = list(plan.notes)
    lines.extend(f"{inner}{note}" for note in plan.notes)
    if plan.reject is not None:
        text = f"{plan.reject.status} {plan.reject.reason or ''}".strip()
        lines.append(f"{inner}=> answer {text}")
        out["result"] = f"answer {text}"
        return out
    if plan.forward_now is not None:
        to, reason = plan.forward_now
        out["forward"] = _leg(to, reason, call, directory, settings, chain, rung, lines, inner)
        return out
    if plan.dnd:
        handled = plan.handler(Outcome.BUSY)
        if handled is None:
            lines.append(f"{inner}=> answer 486 Busy Here (do not disturb)")
            out["result"] = "answer 486 Busy Here (do not disturb)"
        else:
            out["busy"] = _leg(
                handled[0], handled[1], call, directory, settings, chain, rung, lines, inner
            )
        return out
    if not plan.steps:
        lines.append(f"{inner}no target to ring")
    out["steps"] = [
        _step(
            [t.uri for t in s.targets],
            s.timeout_s,
            rung,
            lines,
            inner,
            i + 1,
            s.spec,
            [t.label for t in s.targets],
        )
        for i, s in enumerate(plan.steps)
    ]
    for outcome, name in _FAILURES:
        handled = plan.handler(outcome)
        if handled is not None:
            lines.append(f"{inner}on {name}:")
            out[outcome.value] = _leg(
                handled[0], handled[1], call, directory, settings, chain, rung, lines, inner + "  "
            )
    return out


def _step(
    targets: list[str],
    timeout_s: float | None,
    rung: set[object],
    lines: list[str],
    indent: str,
    number: int,
    spec: str = "",
    labels: list[str] | None = None,
) -> dict[str, Any]:
    when = f" for {timeout_s:g} s" if timeout_s is not None else ""
    lines.append(f"{indent}step {number}: ring {spec or 'target'}{when}")
    listed = []
    for i, uri in enumerate(targets):
        key = target_key(uri)
        seen = key in rung
        rung.add(key)
        label = labels[i] if labels and labels[i] and labels[i] != uri else ""
        note = (f" ({label})" if label else "") + (" - already rung, skipped" if seen else "")
        lines.append(f"{indent}  {uri}{note}")
        listed.append({"uri": uri, "label": label, "skipped": seen})
    if not targets:
        lines.append(f"{indent}  (no matching device)")
    return {"targets": listed, "timeout_s": timeout_s, "spec": spec}


def explain_emergency(
    request: Request, found: CallerLocation, settings: EmergencySettings, callback: str
) -> Explanation:
    session = EmergencySession(request, found, callback, settings, "explain.invalid")
    header = [f"emergency call to {request.uri_text} from {callback}"]
    region = found.region.name if found.region is not None else "none"
    lines = [
        f"caller location: {found.location.describe() if found.location else 'unknown'} ({found.how})",
        f"caller region: {region}",
        "never refused for credentials; forwarding rules, do-not-disturb and blocklists do not apply",
    ]
    targets = []
    decision = session.start()
    n = 0
    while isinstance(decision, RingStep):
        n += 1
        wait = decision.hop_timeout_s
        tail = f" (next one if it sends nothing within {wait:g} s)" if wait else ""
        lines.append(f"step {n}: ring PSAP {decision.targets[0].uri}{tail}")
        targets.append(decision.targets[0].uri)
        decision = session.step_failed(Outcome.UNAVAILABLE, None)
    if n == 0 and isinstance(decision, Reject):
        lines.append(f"=> answer {decision.status} {decision.reason or ''}".rstrip())
    lines.append(
        f"callback identity: P-Asserted-Identity: <{callback}> if the caller authenticated"
        " (RFC 3325 §9.1), else none"
    )
    if found.location is not None:
        lines.append("location attached: Geolocation header + PIDF-LO body part (RFC 6442)")
    legs = {"psaps": targets, "region": region, "callback": callback, "location": found.how}
    return Explanation(header, legs, lines)
