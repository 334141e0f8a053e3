"""A user's rules document as `sipline route set` handles it: read from a file (TOML
or JSON), changed by the command's options, summarised in a few lines, and checked
for targets that ring nobody."""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sipline.server.features.rules import UserRules, target_aor
from sipline.storage.base import Store, split_address

__all__ = ["FORWARDS", "apply_options", "read_document", "summary", "unknown_targets"]

FORWARDS = ("always", "busy", "no_answer", "unavailable")


def unknown_targets(store: Store, rules: UserRules, is_local: Callable[[str], bool]) -> list[str]:
    """Targets that ring nobody today: a device label no device of the user has, a local
    address that is no user. Saved all the same (a device may be labelled later), but
    said."""
    labels = {(i.label or "").lower() for i in store.list_device_info(rules.aor) if i.label}
    steps = [*rules.ring, *(s for r in rules.rules for s in r.action.steps)]
    found: list[str] = []
    for target in dict.fromkeys([*(t for s in steps for t in s.targets), *rules.forward_targets()]):
        kind, _, name = target.partition(":")
        if kind == "device" and name.lower() not in labels:
            found.append(
                f"{rules.aor} has no device labelled {name!r} (label one with "
                f"`sipline route device {rules.aor} CONTACT --label {name}`)"
            )
        elif kind not in ("device", "region", "devices"):
            other = target_aor(target, is_local)
            if other is not None and store.get_user(*split_address(other)) is None:
                found.append(f"target {target}: no user {other} (calls to it get 404)")
    return found


def read_document(file: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise click.ClickException(f"{file} is not valid JSON: {exc}") from None
    else:
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise click.ClickException(f"{file} is not valid TOML: {exc}") from None
    if not isinstance(doc, dict):
        raise click.ClickException(f"{file}: the rules must be a table")
    return doc


def apply_options(
    doc: dict[str, Any],
    dnd: bool | None,
    block: tuple[str, ...],
    unblock: tuple[str, ...],
    no_forward: tuple[str, ...],
    no_answer_s: float | None,
    forwards: dict[str, str | None],
) -> None:
    if dnd is not None:
        doc["dnd"] = dnd
    if block or unblock:
        current = [p for p in doc.get("block", []) if p not in unblock]
        doc["block"] = current + [p for p in block if p not in current]
    forward = dict(doc.get("forward", {}))
    for kind in no_forward:
        for k in FORWARDS if kind == "all" else (kind,):
            forward.pop(k, None)
            if k == "no_answer":
                forward.pop("no_answer_s", None)
    forward.update({kind: target for kind, target in forwards.items() if target is not None})
    if no_answer_s is not None:
        forward["no_answer_s"] = no_answer_s
    if forward:
        doc["forward"] = forward
    else:
        doc.pop("forward", None)


def summary(rules: UserRules) -> list[str]:
    out = []
    if rules.dnd:
        out.append("do not disturb: on")
    if rules.block:
        out.append("blocked: " + ", ".join(rules.block))
    f = rules.forward
    for kind in FORWARDS:
        target = getattr(f, kind)
        if target:
            extra = f" after {f.no_answer_s or 20:g} s" if kind == "no_answer" else ""
            out.append(f"forward {kind.replace('_', ' ')}{extra}: {target}")
    if rules.ring:
        out.append(
            "ring: "
            + " then ".join(
                " + ".join(s.targets) + (f" ({s.timeout_s:g} s)" if s.timeout_s else "")
                for s in rules.ring
            )
        )
    out.extend(
        f"rule {r.name!r}: {r.describe_conditions()}: {r.action.describe()}" for r in rules.rules
    )
    return out or ["defaults: ring every device, no forwarding"]
