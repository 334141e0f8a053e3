"""Who may use one server process: its security monitor and its digest authenticator.

Failed logins are counted per source and bans shared by every worker and node through
the store (README "Running on the Internet"). Workers and nodes share one secret: any
process verifies any nonce, only its issuer (NODE/WORKER, `server/node.py`) counts its
uses and the others re-challenge it (`core/auth_server.py`); the same secret signs our
Record-Route and flow tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipline.runtime.endpoint import Endpoint
from sipline.server.auth import DigestAuthenticator
from sipline.server.config import ServerConfig
from sipline.server.node import issuer_id
from sipline.server.secret_file import server_secret
from sipline.server.security.guard import GuardSettings
from sipline.server.security.monitor import SecurityMonitor
from sipline.server.security.relay import RelayPolicy
from sipline.server.startup import WorkerSetup
from sipline.storage.aio import AsyncStore

__all__ = ["Checking", "start_checking"]


@dataclass(frozen=True, slots=True)
class Checking:
    """What a process checks callers with."""

    policy: RelayPolicy
    security: SecurityMonitor
    authenticator: DigestAuthenticator
    secret: bytes


async def start_checking(
    cfg: ServerConfig, store: AsyncStore, ep: Endpoint, worker: WorkerSetup | None
) -> Checking:
    """The monitor (started: it reads the shared bans) and the authenticator."""
    sec = cfg.security
    policy = RelayPolicy(cfg.trusted, sec.internal_networks)
    security = SecurityMonitor(
        GuardSettings(sec.max_auth_failures, sec.failure_window_s, sec.ban_s, sec.max_ban_s),
        wall=ep.wall,
        store=store,
        spawn=ep.spawn,
        exempt=lambda host: policy.trusted_peer(None, host, None) is not None,
    )
    await security.start()
    own = worker.secret if worker is not None else None
    secret = own or server_secret(cfg.server.database, cfg.server.secret_file)
    index = worker.index if worker is not None else 0
    authenticator = DigestAuthenticator(
        store.lookup_ha1,
        secret=secret,
        entropy=ep.entropy,
        algorithms=list(cfg.auth.algorithms),
        nonce_ttl_s=cfg.auth.nonce_ttl_s,
        issuer=issuer_id(cfg.server.node_name, index),
        # A restarted worker lost its nonce counts: its predecessor's nonces are stale.
        stale_before_start=worker is not None,
        observer=security,
    )
    return Checking(policy, security, authenticator, secret)
