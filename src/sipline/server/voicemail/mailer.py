"""Email for voicemail: a new message sent to its user with the WAV attached, and a
missed-call notice when configured.

Sending never blocks call handling: a message is first written to the store's outbox
(so a restart does not lose it), then a background task sends what is due, one SMTP
session at a time in a worker thread (smtplib: STARTTLS, login). A failure is logged
and retried after `retry_s`, doubling each time, until `max_attempts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sipline.runtime.timers import Timers
from sipline.storage import AsyncStore, StoreError
from sipline.storage.voicemail import OutgoingEmail

__all__ = ["EmailSettings", "Mailer", "missed_call_email", "voicemail_email"]

log = logging.getLogger("sipline.email")

_POLL_S = 5.0
# An email being sent is put off this long: another node's mailer leaves it alone meanwhile,
# and sends it once this is over if the node sending it died (SMTP gives up long before).
_LEASE_S = 300.0
_SMTP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """The `[email]` section: an SMTP server to hand messages to."""

    host: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    sender: str = "sipline@localhost"
    missed_calls: bool = False
    retry_s: float = 60.0
    max_attempts: int = 8


def _base(settings: EmailSettings, to: str, subject: str, when: float) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.fromtimestamp(when, UTC))
    msg["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    return msg


def voicemail_email(
    settings: EmailSettings,
    to: str,
    *,
    aor: str,
    caller: str,
    wav: bytes,
    duration_s: float,
    when: float,
) -> bytes:
    msg = _base(settings, to, f"New voicemail from {caller}", when)
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
    msg.set_content(
        f"{caller} left a message for {aor} on {stamp} ({duration_s:.0f} s).\n"
        "The recording is attached; call *98 to listen to it on your phone.\n"
    )
    name = datetime.fromtimestamp(when, UTC).strftime("voicemail-%Y%m%d-%H%M%S.wav")
    msg.add_attachment(wav, maintype="audio", subtype="wav", filename=name)
    return _wire(msg)


def missed_call_email(
    settings: EmailSettings, to: str, *, aor: str, caller: str, when: float
) -> bytes:
    msg = _base(settings, to, f"Missed call from {caller}", when)
    stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")
    msg.set_content(f"{caller} called {aor} on {stamp}; nobody answered.\n")
    return _wire(msg)


def _wire(msg: EmailMessage) -> bytes:
    """SMTP wants CRLF line ends (RFC 5321 §2.3.8); the default policy writes LF, which
    a server reads as one over-long line."""
    return msg.as_bytes(policy=policy.SMTP)


class Mailer:
    """The outbox's sender. `queue` is cheap (one store write); `start` runs the task."""

    def __init__(self, store: AsyncStore, settings: EmailSettings, *, timers: Timers) -> None:
        self.store = store
        self.settings = settings
        self._timers = timers
        self._wall = timers.clock.wall
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def queue(self, recipient: str, message: bytes) -> None:
        store, now = self.store.store, self._wall()
        await self.store.write(lambda: store.queue_email(recipient, message, now))
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.send_due()
            except StoreError as exc:
                log.warning("email outbox: %s", exc)
            with contextlib.suppress(TimeoutError):
                await self._timers.wait_for(self._wake.wait(), _POLL_S)
            self._wake.clear()

    async def send_due(self) -> int:
        """Send what is due now; returns how many went out."""
        store = self.store.store
        # Claimed, not just read: every node's mailer polls the one outbox.
        due = await self.store.write(lambda: store.claim_emails(self._wall(), _LEASE_S))
        sent = 0
        for item in due:
            try:
                await asyncio.to_thread(self._send, item)
            except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
                await self._failed(item, _reason(exc))
                continue
            await self.store.write(lambda i=item.id: store.email_sent(i))
            log.info("email sent to %s", item.recipient)
            sent += 1
        return sent

    async def _failed(self, item: OutgoingEmail, reason: str) -> None:
        s = self.settings
        attempts = item.attempts + 1
        if attempts >= s.max_attempts:
            retry_at: float | None = None
            log.warning(
                "email to %s given up after %d attempts: %s", item.recipient, attempts, reason
            )
        else:
            retry_at = self._wall() + s.retry_s * 2 ** (attempts - 1)
            log.warning(
                "email to %s failed (attempt %d, retried in %.0f s): %s",
                item.recipient,
                attempts,
                retry_at - self._wall(),
                reason,
            )
        store = self.store.store
        await self.store.write(lambda: store.email_failed(item.id, reason, retry_at))

    def _send(self, item: OutgoingEmail) -> None:
        """One SMTP session (in a worker thread): STARTTLS when configured (RFC 3207),
        AUTH when a user is set (RFC 4954)."""
        s = self.settings
        with smtplib.SMTP(s.host, s.port, timeout=_SMTP_TIMEOUT_S) as smtp:
            smtp.ehlo()
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.username is not None:
                smtp.login(s.username, s.password or "")
            smtp.sendmail(s.sender, [item.recipient], item.message)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
