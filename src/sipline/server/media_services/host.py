"""The media host: one in-process `UserAgent` on a loopback UDP port that answers the
calls the proxy routes to service addresses (`ServiceRegistry`).

It registers nowhere: the proxy sends it the INVITEs for `sip:room-NAME@domain` (and
the other services) with their Request-URI unchanged, so a handler knows what was
dialled, and record-routes them, so in-dialog requests pass through the proxy as
for any other device. With several workers the host runs in worker 0 only, on a
socket the supervisor bound once; every worker's proxy targets that port, so all the
participants of a room meet in one process (docs/architecture.md "Media services").
"""

from __future__ import annotations

import contextlib
import logging
import socket

from sipline.core.clock import Clock
from sipline.core.uri import SipUri
from sipline.media.codecs.opus import opus_available
from sipline.phone import Call, MediaOptions, UserAgent, UserAgentError
from sipline.server.media_services.registry import ServiceRegistry
from sipline.transport.base import Target

__all__ = ["MediaHost"]

log = logging.getLogger("sipline.media_services")


def host_codecs() -> tuple[str, ...]:
    """What the host accepts, in the offerer's order: G.711, and Opus with PyAV."""
    return ("PCMU", "PCMA", "opus") if opus_available() else ("PCMU", "PCMA")


class MediaHost:
    """Answers service calls for the served `domain` (the host's own AOR is
    `sipline-media@domain`; From of the calls it places, e.g. a conference's dial-out)."""

    def __init__(
        self,
        registry: ServiceRegistry,
        domain: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.registry = registry
        self.ua = UserAgent(
            f"sipline-media@{domain}",
            listen=f"{host}:{port}",
            register=False,
            on_call=self._dispatch,
            listen_socket=sock,
            advertise=host,
            keepalive_s=None,
            media=MediaOptions(codecs=host_codecs(), port_range=(20000, 29999)),
            clock=clock,  # the server's: its timers and the host's step together in tests
        )
        self.host = host

    async def start(self) -> Target:
        """Listen; returns (and sets in the registry) the hop the proxies use."""
        try:
            await self.ua.start()
        except UserAgentError as exc:
            port = self.ua.config.listen_port
            raise OSError(
                f"media.port: the media host cannot listen on {self.host}:{port}: {exc}"
            ) from None
        item = self.ua.endpoint.local_address("UDP")
        assert item is not None
        for service in self.registry.services:
            # Built here, in the one process that answers: a service may start work
            # of its own (the conference command queue).
            start = getattr(service.handler(), "start", None)
            if start is not None:
                start()
        target = Target("UDP", self.host, item.port)
        self.registry.target = target
        log.info("media host on udp:%s:%d", self.host, item.port)
        return target

    async def stop(self) -> None:
        await self.ua.close()
        for service in self.registry.services:
            stop = getattr(service.built, "stop", None)
            if stop is not None:
                await stop()

    async def _dispatch(self, call: Call) -> None:
        invite = call.invite
        uri = invite.uri if invite is not None else None
        user = uri.user if isinstance(uri, SipUri) else None
        service = self.registry.find(user)
        if service is None:
            with contextlib.suppress(UserAgentError):
                await call.reject(404)
            return
        try:
            await service.handler()(call)
        except Exception:
            log.exception("the %s service failed on a call to %s", service.name, uri)
            with contextlib.suppress(Exception):
                if call.is_active:
                    await call.hangup()
