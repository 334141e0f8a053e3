"""Options every user-agent command shares (`call`, `answer`, `message`, `chat`, `presence`),
their checks, and the command class that turns every user error into one line.

A user error (a bad option value, a port in use, a name that does not resolve, a file
that is not audio) is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from sipline.media.codecs.opus import register_opus
from sipline.media.codecs.registry import codec_by_name
from sipline.media.srtp import srtp_available
from sipline.media_io.audio_files import check_audio_file
from sipline.phone import UserAgentError
from sipline.phone.config import parse_aor, parse_hostport
from sipline.transport import TransportError
from sipline.transport.resolver import ResolutionError

__all__ = [
    "AgentCommand",
    "account_options",
    "agent_settings",
    "apply_options",
    "check_codecs",
    "check_dtmf",
    "check_duration",
    "check_play",
    "check_port_range",
    "check_record",
    "check_srtp",
    "log_level_option",
]

# What reaches the user as one line when it escapes a command (the UA raises these for
# things the user can fix; anything else is a bug and keeps its traceback).
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserAgentError,
    ValueError,
    OSError,
    TransportError,
    ResolutionError,
)


class OneLineError(click.ClickException):
    exit_code = 2

    def __init__(self, command: str, message: str) -> None:
        super().__init__(message)
        self.command = command

    def show(self, file: Any = None) -> None:
        click.echo(f"sipline {self.command}: {self.format_message()}", err=True)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class AgentCommand(click.Command):
    """A click command whose usage errors and user errors are each one line."""

    def _usage(self, exc: click.UsageError) -> OneLineError:
        hint = f" (sipline {self.name} --help)" if exc.ctx is not None else ""
        return OneLineError(self.name or "", _one_line(exc.format_message()) + hint)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise self._usage(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise self._usage(exc) from None
        except click.ClickException:
            raise
        except USER_ERRORS as exc:
            raise OneLineError(self.name or "", _one_line(str(exc)) or type(exc).__name__) from None


def _fail(param: click.Parameter | None, message: str) -> NoReturn:
    raise click.BadParameter(message, param=param)


def _check_user(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_aor(value)
    except ValueError as exc:
        _fail(param, str(exc))
    return value


def _check_hostport(default_port: int) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_hostport(value, default_port=default_port)
            except ValueError as exc:
                _fail(param, str(exc))
        return value

    return check


def check_duration(ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
    """A time in seconds: a finite number, positive (zero allowed for --ring)."""
    if value is None:
        return None
    allow_zero = param.name == "ring"
    if not math.isfinite(value) or value < 0:
        _fail(param, f"{value} is not a number of seconds")
    if value == 0 and not allow_zero:
        _fail(param, "must be more than 0 seconds")
    return value


def check_dtmf(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """DTMF digits as RFC 4733 names them: 0-9, *, #, A-D."""
    bad = sorted({c for c in value.upper() if c not in "0123456789*#ABCD"})
    if bad:
        _fail(param, f"{''.join(bad)!r}: DTMF digits are 0-9, *, # and A-D")
    return value.upper()


def check_codecs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    """Codecs we can use (opus only with PyAV's libopus)."""
    for name in value:
        if name.lower() == "opus":
            register_opus()
        if codec_by_name(name) is None:
            _fail(param, f"{name}: not an available codec (PCMU, PCMA, opus)")
    return value


def check_srtp(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """SRTP needs libsrtp's binding (the [srtp] extra)."""
    if value != "off" and not srtp_available():
        _fail(param, "SRTP needs the pylibsrtp package (pip install sipline[srtp])")
    return value


def check_play(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """An audio file we can decode (checked before any call starts)."""
    if value is not None:
        try:
            check_audio_file(value)
        except ValueError as exc:
            _fail(param, str(exc))
    return value


def check_record(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A file we can create or overwrite."""
    if value is None:
        return None
    parent = value.parent if str(value.parent) else Path(".")
    if value.is_dir():
        _fail(param, f"{value}: is a directory")
    if not parent.is_dir():
        _fail(param, f"{value}: no directory {parent}")
    if not os.access(parent, os.W_OK) or (value.exists() and not os.access(value, os.W_OK)):
        _fail(param, f"{value}: not writable")
    return value


def account_options() -> list[Callable[[Any], Any]]:
    """Who we are and where the server is: --user, --password, --auth-user, --server,
    --listen, --transport."""
    return [
        click.option(
            "--user",
            required=True,
            metavar="USER@DOMAIN",
            callback=_check_user,
            help="Our SIP address.",
        ),
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
            "--server",
            default=None,
            metavar="HOST[:PORT]",
            callback=_check_hostport(5060),
            help="Registrar and outbound proxy.",
        ),
        click.option(
            "--listen",
            default="0.0.0.0:0",
            show_default=True,
            metavar="HOST:PORT",
            callback=_check_hostport(0),
        ),
        click.option(
            "--transport",
            type=click.Choice(["udp", "tcp", "tls"]),
            default="udp",
            show_default=True,
            help="tcp/tls: one connection to --server, kept open (RFC 5626 outbound).",
        ),
        click.option(
            "--ca-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="CA certificate(s) that sign the server's TLS certificate "
            "(default: the system's store).",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            help="TLS without checking the server's certificate (self-signed test servers).",
        ),
    ]


def agent_settings(options: dict[str, Any]) -> dict[str, Any]:
    """The UserAgent settings the shared options give beyond its named arguments."""
    ca_file = options.get("ca_file")
    return {
        "tls_ca_file": str(ca_file) if ca_file is not None else None,
        "tls_verify": not options.get("insecure", False),
    }


def check_port_range(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int, int] | None:
    """LO-HI: the UDP ports RTP and RTCP may use (an even/odd pair per call)."""
    if value is None:
        return None
    low_s, sep, high_s = value.partition("-")
    if not sep or not low_s.strip().isdigit() or not high_s.strip().isdigit():
        _fail(param, f"{value!r}: give LO-HI, e.g. 40000-40099")
    low, high = int(low_s), int(high_s)
    if not 1024 <= low < high <= 65535:
        _fail(param, f"{value!r}: need 1024 <= LO < HI <= 65535")
    return low, high


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
