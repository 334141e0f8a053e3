"""The rules and devices a call's routing may look at, gathered in memory.

`MemoryDirectory` implements `router.Directory` over plain mappings (the parsed
rules, the per-device information) and a function giving a user's current bindings,
so the server (from its caches) and `sipline route explain` (from the database)
evaluate rules the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sipline.server.features.forwarding import Device
from sipline.server.features.rules import RuleError, UserRules
from sipline.server.features.rules_document import parse_rules
from sipline.storage.base import Binding, DeviceInfo

__all__ = ["MemoryDirectory", "device_key", "load_rules"]

log = logging.getLogger("sipline.features")


def device_key(binding: Binding) -> str:
    """How device information is keyed: the instance (RFC 5626 §4.1), else the contact."""
    return binding.instance or binding.contact


def load_rules(aor: str, document: str, *, now: float) -> UserRules | None:
    """A stored document, parsed without the save-time checks (it passed them);
    None (and a warning) if it cannot be read any more."""
    try:
        doc = json.loads(document)
        today = datetime.fromtimestamp(now, UTC).date()
        return parse_rules(aor, doc, today=today, check=False)
    except (ValueError, RuleError) as exc:
        log.warning("ignoring the stored rules of %s: %s", aor, exc)
        return None


class MemoryDirectory:
    def __init__(
        self,
        *,
        rules: Mapping[str, UserRules],
        infos: Mapping[str, Mapping[str, DeviceInfo]],
        bindings: Callable[[str], list[Binding]],
        is_local: Callable[[str], bool],
    ) -> None:
        self._rules = rules
        self._infos = infos
        self._bindings = bindings
        self._is_local = is_local

    def is_local(self, host: str) -> bool:
        return self._is_local(host)

    def rules(self, aor: str) -> UserRules | None:
        return self._rules.get(aor)

    def has_bindings(self, aor: str) -> bool:
        return bool(self._bindings(aor))

    def devices(self, aor: str) -> list[Device]:
        infos = self._infos.get(aor, {})
        out = []
        for b in self._bindings(aor):
            info = infos.get(device_key(b)) or infos.get(b.contact)
            out.append(
                Device(
                    contact=b.contact,
                    binding=b,
                    q=b.q if b.q is not None else 1.0,
                    label=info.label if info else None,
                    region=info.region if info else None,
                    updated_at=max(b.updated_at, info.updated_at if info else 0.0),
                    pidf=(info.pidf or "") if info else "",
                )
            )
        return out
