"""Options every user-agent command shares (`call`, `answer`, `message`, `chat`, `presence`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["account_options", "apply_options", "log_level_option"]


def account_options() -> list[Callable[[Any], Any]]:
    """Who we are and where the server is: --user, --password, --auth-user, --server,
    --listen, --transport."""
    return [
        click.option("--user", required=True, metavar="USER@DOMAIN", help="Our SIP address."),
        click.option(
            "--password",
            envvar="SIPLINE_PASSWORD",
            default=None,
            help="Digest password (or $SIPLINE_PASSWORD).",
        ),
        click.option(
            "--auth-user", default=None, help="Digest user name when not the address's user."
        ),
        click.option(
            "--server", default=None, metavar="HOST[:PORT]", help="Registrar and outbound proxy."
        ),
        click.option("--listen", default="0.0.0.0:0", show_default=True, metavar="HOST:PORT"),
        click.option(
            "--transport", type=click.Choice(["udp", "tcp"]), default="udp", show_default=True
        ),
    ]


def log_level_option() -> Callable[[Any], Any]:
    return click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default="warning",
    )


def apply_options(f: Any, options: list[Callable[[Any], Any]]) -> Any:
    """Decorate `f` so that --help lists the options in the order given."""
    for option in reversed(options):
        f = option(f)
    return f
