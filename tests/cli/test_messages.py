"""`sipline messages`: stored messages, pending and failed, on a real database."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from sipline.cli.main import cli
from sipline.storage import NewMessage, SqliteStore


def run(*args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))
    return result.exit_code, result.output


def stored(text: str) -> NewMessage:
    now = time.time()
    return NewMessage(
        aor="bob@example.com",
        sender="<sip:alice@example.com>;tag=a",
        recipient="<sip:bob@example.com>",
        call_id=f"c-{text}",
        content_type="text/plain",
        body=text.encode(),
        received_at=now,
        expires_at=now + 600,
    )


def test_failed_messages_are_listed_with_the_refusal(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SqliteStore(db)
    bad = store.add_message(stored("bad"))
    store.add_message(stored("good"))
    store.fail_message(bad, "415 Unsupported Media Type", now=time.time())
    store.close()
    code, out = run("messages", "list", "bob@example.com", "--db", str(db))
    assert code == 0
    first, second = out.splitlines()
    assert "sip:alice@example.com -> bob@example.com" in first
    assert first.endswith("failed: 415 Unsupported Media Type") and second.endswith("waiting")
    code, out = run("messages", "list", "--failed", "--json", "--db", str(db))
    (row,) = json.loads(out)
    assert row["state"] == "failed" and row["id"] == bad
    assert row["failure"] == "415 Unsupported Media Type"
    assert run("messages", "del", str(bad), "--db", str(db)) == (
        0, f"deleted stored message {bad}\n"
    )  # fmt: skip
    code, out = run("messages", "del", str(bad), "--db", str(db))
    assert code == 1 and out.strip() == f"Error: no stored message {bad}"
    code, out = run("messages", "list", "not an address", "--db", str(db))
    assert code == 1 and out.count("\n") == 1
