"""Server-wide feature settings, as the configuration file gives them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sipline.server.features.emergency import EmergencySettings
from sipline.server.features.forwarding import RoutingSettings
from sipline.server.features.location import Region

__all__ = ["FeatureSettings"]


@dataclass(frozen=True, slots=True)
class FeatureSettings:
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    emergency: EmergencySettings = field(default_factory=EmergencySettings)

    @property
    def regions(self) -> tuple[Region, ...]:
        return self.emergency.regions

    def region(self, name: str | None) -> Region | None:
        return next((r for r in self.regions if r.name == name), None) if name else None
