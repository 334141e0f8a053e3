"""The `[features]`, `[emergency]` and `[[regions]]` sections (README "Routing
features", "Emergency calls"), checked as `server/config_values.py` describes."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from sipline.server.config_values import (
    ConfigError,
    boolean,
    is_sip_uri,
    pos_float,
    pos_int,
    setting,
    sip_uri,
    sip_uris,
    table_list,
)
from sipline.server.features.location import CIVIC_FIELDS, Region

__all__ = ["EmergencySection", "FeaturesSection", "parse_regions"]

_REGION_KEYS = ("name", "networks", "civic", "box", "point", "psap")


def _numbers(key: str, value: Any) -> tuple[str, ...]:
    ok = isinstance(value, list) and all(
        isinstance(v, str) and v.strip() and " " not in v for v in value
    )
    if not ok:
        raise ConfigError(
            f"{key}: must be a list of numbers or URNs (112, urn:service:sos), not {value!r}"
        )
    return tuple(v.strip() for v in value)


@dataclass(frozen=True, slots=True)
class FeaturesSection:
    """[features] (README "Routing features")."""

    history_info: bool = setting(True, boolean)
    diversion: bool = setting(True, boolean)
    max_forward_depth: int = setting(5, pos_int)


@dataclass(frozen=True, slots=True)
class EmergencySection:
    """[emergency] (README "Emergency calls")."""

    numbers: tuple[str, ...] = setting(("112", "911", "urn:service:sos"), _numbers)
    psap: str | None = setting(None, sip_uri)
    psaps: tuple[str, ...] = setting((), sip_uris)  # tried in turn after psap
    hop_timeout_s: float = setting(4.0, pos_float)  # a PSAP silent this long is skipped


def parse_regions(value: Any) -> tuple[Region, ...]:
    """`[[regions]]`: named areas for location-based routing and emergency calls."""
    regions: list[Region] = []
    for key, body in table_list(value, "regions", _REGION_KEYS):
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or " " in name.strip():
            raise ConfigError(f"{key}.name: must be a name without spaces, not {name!r}")
        if any(r.name == name for r in regions):
            raise ConfigError(f"{key}.name: region {name!r} is defined twice")
        raw_nets = body.get("networks", [])
        if not isinstance(raw_nets, list):
            raise ConfigError(f"{key}.networks: must be a list of networks (192.0.2.0/24)")
        nets = []
        for net in raw_nets:
            try:
                nets.append(ipaddress.ip_network(str(net), strict=False))
            except ValueError:
                raise ConfigError(f"{key}.networks: {net!r} is not an IP network") from None
        civic = body.get("civic", {})
        known = {f.lower(): f for f in CIVIC_FIELDS}
        if not isinstance(civic, dict) or not all(
            isinstance(v, str) and k.lower() in known for k, v in civic.items()
        ):
            raise ConfigError(
                f"{key}.civic: must be a table of RFC 5139 fields ({', '.join(CIVIC_FIELDS)})"
            )
        box = _floats(body, "box", key, 4)
        if box is not None and not (box[0] <= box[2] and box[1] <= box[3]):
            raise ConfigError(f"{key}.box: must be [lat_min, lon_min, lat_max, lon_max]")
        point = _floats(body, "point", key, 2)
        psap = body.get("psap")
        if psap is not None and not is_sip_uri(psap):
            raise ConfigError(f"{key}.psap: must be a sip: or sips: URI, not {psap!r}")
        regions.append(
            Region(
                name.strip(),
                tuple((known[k.lower()], v) for k, v in civic.items()),
                (box[0], box[1], box[2], box[3]) if box is not None else None,
                tuple(nets),
                (point[0], point[1]) if point is not None else None,
                psap,
            )
        )
    return tuple(regions)


def _floats(body: dict[str, Any], name: str, key: str, n: int) -> list[float] | None:
    value = body.get(name)
    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not ok:
        raise ConfigError(f"{key}.{name}: must be a list of {n} numbers")
    return [float(v) for v in value]
