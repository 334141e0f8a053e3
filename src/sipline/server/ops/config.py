"""The `[http]` section, and the operator's sections together (`OpsConfig`).

`[log]`, `[hep]` and `[cdr]` configure the records and live with them
(`server/records/settings.py`); `[http]` configures the management listener here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from sipline.server.config_values import (
    ConfigError,
    hostport,
    parse_hostport,
    path,
    secret,
    setting,
)
from sipline.server.records.settings import CdrSettings, HepSettings, LogSettings

__all__ = [
    "OPS_SECTIONS",
    "CdrSettings",
    "HepSettings",
    "HttpSettings",
    "LogSettings",
    "OpsConfig",
]


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """[http]: never a management listener on the network in the clear or without a
    credential."""

    listen: str | None = setting(None, hostport)  # "127.0.0.1:8080"; None: no listener
    admin_password: str | None = setting(None, secret)  # the dashboard's login, user "admin"
    token: str | None = setting(None, secret)  # a bearer token for scripts and Prometheus
    tls_cert: Path | None = setting(None, path)  # HTTPS with this certificate and key
    tls_key: Path | None = setting(None, path)

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("http.tls_cert: http.tls_cert and http.tls_key go together")
        if self.listen is not None:
            host, _ = parse_hostport(self.listen, "http.listen")
            if not ipaddress.ip_address(host).is_loopback and (
                self.tls_cert is None or not self.credential
            ):
                raise ConfigError(
                    f"http.listen: {self.listen} is not a loopback address: it needs"
                    " http.tls_cert/http.tls_key and http.admin_password or http.token"
                )

    @property
    def credential(self) -> bool:
        return bool(self.admin_password or self.token)


@dataclass(frozen=True, slots=True)
class OpsConfig:
    """What an operator sees: `[log]`, `[http]`, `[hep]`, `[cdr]`."""

    log: LogSettings = field(default_factory=LogSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    hep: HepSettings = field(default_factory=HepSettings)
    cdr: CdrSettings = field(default_factory=CdrSettings)


OPS_SECTIONS = ("log", "http", "hep", "cdr")
