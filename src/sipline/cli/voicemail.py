"""`sipline voicemail …`: the messages in a user's mailbox, their greeting and PIN.

sipline voicemail list alice@example.com [--json]
sipline voicemail play alice@example.com 3 message.wav      (- writes to stdout)
sipline voicemail del alice@example.com 3
sipline voicemail greeting alice@example.com hello.wav      (--default goes back)
sipline voicemail pin alice@example.com [--pin 1234]        (--clear: no PIN)
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from sipline.cli.store_options import StoreOptions, store_options
from sipline.media_io.audio_files import AudioFileError, read_wav, write_wav
from sipline.server.voicemail.pin import PinError, hash_pin
from sipline.storage import Store, split_address

__all__ = ["voicemail"]


def _aor(store: Store, value: str) -> str:
    try:
        user, dom = split_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ADDRESS") from None
    if store.get_user(user, dom) is None:
        raise click.ClickException(f"no user {user}@{dom}")
    return f"{user}@{dom}"


@click.group()
def voicemail() -> None:
    """A user's voicemail: messages, greeting, PIN (README "Voicemail and email")."""


@voicemail.command("list")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@store_options
def vm_list(address: str, as_json: bool, where: StoreOptions) -> None:
    """The messages of ADDRESS, oldest first."""
    with where.open() as store:
        messages = store.list_voicemail(_aor(store, address))
    if as_json:
        rows = [
            {
                "id": m.id,
                "caller": m.caller,
                "received_at": m.received_at,
                "duration_s": round(m.duration_s, 2),
                "heard": m.heard,
            }
            for m in messages
        ]
        click.echo(json.dumps(rows))
        return
    if not messages:
        click.echo("no messages")
    for m in messages:
        when = datetime.fromtimestamp(m.received_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        state = "old" if m.heard else "NEW"
        click.echo(f"{m.id:>5}  {state:<3}  {when}  {m.duration_s:6.1f} s  {m.caller}")


@voicemail.command("play")
@click.argument("address")
@click.argument("message_id", type=int)
@click.argument("output", type=click.Path(dir_okay=False, allow_dash=True))
@store_options
def vm_play(address: str, message_id: int, output: str, where: StoreOptions) -> None:
    """Write message MESSAGE_ID of ADDRESS to OUTPUT (a WAV file; - for stdout)."""
    with where.open() as store:
        m = store.get_voicemail(_aor(store, address), message_id)
    if m is None:
        raise click.ClickException(f"no message {message_id} for {address}")
    if output == "-":
        sys.stdout.buffer.write(m.audio)
        sys.stdout.buffer.flush()
        return
    try:
        Path(output).write_bytes(m.audio)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"wrote message {message_id} ({m.duration_s:.1f} s) to {output}", err=True)


@voicemail.command("del")
@click.argument("address")
@click.argument("message_id", type=int)
@store_options
def vm_del(address: str, message_id: int, where: StoreOptions) -> None:
    """Delete message MESSAGE_ID of ADDRESS."""
    with where.open() as store:
        if not store.remove_voicemail(_aor(store, address), message_id):
            raise click.ClickException(f"no message {message_id} for {address}")
    click.echo(f"deleted message {message_id}")


@voicemail.command("greeting")
@click.argument("address")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--default", "default", is_flag=True, help="Back to the built-in greeting.")
@store_options
def vm_greeting(address: str, file: Path | None, default: bool, where: StoreOptions) -> None:
    """Set the greeting of ADDRESS from FILE (WAV or any audio PyAV reads)."""
    if (file is None) == (not default):
        raise click.UsageError("give a FILE or --default")
    wav: bytes | None = None
    if file is not None:
        try:
            samples = read_wav(file)
        except AudioFileError as exc:
            raise click.ClickException(str(exc)) from None
        buf = io.BytesIO()
        write_wav(buf, samples)
        wav = buf.getvalue()
    with where.open() as store:
        store.set_mailbox_greeting(_aor(store, address), wav)
    click.echo("greeting set" if wav is not None else "default greeting")


@voicemail.command("pin")
@click.argument("address")
@click.option("--pin", help="The PIN, 4 to 16 digits (prompted for when omitted).")
@click.option("--clear", is_flag=True, help="No PIN (*98 then asks none).")
@store_options
def vm_pin(address: str, pin: str | None, clear: bool, where: StoreOptions) -> None:
    """Set the PIN that *98 asks of ADDRESS."""
    hashed: str | None = None
    if not clear:
        if pin is None:
            pin = click.prompt("PIN", hide_input=True, confirmation_prompt=True, err=True)
        try:
            hashed = hash_pin(str(pin))
        except PinError as exc:
            raise click.BadParameter(str(exc), param_hint="--pin") from None
    with where.open() as store:
        store.set_mailbox_pin(_aor(store, address), hashed)
    click.echo("PIN set" if hashed is not None else "PIN cleared")
