"""Voicemail email through a real SMTP server on loopback (aiosmtpd): the WAV goes as
an attachment; a failed send stays in the outbox and is retried later, doubling."""

from __future__ import annotations

import email
import socket
from collections.abc import AsyncIterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from sipline.runtime.timers import Timers
from sipline.server.voicemail.mailer import (
    EmailSettings,
    Mailer,
    missed_call_email,
    voicemail_email,
)
from sipline.storage import AsyncStore
from sipline.testing import FakeClock
from sipline.transport.tls import generate_self_signed, server_context


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncStore]:
    s = await AsyncStore.open(tmp_path / "vm.db")
    yield s
    await s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_voicemail_email_with_wav_attachment(
    smtp: tuple[Inbox, int], store: AsyncStore
) -> None:
    inbox, port = smtp
    settings = EmailSettings("127.0.0.1", port, starttls=False, sender="pbx@example.com")
    mailer = Mailer(store, settings, timers=Timers(FakeClock(wall_start=1_800_000_000.0)))
    wav = b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 80  # many base64 lines
    await mailer.queue(
        "alice@mail.example.com",
        voicemail_email(
            settings,
            "alice@mail.example.com",
            aor="alice@example.com",
            caller="bob@example.com",
            wav=wav,
            duration_s=3.0,
            when=1_800_000_000.0,
        ),
    )
    assert await mailer.send_due() == 1
    ((sender, rcpts, content),) = inbox.messages
    assert (sender, rcpts) == ("pbx@example.com", ["alice@mail.example.com"])
    msg: Message = email.message_from_bytes(content)
    assert msg["Subject"] == "New voicemail from bob@example.com"
    parts = [p for p in msg.walk() if p.get_content_type() == "audio/wav"]
    assert len(parts) == 1 and parts[0].get_payload(decode=True) == wav
    assert await store.call(lambda: store.store.due_emails(now=2e9)) == []  # sent: gone


async def test_failed_send_is_kept_and_retried_with_backoff(
    smtp: tuple[Inbox, int], store: AsyncStore
) -> None:
    inbox, port = smtp
    clock = FakeClock(wall_start=1000.0)
    dead = EmailSettings("127.0.0.1", _free_port(), starttls=False, retry_s=60.0, max_attempts=3)
    mailer = Mailer(store, dead, timers=Timers(clock))
    body = missed_call_email(dead, "a@mail.example.com", aor="a@x", caller="b@x", when=clock.wall())
    await mailer.queue("a@mail.example.com", body)
    assert await mailer.send_due() == 0
    (kept,) = await store.call(lambda: store.store.due_emails(now=1060.0))
    assert kept.attempts == 1 and kept.next_attempt_at == 1060.0 and kept.last_error
    clock.advance(60.0)  # wall 1060
    assert await mailer.send_due() == 0
    assert await store.call(lambda: store.store.due_emails(now=1179.0)) == []
    (kept,) = await store.call(lambda: store.store.due_emails(now=1180.0))  # 60, then 120 s
    # The server is back (a restart of ours would read the same outbox): sent.
    mailer.settings = EmailSettings("127.0.0.1", port, starttls=False)
    clock.advance(120.0)  # wall 1180
    assert await mailer.send_due() == 1
    assert len(inbox.messages) == 1
    assert email.message_from_bytes(inbox.messages[0][2])["Subject"] == "Missed call from b@x"


async def test_starttls_and_login(
    tmp_path: Path, store: AsyncStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 3207 STARTTLS (the server's certificate checked) then RFC 4954 AUTH: a
    server that refuses mail before both (and AUTH before TLS) gets it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    generate_self_signed(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the default context trusts it
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
        logins.append((auth.login, auth.password))
        return AuthResult(success=auth.login == b"pbx" and auth.password == b"secret")

    inbox, port = Inbox(), _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        ready_timeout=10,
        tls_context=server_context(cert, key),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    try:
        settings = EmailSettings(
            "127.0.0.1", port, starttls=True, username="pbx", password="secret"
        )
        mailer = Mailer(store, settings, timers=Timers(FakeClock(wall_start=10.0)))
        await mailer.queue("a@mail.example.com", b"Subject: hi\r\n\r\nhello\r\n")
        assert await mailer.send_due() == 1
        assert logins == [(b"pbx", b"secret")] and len(inbox.messages) == 1
    finally:
        controller.stop()
