"""A directory of users, devices and rules built in memory, for rule evaluation tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sipline.server.features.directory import MemoryDirectory
from sipline.server.features.rules import UserRules
from sipline.server.features.rules_document import parse_rules
from sipline.storage.base import Binding, DeviceInfo

DOMAIN = "example.com"
TODAY = date(2026, 12, 1)


def binding(aor: str, contact: str, q: float | None = None, updated_at: float = 0.0) -> Binding:
    return Binding(aor, contact, 1e12, "cid", 1, q=q, updated_at=updated_at)


def directory(
    devices: Mapping[str, list[Binding]],
    rules: Mapping[str, Mapping[str, Any]] | None = None,
    infos: list[DeviceInfo] | None = None,
) -> MemoryDirectory:
    parsed: dict[str, UserRules] = {
        aor: parse_rules(aor, doc, today=TODAY) for aor, doc in (rules or {}).items()
    }
    by_aor: dict[str, dict[str, DeviceInfo]] = {}
    for info in infos or []:
        by_aor.setdefault(info.aor, {})[info.device] = info
    return MemoryDirectory(
        rules=parsed,
        infos=by_aor,
        bindings=lambda aor: list(devices.get(aor, [])),
        is_local=lambda host: host.lower() == DOMAIN,
    )
