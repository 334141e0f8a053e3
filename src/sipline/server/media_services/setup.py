"""Where the media host runs (docs/architecture.md "Media services").

One process answers every service call, so that all the participants of a room are
mixed together: the single server process, or worker 0 of `sipline serve --workers
N` on the loopback UDP socket the supervisor bound for it (kept across restarts of
the worker). The other workers only route to that port.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sipline.core.clock import Clock
from sipline.runtime.timers import Timers
from sipline.server.media_services.registry import Handler, ServiceRegistry
from sipline.server.media_services.rooms_config import (
    ROOM_PREFIX,
    ConferenceSection,
    MediaSection,
    RoomConfig,
)
from sipline.server.startup import WorkerSetup
from sipline.transport.base import Target

if TYPE_CHECKING:
    from sipline.server.media_services.host import MediaHost

__all__ = ["MEDIA_HOST", "register_services", "start_media_host"]

log = logging.getLogger("sipline.media_services")

MEDIA_HOST = "127.0.0.1"  # the host listens on loopback only: the proxy is its one peer


def register_services(
    registry: ServiceRegistry,
    media: MediaSection,
    conference_settings: ConferenceSection,
    rooms: tuple[RoomConfig, ...],
    database: Path,
    timers: Timers,
    node: str = "",
) -> None:
    """The built-in services: conference rooms (`sip:room-NAME@domain`), their timers
    (PIN entry, the command poll) on the server's `timers`; `node` names this node's
    rooms in the shared conference tables."""
    if not media.enabled:
        return

    def conference() -> Handler:
        # Imported only where the host runs (numpy, the user agent).
        from sipline.server.media_services.conference import ConferenceService  # noqa: PLC0415

        return ConferenceService(
            list(rooms),
            max_participants=conference_settings.max_participants,
            database=Path(database),
            node=node,
            timers=timers,
        )

    registry.add_prefix("conference", ROOM_PREFIX, conference)


async def start_media_host(
    registry: ServiceRegistry,
    media: MediaSection,
    domains: tuple[str, ...],
    worker: WorkerSetup | None,
    clock: Clock | None = None,
) -> MediaHost | None:
    """Start the host when this process runs it; otherwise point the registry at the
    worker that does. Nothing when no service is registered or media is disabled."""
    if not media.enabled or not registry.services:
        return None
    if worker is not None and worker.index != 0:
        if worker.media_port:
            registry.target = Target("UDP", MEDIA_HOST, worker.media_port)
        return None
    # Here: a worker that runs no host never loads the user agent or the codecs.
    from sipline.server.media_services.host import MediaHost  # noqa: PLC0415

    domain = domains[0] if domains else "localhost"
    sock = worker.media_socket if worker is not None else None
    port = worker.media_port if worker is not None and sock is not None else media.port
    host = MediaHost(registry, domain, host=MEDIA_HOST, port=port, sock=sock, clock=clock)
    await host.start()
    return host
