"""`sipline conference`: the rooms the media host published, and commands queued for it,
on a real database (the media host's side is tests/server/media_services)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from click.testing import CliRunner

from sipline.cli.main import cli
from sipline.storage.conference import ConferenceStore
from sipline.storage.sqlite import SqliteStore


def run(*args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))
    return result.exit_code, result.output


def published(db: Path) -> None:
    SqliteStore(db).close()
    store = ConferenceStore(db)
    member = {"who": "alice@example.com", "codec": "PCMU", "moderator": True}
    store.publish(
        "board",
        [
            {**member, "number": 1, "muted": False, "joined_at": time.time() - 5},
            {**member, "number": 2, "who": "bob@example.com", "muted": True,
             "moderator": False, "joined_at": time.time()},
        ],
    )  # fmt: skip
    store.close()


def test_list_and_show(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    published(db)
    code, out = run("conference", "list", "--db", str(db), "--json")
    assert code == 0 and json.loads(out) == [{"room": "board", "participants": 2}]
    code, out = run("conference", "show", "room-board", "--db", str(db))
    assert code == 0 and "bob@example.com" in out and "alice@example.com" in out
    code, out = run("conference", "show", "board", "--db", str(db), "--json")
    assert [m["number"] for m in json.loads(out)["participants"]] == [1, 2]


def test_commands_are_queued_for_the_media_host(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    published(db)
    assert run("conference", "mute", "board", "1", "--db", str(db))[0] == 0
    assert run("conference", "kick", "board", "2", "--db", str(db))[0] == 0
    store = ConferenceStore(db)
    taken = store.take_commands()
    assert [(c.room, c.action, c.member) for c in taken] == [
        ("board", "mute", 1),
        ("board", "kick", 2),
    ]
    assert store.take_commands() == []
    store.close()


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    published(db)
    code, out = run("conference", "show", "nowhere", "--db", str(db))
    assert code == 1 and out.strip().splitlines() == ["Error: no room nowhere (nobody is in it)"]
    code, out = run("conference", "kick", "board", "9", "--db", str(db))
    assert code == 1 and "no participant 9 in room board" in out
    code, out = run("conference", "list", "--db", str(tmp_path / "missing.db"))
    assert code == 1 and "no database" in out


def test_two_nodes_keep_to_their_own_rooms(tmp_path: Path) -> None:
    """Several nodes on one database: a host starting clears its own rooms only, and
    takes the commands for its own rooms only."""
    db = tmp_path / "s.db"
    SqliteStore(db).close()
    a = ConferenceStore(db, host="127.0.0.1:5060")
    b = ConferenceStore(db, host="127.0.0.2:5060")
    member = {"who": "alice@example.com", "codec": "PCMU", "moderator": True, "muted": False}
    a.publish("board", [{**member, "number": 1, "joined_at": time.time()}])
    b.publish("lobby", [{**member, "number": 1, "joined_at": time.time()}])
    b.reset()  # node B restarts
    assert [(r.name, r.host) for r in a.rooms()] == [("board", "127.0.0.1:5060")]
    assert run("conference", "mute", "board", "1", "--db", str(db))[0] == 0
    assert b.take_commands() == []
    assert [(c.room, c.action) for c in a.take_commands()] == [("board", "mute")]
    a.close()
    b.close()


def test_tables_from_before_nodes_are_made_again(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    SqliteStore(db).close()
    old = sqlite3.connect(db)
    old.execute(
        "CREATE TABLE conference_rooms (name TEXT PRIMARY KEY, members TEXT NOT NULL,"
        " updated_at REAL NOT NULL)"
    )
    old.execute("INSERT INTO conference_rooms VALUES ('stale', '[]', 0)")
    old.commit()
    old.close()
    store = ConferenceStore(db, host="n1")
    assert store.rooms() == []
    store.publish("board", [{"number": 1}])
    assert [r.host for r in store.rooms()] == ["n1"]
    store.close()
