"""Where a component's own settings differ in shape from its configuration section:
the registrar's (seconds named `_s`), the overload guard's (milliseconds to seconds)
and the routing features' (`[features]`, `[emergency]` and `[[regions]]` together)."""

from __future__ import annotations

from sipline.runtime.overload import OverloadConfig
from sipline.server.config import ServerConfig
from sipline.server.features.emergency import EmergencySettings
from sipline.server.features.forwarding import RoutingSettings
from sipline.server.features.settings import FeatureSettings
from sipline.server.registrar import RegistrarConfig
from sipline.server.sections import OverloadSection, RegistrarSection

__all__ = ["feature_settings", "overload_config", "registrar_config"]


def feature_settings(config: ServerConfig) -> FeatureSettings:
    """The routing-feature part of the configuration."""
    features, emergency = config.features, config.emergency
    return FeatureSettings(
        RoutingSettings(features.history_info, features.diversion, features.max_forward_depth),
        EmergencySettings(
            emergency.numbers,
            emergency.psap,
            config.regions,
            emergency.psaps,
            emergency.hop_timeout_s,
        ),
    )


def registrar_config(section: RegistrarSection) -> RegistrarConfig:
    return RegistrarConfig(
        default_expires_s=section.default_expires,
        min_expires_s=section.min_expires,
        max_expires_s=section.max_expires,
        fix_nated_register=section.fix_nated_register,
        max_contacts=section.max_contacts,
    )


def overload_config(section: OverloadSection) -> OverloadConfig:
    """Overload control (README "Overload control", RFC 3261 §21.5.4)."""
    return OverloadConfig(
        enabled=section.enabled,
        max_loop_lag_s=section.max_loop_lag_ms / 1000.0,
        max_pending_transactions=section.max_pending_transactions,
        max_server_transactions=section.max_server_transactions,
        max_store_backlog=section.max_store_backlog,
        retry_after_s=section.retry_after_s,
        max_udp_queue_fill=section.max_udp_queue_fill,
        max_response_wait_s=section.max_response_wait_ms / 1000.0,
    )
