"""The `sipline` command: subcommands by noun, `--help` everywhere, `--json` for machines."""

from __future__ import annotations

import importlib

import click

from sipline import __version__
from sipline.accel import describe

# Subcommand -> (module, attribute). A command's module is imported when that command
# runs (or `--help` lists them all): `sipline serve` would otherwise load the user
# agent, the media codecs and numpy, some 20 MB it never uses.
COMMANDS: dict[str, tuple[str, str]] = {
    "call": ("sipline.cli.softphone", "call"),
    "answer": ("sipline.cli.softphone", "answer"),
    "message": ("sipline.cli.messaging", "message"),
    "chat": ("sipline.cli.messaging", "chat"),
    "presence": ("sipline.cli.messaging", "presence"),
    "watchers": ("sipline.cli.messaging", "watchers"),
    "messages": ("sipline.cli.stored", "messages"),
    "check": ("sipline.cli.check", "check"),
    "serve": ("sipline.cli.serve", "serve"),
    "user": ("sipline.cli.accounts", "user"),
    "domain": ("sipline.cli.accounts", "domain"),
    "registrations": ("sipline.cli.registrations", "registrations"),
    "reg": ("sipline.cli.registrations", "registrations"),
    "route": ("sipline.cli.route", "route"),
    "voicemail": ("sipline.cli.voicemail", "voicemail"),
    "calls": ("sipline.cli.records", "calls"),
    "events": ("sipline.cli.records", "events"),
    "trace": ("sipline.cli.records", "trace"),
    "status": ("sipline.cli.records", "status"),
    "conference": ("sipline.cli.conference", "conference"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported from `COMMANDS` when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        module, attr = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module}.{attr} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, prog_name="sipline", message=f"%(prog)s %(version)s (parser: {describe()})"
)
def cli() -> None:
    """sipline: a SIP server, user agents and tools (RFC 3261)."""


def main() -> None:
    cli()
