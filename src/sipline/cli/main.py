"""The `sipline` command: subcommands by noun, `--help` everywhere, `--json` for machines."""

from __future__ import annotations

import click

from sipline import __version__
from sipline.cli.accounts import domain, user
from sipline.cli.check import check
from sipline.cli.messaging import add_messaging_commands
from sipline.cli.registrations import registrations
from sipline.cli.route import route
from sipline.cli.serve import serve
from sipline.cli.softphone import add_phone_commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sipline")
def cli() -> None:
    """sipline: a SIP server, user agents and tools (RFC 3261)."""


add_phone_commands(cli)
add_messaging_commands(cli)
cli.add_command(check)
cli.add_command(serve)
cli.add_command(user)
cli.add_command(domain)
cli.add_command(registrations)
cli.add_command(registrations, name="reg")
cli.add_command(route)


def main() -> None:
    cli()
