"""Voicemail in `sipline serve`: the `voicemail` and `*98` addresses registered with the
media host, the message-waiting notifier told of every change, and the mailer.

The handlers (and numpy, the codecs) are built only in the process that runs the media
host; the mailer runs there too, sending what any worker queued in the store.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from sipline.runtime.timers import Timers
from sipline.server.media_services.registry import Handler, ServiceRegistry
from sipline.server.voicemail.address import DEPOSIT_USER, RETRIEVAL_USER
from sipline.server.voicemail.mailer import (
    EmailSettings,
    Mailer,
    missed_call_email,
    voicemail_email,
)
from sipline.server.voicemail.settings import EmailSection, VoicemailSection
from sipline.storage import AsyncStore, StoreError

if TYPE_CHECKING:
    from sipline.server.voicemail.service import VoicemailService

__all__ = ["Voicemail", "email_settings"]

log = logging.getLogger("sipline.voicemail")


def email_settings(email: EmailSection) -> EmailSettings | None:
    """The mailer's settings: None without an SMTP host."""
    if email.host is None:
        return None
    return EmailSettings(
        email.host,
        email.port,
        email.starttls,
        email.username,
        email.password,
        email.sender,
        email.missed_calls,
        email.retry_s,
        email.max_attempts,
    )


class Voicemail:
    """Wiring: `register` adds the services; `start`/`stop` run the mailer."""

    def __init__(
        self,
        store: AsyncStore,
        config: VoicemailSection,
        email: EmailSection,
        *,
        authenticate_calls: bool,
        timers: Timers,
        notify: Callable[[str], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self.store = store
        self.config = config
        self._authenticate_calls = authenticate_calls
        self._timers = timers
        self._wall = timers.clock.wall
        self._notify = notify
        self._spawn = spawn
        settings = email_settings(email)
        self.mailer = Mailer(store, settings, timers=timers) if settings is not None else None
        self.service: VoicemailService | None = None

    def register(self, registry: ServiceRegistry) -> None:
        if self.config.enabled:
            registry.add_users("voicemail", (DEPOSIT_USER, RETRIEVAL_USER), self._handler)

    def _handler(self) -> Handler:
        from sipline.server.voicemail.service import (  # noqa: PLC0415 (host process only)
            VoicemailService,
            VoicemailSettings,
        )

        self.service = VoicemailService(
            self.store,
            VoicemailSettings(
                max_message_s=self.config.max_message_s,
                speech=self.config.speech,
                require_pin=not self._authenticate_calls,
                max_messages=self.config.max_messages,
            ),
            timers=self._timers,
            on_count_changed=self._notify,
            on_message=self._email,
        )
        if self.mailer is not None:
            self.mailer.start()
        return self.service.handle

    async def _email(self, aor: str, caller: str, wav: bytes, duration_s: float) -> None:
        if self.mailer is None:
            return
        store = self.store.store
        box = await self.store.call(lambda: store.get_mailbox(aor))
        if not box.email:
            return
        message = voicemail_email(
            self.mailer.settings,
            box.email,
            aor=aor,
            caller=caller,
            wav=wav,
            duration_s=duration_s,
            when=self._wall(),
        )
        await self.mailer.queue(box.email, message)

    @property
    def notifies_missed(self) -> bool:
        """`[email] missed_calls` with a mailer: `missed` sends a notice."""
        return self.mailer is not None and self.mailer.settings.missed_calls

    def missed(self, aor: str, caller: str) -> None:
        """A call to `aor` rang unanswered: a notice by email when `[email] missed_calls`."""
        if self.notifies_missed:
            assert self.mailer is not None
            self._spawn(self._email_missed(aor, caller, self._wall()))

    async def _email_missed(self, aor: str, caller: str, when: float) -> None:
        assert self.mailer is not None  # checked by `missed`
        store = self.store.store
        try:
            box = await self.store.call(lambda: store.get_mailbox(aor))
            if box.email:
                message = missed_call_email(
                    self.mailer.settings, box.email, aor=aor, caller=caller, when=when
                )
                await self.mailer.queue(box.email, message)
        except StoreError as exc:
            log.warning("missed-call email for %s not queued: %s", aor, exc)

    async def stop(self) -> None:
        if self.mailer is not None:
            await self.mailer.stop()
