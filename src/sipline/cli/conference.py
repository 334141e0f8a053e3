"""`sipline conference list/show/kick/mute/unmute`: the rooms of the running server.

The media host publishes its rooms to the database and polls a command queue there
(storage/conference.py), so these work with any number of workers; a command takes
effect within a quarter of a second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sipline.cli.store_options import StoreOptions, store_options
from sipline.storage.conference import ConferenceStore, RoomState

__all__ = ["conference"]


@contextmanager
def _open(where: StoreOptions) -> Iterator[ConferenceStore]:
    path = where.database
    if isinstance(path, Path) and not path.exists():
        raise click.ClickException(f"no database {path}: is the server running with --db {path}?")
    with where.opened(ConferenceStore) as store:
        yield store


def _room(store: ConferenceStore, name: str) -> RoomState:
    name = name.removeprefix("room-")
    state = store.room(name)
    if state is None:
        raise click.ClickException(f"no room {name} (nobody is in it)")
    return state


@click.group()
def conference() -> None:
    """Conference rooms: who is in them; kick or mute a participant."""


@conference.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@store_options
def list_rooms(as_json: bool, where: StoreOptions) -> None:
    """The rooms with someone in them."""
    with _open(where) as store:
        rooms = store.rooms()
    if as_json:
        click.echo(json.dumps([{"room": r.name, "participants": len(r.members)} for r in rooms]))
        return
    table = Table("room", "participants", "muted")
    table.title = f"{len(rooms)} room(s)"
    for r in rooms:
        table.add_row(r.name, str(len(r.members)), str(sum(bool(m["muted"]) for m in r.members)))
    Console().print(table)


@conference.command()
@click.argument("room")
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@store_options
def show(room: str, as_json: bool, where: StoreOptions) -> None:
    """The participants of ROOM (its name, with or without room-)."""
    with _open(where) as store:
        state = _room(store, room)
    if as_json:
        click.echo(json.dumps({"room": state.name, "participants": state.members}, indent=2))
        return
    now = time.time()
    table = Table("#", "who", "codec", "muted", "moderator", "for")
    table.title = f"room {state.name}: {len(state.members)} participant(s)"
    for m in state.members:
        table.add_row(
            str(m["number"]),
            str(m["who"]),
            str(m["codec"]),
            "yes" if m["muted"] else "",
            "yes" if m["moderator"] else "",
            f"{int(now - float(m['joined_at']))} s",
        )
    Console().print(table)


def _queue(action: str, room: str, number: int, where: StoreOptions) -> None:
    with _open(where) as store:
        state = _room(store, room)
        if not any(int(m["number"]) == number for m in state.members):
            raise click.ClickException(f"no participant {number} in room {state.name}")
        store.queue(state.name, action, number)
    click.echo(f"{action}: participant {number} of room {state.name}")


@conference.command()
@click.argument("room")
@click.argument("number", type=int)
@store_options
def kick(room: str, number: int, where: StoreOptions) -> None:
    """End participant NUMBER's call (numbers: `sipline conference show ROOM`)."""
    _queue("kick", room, number, where)


@conference.command()
@click.argument("room")
@click.argument("number", type=int)
@store_options
def mute(room: str, number: int, where: StoreOptions) -> None:
    """Mute participant NUMBER (the others stop hearing them; they may *6 to unmute)."""
    _queue("mute", room, number, where)


@conference.command()
@click.argument("room")
@click.argument("number", type=int)
@store_options
def unmute(room: str, number: int, where: StoreOptions) -> None:
    """Unmute participant NUMBER."""
    _queue("unmute", room, number, where)
