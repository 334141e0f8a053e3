"""`sipline messages`: the messages the server stores for offline users.

A message waits (`pending`) until a device of its recipient takes it, or is kept
as `failed` when the devices refused it for good (e.g. 415: they cannot read its
body); a failed message is not delivered again and stays listed, with the
response, until it expires or is deleted here.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click

from sipline.cli.store_options import StoreOptions, store_options
from sipline.core.errors import RemoteProtocolError
from sipline.core.views import parse_name_addr
from sipline.storage import StoredMessage, split_address

__all__ = ["messages"]


def _sender(message: StoredMessage) -> str:
    try:
        return parse_name_addr(message.sender, "From").uri_text
    except RemoteProtocolError:
        return message.sender


def _row(m: StoredMessage) -> dict[str, object]:
    return {
        "id": m.id,
        "user": m.aor,
        "sender": _sender(m),
        "state": m.state,
        "failure": m.failure or None,
        "attempts": m.attempts,
        "content_type": m.content_type,
        "bytes": len(m.body),
        "received_at": datetime.fromtimestamp(m.received_at, UTC).isoformat(),
    }


@click.group()
def messages() -> None:
    """Messages stored for users who were offline, and the ones their devices refused."""


@messages.command("list")
@click.argument("user", required=False)
@click.option("--failed", is_flag=True, help="Only the messages refused for good.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@store_options
def messages_list(user: str | None, failed: bool, as_json: bool, where: StoreOptions) -> None:
    """Stored messages (of USER, or everyone's), oldest first."""
    aor = None
    if user is not None:
        try:
            aor = "@".join(split_address(user))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    with where.open() as store:
        found = store.list_messages(aor, now=time.time())
    if failed:
        found = [m for m in found if m.state == "failed"]
    if as_json:
        click.echo(json.dumps([_row(m) for m in found]))
        return
    for m in found:
        row = _row(m)
        outcome = f"failed: {m.failure}" if m.state == "failed" else "waiting"
        click.echo(
            f"{m.id:>6} {row['received_at']} {_sender(m)} -> {m.aor}"
            f" ({m.content_type}, {len(m.body)} bytes): {outcome}"
        )


@messages.command("del")
@click.argument("message_id", type=int)
@store_options
def messages_del(message_id: int, where: StoreOptions) -> None:
    """Delete stored message MESSAGE_ID (as `messages list` numbers it)."""
    with where.open() as store:
        if not store.remove_message(message_id):
            raise click.ClickException(f"no stored message {message_id}")
    click.echo(f"deleted stored message {message_id}")
