"""Reloading the configuration of a running server (SIGHUP, POST /api/reload): which
keys apply at once, and the configuration that results (README "Operating sipline").

A pure function of the running configuration and the one just read: every changed key
is either applied or named as needing a restart.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from sipline.server.config import ServerConfig
from sipline.server.config_values import ConfigError, changed_keys, section_keys
from sipline.server.ops.config import OPS_SECTIONS

__all__ = ["LIVE_KEYS", "plan_reload", "reload"]

log = logging.getLogger("sipline.server")

# What a reload applies at once: these keys, and every key of the operator's sections
# but the HTTP listener's address and certificate (they cannot move under a running
# listener). Any other change is named as needing a restart.
LIVE_KEYS = frozenset(
    {
        "server.log_level",
        "server.domains",
        "registrar.min_expires",
        "registrar.max_expires",
        "registrar.default_expires",
    }
)
_RESTART_OPS = frozenset({"http.listen", "http.tls_cert", "http.tls_key"})


def is_live(key: str) -> bool:
    section = key.partition(".")[0]
    return key in LIVE_KEYS or (section in OPS_SECTIONS and key not in _RESTART_OPS)


def reload(
    current: ServerConfig,
    load: Callable[[], ServerConfig] | None,
    apply: Callable[[ServerConfig], None],
) -> dict[str, Any]:
    """Read the configuration again (`load`), `apply` what can change live, and say
    what was applied and what needs a restart (logged too, in the new log format)."""
    if load is None:
        return {"applied": [], "restart_needed": [], "error": "no configuration file"}
    try:
        new = load()
    except ValueError as exc:
        log.warning("reload: configuration not changed: %s", exc)
        return {"applied": [], "restart_needed": [], "error": str(exc)}
    config, live, later = plan_reload(current, new)
    apply(config)
    log.warning(
        "reload: applied %s%s",
        ", ".join(live) or "nothing (no change)",
        f"; needs a restart: {', '.join(later)}" if later else "",
    )
    return {"applied": live, "restart_needed": later}


def plan_reload(old: ServerConfig, new: ServerConfig) -> tuple[ServerConfig, list[str], list[str]]:
    """(the configuration to run with, the keys applied, the keys needing a restart)."""
    changed = changed_keys(old, new)
    live = [key for key in changed if is_live(key)]
    later = [key for key in changed if not is_live(key)]
    by_section: dict[str, list[str]] = {}
    for key in live:
        section, _, name = key.partition(".")
        by_section.setdefault(section, []).append(name)
    merged = old
    for section, names in by_section.items():
        try:
            merged = _take(merged, new, section, names)
        except ConfigError:  # valid only with a key that needs a restart
            live = [k for k in live if not k.startswith(f"{section}.")]
            later += [f"{section}.{name}" for name in names]
    return merged, live, later


def _take(cfg: ServerConfig, new: ServerConfig, section: str, names: list[str]) -> ServerConfig:
    """`cfg` with the values of `section`'s keys `names` taken from `new`."""
    ops = section in OPS_SECTIONS
    current: Any = getattr(cfg.ops if ops else cfg, section)
    source: Any = getattr(new.ops if ops else new, section)
    fields = section_keys(type(current))
    attrs = [fields[name].name for name in names]
    updated = dataclasses.replace(current, **{a: getattr(source, a) for a in attrs})
    if ops:
        return dataclasses.replace(cfg, ops=dataclasses.replace(cfg.ops, **{section: updated}))
    return dataclasses.replace(cfg, **{section: updated})
