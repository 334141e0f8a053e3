"""What the user-agent commands print: a line for people, or with `--json` one JSON
object per line whose `event` is one of `EVENTS` and whose fields have the types
listed there (every field always present, `null` when unknown).

`call`, `answer`, `message`, `chat`, `presence` and `check` print events; the listing
commands (`user list`, `domain list`, `registrations`, `watchers list`, `route show`,
`route explain`) print one JSON document (see `DOCUMENTS`). README lists both.
"""

from __future__ import annotations

import json
import sys
import typing
from dataclasses import fields
from typing import Any

import click

from sipline.media_io.session import MediaStats

__all__ = ["DOCUMENTS", "EVENTS", "Output", "check_event"]

# A field's type: a JSON type, or a tuple of them (None for null).
FieldType = type | tuple[type | None, ...]
OPT_STR: FieldType = (str, None)
OPT_INT: FieldType = (int, None)


def _stats_fields() -> dict[str, FieldType]:
    hints = typing.get_type_hints(MediaStats)
    out: dict[str, FieldType] = {}
    for f in fields(MediaStats):
        hint = hints[f.name]
        args = typing.get_args(hint)
        out[f.name] = tuple(None if a is type(None) else a for a in args) if args else hint
    return out


EVENTS: dict[str, dict[str, FieldType]] = {
    # call and answer
    "calling": {"target": str, "uri": str},
    "retrying": {"request": str, "server": str, "waited_s": float},
    "progress": {"status": int, "reason": str, "early_media": bool},
    "answered": {
        "peer": str,
        "codec": OPT_STR,
        "contact": OPT_STR,
        "forwarded_from": OPT_STR,
        "forward_reason": OPT_STR,
    },
    "held": {"by_remote": bool},
    "resumed": {"by_remote": bool},
    "dtmf": {"digit": str, "method": str},
    "transfer": {"status": int, "reason": str},
    "ended": {"reason": str, "by": str, "status": OPT_INT},
    "stats": _stats_fields(),
    "waiting": {"contact": str, "registered": bool},
    "incoming": {"peer": str, "to": str},
    # answer and chat
    "message": {"sender": str, "text": str, "date": OPT_STR},
    # message and chat
    "delivered": {"target": str, "status": int},
    "stored": {"target": str, "status": int},
    "not_delivered": {"target": str, "status": int, "reason": str},
    "chatting": {"peer": str, "user": str},
    # presence and chat
    "published": {"status": str, "note": OPT_STR, "expires_s": int},
    "withdrawn": {"removed": bool},
    "presence": {
        "who": str,
        "state": str,
        "status": OPT_STR,
        "note": OPT_STR,
        "reason": OPT_STR,
    },
    # check
    "checked": {
        "file": str,
        "valid": bool,
        "kind": str,
        "reason": OPT_STR,
        "status": OPT_INT,
        "response": OPT_STR,
        "role": OPT_STR,
    },
}

# The listing commands print one JSON document: a list of objects with these keys, or
# an object with these keys (route show: keyed by address; route explain: its sections).
DOCUMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "user list": ("list", ("address", "username", "domain", "algorithms")),
    "domain list": ("list", ("domain", "users")),
    "registrations": (
        "list",
        (
            "aor",
            "contact",
            "expires_in",
            "q",
            "received",
            "path",
            "instance",
            "reg_id",
            "user_agent",
            "call_id",
            "cseq",
        ),
    ),
    "watchers list": ("object", ("rules", "subscriptions")),
    "messages list": (
        "list",
        (
            "id",
            "user",
            "sender",
            "state",
            "failure",
            "attempts",
            "content_type",
            "bytes",
            "received_at",
        ),
    ),
    "route show": ("object", ()),
    "route explain": ("object", ()),
}


def _type_ok(value: Any, expected: FieldType) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    for kind in kinds:
        if kind is None and value is None:
            return True
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind in (str, bool) and type(value) is kind:
            return True
    return False


def check_event(obj: dict[str, Any]) -> list[str]:
    """What is wrong with one `--json` line (nothing: an empty list)."""
    name = obj.get("event")
    schema = EVENTS.get(name) if isinstance(name, str) else None
    if schema is None:
        return [f"unknown event {name!r}"]
    problems = [f"{name}: no field {k!r}" for k in schema if k not in obj]
    problems += [f"{name}: unknown field {k!r}" for k in obj if k != "event" and k not in schema]
    problems += [
        f"{name}.{k}: {obj[k]!r} is not {schema[k]}"
        for k in schema
        if k in obj and not _type_ok(obj[k], schema[k])
    ]
    return problems


class Output:
    """Prints events: `text` for people, or the event as a JSON line."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, event: str, said: str | None, /, **values: Any) -> None:
        """`event` with `values` (checked against `EVENTS` when JSON); `said` is the line
        for people (None: nothing to say to them)."""
        if self.as_json:
            obj = {"event": event, **values}
            problems = check_event(obj)
            if problems:  # a programming error: show it rather than print a wrong schema
                raise ValueError("; ".join(problems))
            click.echo(json.dumps(obj, default=str))
        elif said is not None:
            click.echo(said)
        sys.stdout.flush()
