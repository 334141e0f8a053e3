"""The [voicemail] and [email] sections: defaults, values, and one-line errors."""

from __future__ import annotations

import pytest

from sipline.server.config import ConfigError, ServerConfig, load_config
from sipline.server.voicemail.setup import email_settings


def test_defaults_send_no_email() -> None:
    cfg = ServerConfig()
    assert cfg.voicemail.enabled and cfg.voicemail.max_message_s == 120.0
    assert email_settings(cfg.email) is None


def test_email_section() -> None:
    cfg = load_config(
        {
            "voicemail": {"max_message_s": 60, "speech": False},
            "email": {
                "host": "smtp.example.com",
                "port": 2525,
                "starttls": False,
                "username": "pbx",
                "password": "secret",
                "from": "pbx@example.com",
                "missed_calls": True,
            },
        }
    )
    assert cfg.voicemail.max_message_s == 60.0 and not cfg.voicemail.speech
    s = email_settings(cfg.email)
    assert s is not None
    assert (s.host, s.port, s.starttls, s.username, s.password, s.sender, s.missed_calls) == (
        "smtp.example.com",
        2525,
        False,
        "pbx",
        "secret",
        "pbx@example.com",
        True,
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"email": {"port": "25"}}, "email.port: must be a positive integer"),
        ({"email": {"relay": "x"}}, "email.relay: unknown key"),
        ({"voicemail": {"max_message_s": 0}}, "voicemail.max_message_s: must be a positive"),
        ({"email": {"host": ""}}, "email.host: must be a non-empty string"),
    ],
)
def test_errors(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(doc)
