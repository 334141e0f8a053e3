"""A user's routing rules: the document people write, checked when it is saved.

The document is a TOML or JSON table (see README, "Routing features"):

    zone = "Europe/Berlin"                       # for schedules; default UTC
    holidays = ["2026-12-24..2026-12-26"]
    dnd = false                                  # do not disturb: callers get "busy"
    block = ["*@spam.example", "bob@example.com"]
    ring = [{targets = ["devices"], timeout_s = 15}, {targets = ["sip:+49170@gw.example.com"]}]
    [forward]
    always = "bob@example.com"                   # or busy, no_answer (+ no_answer_s), unavailable
    [[rules]]
    name = "office"; days = ["mon-fri"]; hours = ["09:00-17:00"]; except_holidays = true
    ring = [{targets = ["device:desk"]}]

Rules are tried in order and the first whose conditions hold decides (ring, forward,
reject or dnd). Two rules with a schedule and the same other conditions must not
apply at the same instant unless they do the same thing: `parse_rules` refuses
them, naming both rules and the first instant they meet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

from sipline.core.errors import RemoteProtocolError
from sipline.core.uri import SipUri, TelUri, parse_uri
from sipline.server.features.rules import (
    ACTIONS,
    FORWARD_KEYS,
    Action,
    Forwarding,
    Rule,
    RuleError,
    StepSpec,
    UserRules,
    target_aor,
)
from sipline.server.features.schedule import (
    DateRange,
    Schedule,
    ScheduleError,
    first_overlap,
    load_zone,
    parse_date_ranges,
    parse_days,
    parse_windows,
)
from sipline.server.voicemail.address import TARGET as VOICEMAIL

__all__ = ["check_forward_loops", "parse_rules"]

_TOP_KEYS = ("zone", "holidays", "dnd", "block", "ring", "forward", "rules")
_RULE_KEYS = (
    "name",
    "days",
    "hours",
    "dates",
    "on_holidays",
    "except_holidays",
    "zone",
    "caller_region",
    "callee_region",
    "from",
    *ACTIONS,
)
_MAX_STEPS = 10
_MAX_TARGETS = 20
_MAX_RULES = 50
_MAX_BLOCK = 500


def parse_rules(
    aor: str,
    doc: Mapping[str, Any],
    *,
    today: date,
    regions: Sequence[str] | None = None,
    check: bool = True,
) -> UserRules:
    """Check `doc` and build the rules of `aor`; `RuleError` names what is wrong.
    `regions`, when given, are the region names a rule may refer to. `check=False`
    skips the schedule overlap search (for documents that passed it when saved)."""
    if not isinstance(doc, Mapping):
        raise RuleError("rules: must be a table")
    _unknown(doc, _TOP_KEYS, "")
    zone = _str(doc, "zone", "") or "UTC"
    try:
        load_zone(zone)
    except ScheduleError as exc:
        raise RuleError(f"zone: {exc}") from None
    holidays = _dates(doc, "holidays", "")
    dnd = _bool(doc, "dnd", "")
    block = tuple(_strlist(doc, "block", ""))
    if len(block) > _MAX_BLOCK:
        raise RuleError(f"block: at most {_MAX_BLOCK} entries")
    ring = _steps(doc["ring"], "ring") if "ring" in doc else ()
    forward = _forwarding(doc.get("forward", {}), aor)
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list) or not all(isinstance(r, Mapping) for r in raw_rules):
        raise RuleError("rules: must be a list of tables ([[rules]])")
    if len(raw_rules) > _MAX_RULES:
        raise RuleError(f"rules: at most {_MAX_RULES} rules")
    rules = []
    names: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule(raw, f"rules[{i}].", zone, holidays, regions, aor)
        if rule.name in names:
            raise RuleError(f"rules[{i}].name: {rule.name!r} is used by an earlier rule")
        names.add(rule.name)
        rules.append(rule)
    if check:
        _check_contradictions(rules, today)
    return UserRules(aor, zone, holidays, dnd, block, ring, forward, tuple(rules))


def check_forward_loops(
    aor: str,
    rules: UserRules,
    lookup: Callable[[str], UserRules | None],
    is_local: Callable[[str], bool],
) -> None:
    """Refuse a chain of unconditional forwards that comes back to where it began.
    (Conditional chains, busy to busy, are cut at call time: no target rings twice.)"""
    seen = [aor]
    current: UserRules | None = rules
    while current is not None and current.forward.always:
        nxt = target_aor(current.forward.always, is_local)
        if nxt is None:
            return
        if nxt in seen:
            chain = " -> ".join([*seen, nxt])
            raise RuleError(f"forward.always: forwarding loop {chain}")
        seen.append(nxt)
        current = rules if nxt == aor else lookup(nxt)


def _rule(
    raw: Mapping[str, Any],
    where: str,
    zone: str,
    holidays: tuple[DateRange, ...],
    regions: Sequence[str] | None,
    aor: str,
) -> Rule:
    _unknown(raw, _RULE_KEYS, where)
    name = _str(raw, "name", where)
    if not name:
        raise RuleError(f"{where}name: every rule needs a name")
    actions = [k for k in ACTIONS if k in raw]
    if len(actions) != 1:
        raise RuleError(
            f"{where}{'/'.join(ACTIONS)}: give exactly one action, not {actions or 'none'}"
        )
    kind = actions[0]
    value = raw[kind]
    if kind == "ring":
        action = Action("ring", steps=_steps(value, f"{where}ring"))
    elif kind == "forward":
        action = Action("forward", target=_target(value, f"{where}forward", aor, forward=True))
    elif kind == "reject":
        action = _reject(value, f"{where}reject")
    else:
        if value is not True:
            raise RuleError(f"{where}dnd: must be true in a rule")
        action = Action("dnd")
    rule_zone = _str(raw, "zone", where) or zone
    schedule = None
    if any(k in raw for k in ("days", "hours", "dates", "on_holidays", "except_holidays")):
        try:
            days = (
                parse_days(_strlist(raw, "days", where)) if "days" in raw else frozenset(range(7))
            )
            windows = parse_windows(_strlist(raw, "hours", where)) if "hours" in raw else ()
        except ScheduleError as exc:
            raise RuleError(f"{where}{'days' if 'hours' not in raw else 'hours'}: {exc}") from None
        dates = _dates(raw, "dates", where)
        on_holidays, except_holidays = (
            _bool(raw, "on_holidays", where),
            _bool(raw, "except_holidays", where),
        )
        if (on_holidays or except_holidays) and not holidays:
            raise RuleError(f"{where}on_holidays: no holidays are defined (top-level holidays)")
        if on_holidays and except_holidays:
            raise RuleError(f"{where}on_holidays: cannot be combined with except_holidays")
        if on_holidays:
            if dates:
                raise RuleError(f"{where}on_holidays: cannot be combined with dates")
            dates = holidays
        try:
            schedule = Schedule(
                rule_zone, days, windows, dates, holidays if except_holidays else ()
            )
        except ScheduleError as exc:
            raise RuleError(f"{where}zone: {exc}") from None
    elif "zone" in raw:
        raise RuleError(f"{where}zone: only means something with days, hours or dates")
    caller_region = _region(raw, "caller_region", where, regions)
    callee_region = _region(raw, "callee_region", where, regions)
    callers = tuple(_strlist(raw, "from", where))
    return Rule(name, action, schedule, caller_region, callee_region, callers, dict(raw))


def _check_contradictions(rules: Sequence[Rule], today: date) -> None:
    for j, later in enumerate(rules):
        for i in range(j):
            earlier = rules[i]
            if earlier.conditions() != later.conditions():
                continue
            if earlier.schedule is None:
                raise RuleError(
                    f"rules[{j}]: {later.name!r} can never apply: {earlier.name!r} before it"
                    " takes the same calls at all times"
                )
            if later.schedule is None or earlier.action == later.action:
                continue
            at = first_overlap(earlier.schedule, later.schedule, today=today)
            if at is not None:
                raise RuleError(
                    f"rules[{j}]: {later.name!r} ({later.action.describe()}) and"
                    f" {earlier.name!r} ({earlier.action.describe()}) both apply at"
                    f" {at:%Y-%m-%d %H:%M} UTC: their schedules overlap (narrow one of them,"
                    " or give the other except_holidays = true if one is for holidays)"
                )


def _forwarding(raw: Any, aor: str) -> Forwarding:
    if not isinstance(raw, Mapping):
        raise RuleError("forward: must be a table ([forward])")
    _unknown(raw, FORWARD_KEYS, "forward.")
    values = {
        k: _target(raw[k], f"forward.{k}", aor, forward=True)
        for k in ("always", "busy", "no_answer", "unavailable")
        if k in raw
    }
    no_answer_s = (
        _seconds(raw["no_answer_s"], "forward.no_answer_s") if "no_answer_s" in raw else None
    )
    if no_answer_s is not None and "no_answer" not in values:
        raise RuleError("forward.no_answer_s: needs forward.no_answer")
    return Forwarding(no_answer_s=no_answer_s, **values)


def _steps(raw: Any, where: str) -> tuple[StepSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise RuleError(f"{where}: must be a non-empty list of steps ({{targets = [...]}})")
    if len(raw) > _MAX_STEPS:
        raise RuleError(f"{where}: at most {_MAX_STEPS} steps")
    steps = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if isinstance(item, str):
            item = {"targets": [item]}
        if not isinstance(item, Mapping):
            raise RuleError(f"{at}: must be a table with targets and timeout_s")
        _unknown(item, ("targets", "timeout_s"), f"{at}.")
        targets = item.get("targets")
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not targets or len(targets) > _MAX_TARGETS:
            raise RuleError(f"{at}.targets: must be a list of 1 to {_MAX_TARGETS} targets")
        checked = tuple(_target(t, f"{at}.targets", "", forward=False) for t in targets)
        timeout = _seconds(item["timeout_s"], f"{at}.timeout_s") if "timeout_s" in item else None
        steps.append(StepSpec(checked, timeout))
    return tuple(steps)


def _target(raw: Any, where: str, aor: str, *, forward: bool) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise RuleError(f"{where}: must be a target string, not {raw!r}")
    t = raw.strip()
    if forward and t == VOICEMAIL:
        return t  # the user's own mailbox on the media host (README "Voicemail and email")
    if not forward:
        if t == "devices":
            return t
        kind, _, arg = t.partition(":")
        if kind in ("device", "region"):
            if not arg:
                raise RuleError(f"{where}: {t!r} needs a name after the colon")
            return t
    body = t[5:] if t.startswith("user:") else t
    if ":" not in body.split("@", 1)[0]:
        user, at, host = body.rpartition("@")
        if not at or not user or not host or any(c in body for c in " <>\"'"):
            raise RuleError(
                f"{where}: {raw!r} is not a target (user@domain, sip:/sips:/tel: URI"
                + (")" if forward else ", devices, device:NAME, region:NAME)")
            )
        address = f"{user}@{host.lower()}"
    else:
        try:
            uri = parse_uri(body)
        except RemoteProtocolError as exc:
            raise RuleError(f"{where}: {raw!r} is not a valid URI ({exc.reason})") from None
        if not isinstance(uri, SipUri | TelUri):
            raise RuleError(f"{where}: {raw!r} must be a sip:, sips: or tel: URI")
        address = uri.aor if isinstance(uri, SipUri) and uri.user else ""
    if forward and aor and address == aor:
        raise RuleError(f"{where}: {raw!r} forwards {aor} to itself")
    return t


def _reject(raw: Any, where: str) -> Action:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = {"status": raw}
    if not isinstance(raw, Mapping):
        raise RuleError(f'{where}: must be a status (e.g. 480) or {{status = 480, reason = "..."}}')
    _unknown(raw, ("status", "reason"), f"{where}.")
    status = raw.get("status", 480)
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 699:
        raise RuleError(f"{where}.status: must be a 4xx, 5xx or 6xx status, not {status!r}")
    reason = raw.get("reason")
    if reason is not None and (
        not isinstance(reason, str) or any(c in reason for c in "\r\n") or len(reason) > 200
    ):
        raise RuleError(f"{where}.reason: must be one line of text (at most 200 characters)")
    return Action("reject", status=status, reason=reason)


def _region(
    raw: Mapping[str, Any], key: str, where: str, regions: Sequence[str] | None
) -> str | None:
    value = _str(raw, key, where)
    if not value:
        return None
    if regions is not None and value not in regions:
        known = ", ".join(regions) or "none configured"
        raise RuleError(f"{where}{key}: unknown region {value!r} (known: {known})")
    return value


def _unknown(raw: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in raw:
        if key not in known:
            raise RuleError(f"{where}{key}: unknown key (known: {', '.join(known)})")


def _str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise RuleError(f"{where}{key}: must be a string, not {value!r}")
    return value.strip()


def _bool(raw: Mapping[str, Any], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise RuleError(f"{where}{key}: must be true or false, not {value!r}")
    return value


def _strlist(raw: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = raw.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where}{key}: must be a list of strings")
    return [v.strip() for v in value]


def _dates(raw: Mapping[str, Any], key: str, where: str) -> tuple[DateRange, ...]:
    try:
        return parse_date_ranges(_strlist(raw, key, where))
    except ScheduleError as exc:
        raise RuleError(f"{where}{key}: {exc}") from None


def _seconds(raw: Any, where: str) -> float:
    ok = isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw)
    if not ok or not 0 < raw <= 3600:
        raise RuleError(f"{where}: must be a number of seconds from 0 to 3600, not {raw!r}")
    return float(raw)
