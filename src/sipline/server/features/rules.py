"""A user's routing rules as the router applies them: ring steps, forwards, and rules
with their conditions (schedule, regions, callers) and actions.

The document people write and its checks are `sipline.server.features.rules_document`
(`parse_rules` builds these values from it; `to_doc` writes them back).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sipline.core.errors import RemoteProtocolError
from sipline.core.uri import SipUri, parse_uri
from sipline.server.features.schedule import (
    DateRange,
    Schedule,
)
from sipline.server.voicemail.address import TARGET as VOICEMAIL
from sipline.server.voicemail.address import is_service_user

__all__ = [
    "ACTIONS",
    "FORWARD_KEYS",
    "Action",
    "Forwarding",
    "Rule",
    "RuleError",
    "StepSpec",
    "UserRules",
    "caller_matches",
    "target_aor",
]

ACTIONS = ("ring", "forward", "reject", "dnd")
FORWARD_KEYS = ("always", "busy", "no_answer", "no_answer_s", "unavailable")


class RuleError(ValueError):
    """A rule document is wrong; the message starts with the key at fault."""


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One find-me step: targets rung together, for at most `timeout_s`."""

    targets: tuple[str, ...]
    timeout_s: float | None = None

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"targets": list(self.targets)}
        if self.timeout_s is not None:
            doc["timeout_s"] = self.timeout_s
        return doc


@dataclass(frozen=True, slots=True)
class Forwarding:
    always: str | None = None
    busy: str | None = None
    no_answer: str | None = None
    no_answer_s: float | None = None
    unavailable: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FORWARD_KEYS if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # one of ACTIONS
    steps: tuple[StepSpec, ...] = ()
    target: str | None = None
    status: int = 480
    reason: str | None = None

    def describe(self) -> str:
        if self.kind == "ring":
            return "ring " + " then ".join(_describe_step(s) for s in self.steps)
        if self.kind == "forward":
            return f"forward to {self.target}"
        if self.kind == "reject":
            return f"reject with {self.status}" + (f" {self.reason!r}" if self.reason else "")
        return "do not disturb"

    def to_doc(self) -> Any:
        if self.kind == "ring":
            return [s.to_doc() for s in self.steps]
        if self.kind == "forward":
            return self.target
        if self.kind == "reject":
            doc: dict[str, Any] = {"status": self.status}
            if self.reason:
                doc["reason"] = self.reason
            return doc
        return True


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    action: Action
    schedule: Schedule | None = None
    caller_region: str | None = None
    callee_region: str | None = None
    callers: tuple[str, ...] = ()  # From patterns
    doc: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def conditions(self) -> tuple[str | None, str | None, tuple[str, ...]]:
        return (self.caller_region, self.callee_region, tuple(sorted(self.callers)))

    def describe_conditions(self) -> str:
        parts = []
        if self.schedule is not None:
            parts.append(self.schedule.describe())
        if self.caller_region:
            parts.append(f"caller in {self.caller_region}")
        if self.callee_region:
            parts.append(f"callee in {self.callee_region}")
        if self.callers:
            parts.append("from " + ", ".join(self.callers))
        return "; ".join(parts) or "always"


@dataclass(frozen=True, slots=True)
class UserRules:
    aor: str
    zone: str = "UTC"
    holidays: tuple[DateRange, ...] = ()
    dnd: bool = False
    block: tuple[str, ...] = ()
    ring: tuple[StepSpec, ...] = ()  # empty: all devices by q-value
    forward: Forwarding = field(default_factory=Forwarding)
    rules: tuple[Rule, ...] = ()

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.zone != "UTC":
            doc["zone"] = self.zone
        if self.holidays:
            doc["holidays"] = [str(h) for h in self.holidays]
        if self.dnd:
            doc["dnd"] = True
        if self.block:
            doc["block"] = list(self.block)
        if self.ring:
            doc["ring"] = [s.to_doc() for s in self.ring]
        if self.forward.to_doc():
            doc["forward"] = self.forward.to_doc()
        if self.rules:
            doc["rules"] = [dict(r.doc) for r in self.rules]
        return doc

    def forward_targets(self) -> list[str]:
        """Every target a forward of this user may lead to (for loop checks, preloading)."""
        f = self.forward
        found = [t for t in (f.always, f.busy, f.no_answer, f.unavailable) if t]
        found += [r.action.target for r in self.rules if r.action.target]
        return found


def caller_matches(pattern: str, caller: str) -> bool:
    """`caller` is `user@host` (host lower-case); patterns are shell-style globs on it.
    A pattern written as a SIP URI is compared by its address part."""
    p = pattern.strip()
    if p.lower().startswith(("sip:", "sips:")):
        p = p.split(":", 1)[1].split(";", 1)[0]
    user, _, host = p.rpartition("@")
    p = f"{user}@{host.lower()}" if user else p.lower()
    return fnmatch.fnmatchcase(caller, p)


def target_aor(target: str, is_local: Callable[[str], bool]) -> str | None:
    """The local `user@domain` a forward target names, or None for a foreign URI."""
    t = target.strip()
    if t == VOICEMAIL:
        return None  # a service, not a user
    if t.startswith("user:"):
        t = t[5:]
    if ":" not in t.split("@", 1)[0]:
        user, _, host = t.rpartition("@")
        return f"{user}@{host.lower()}" if user and is_local(host) else None
    try:
        uri = parse_uri(t)
    except RemoteProtocolError:
        return None
    if isinstance(uri, SipUri) and uri.user and is_local(uri.host):
        return None if is_service_user(uri.user) else uri.aor
    return None


def _describe_step(step: StepSpec) -> str:
    text = " + ".join(step.targets)
    return text + (f" for {step.timeout_s:g} s" if step.timeout_s is not None else "")
