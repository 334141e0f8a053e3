"""Every `--json` output of every command, run against a real `sipline serve`: each
line of the event-printing commands is one object whose `event` is a fixed name with
the typed fields of `sipline.cli.output.EVENTS`; each listing command prints one
document of the shape README gives; README names every event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_procs import HOST, Proc, serving

from sipline.cli.output import DOCUMENTS, EVENTS, check_event

README = Path(__file__).parent.parent.parent / "README.md"


def _account(user: str, port: int) -> list[str]:
    return ["--user", f"{user}@example.com", "--password", f"{user}-pw",
            "--server", f"{HOST}:{port}", "--listen", f"{HOST}:0", "--json"]  # fmt: skip


def _events(proc: Proc) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in proc.out]
    for event in events:
        assert check_event(event) == [], (event, check_event(event))
    return events


def test_every_json_line_follows_the_schema(tmp_path: Path) -> None:
    seen: dict[str, set[str]] = {}
    with serving(tmp_path / "serve", users=("alice", "bob", "carol", "dave")) as port:
        db = ["--db", str(tmp_path / "serve" / "sipline.db")]
        bob = Proc("answer", *_account("bob", port), "--duration", "1")
        try:
            bob.wait_for('"event": "waiting"')
            rules = Proc("route", "set", "carol@example.com", "--forward-busy", "bob@example.com",
                         *db)  # fmt: skip
            assert rules.finish() == 0, rules.stderr
            documents = {
                name: Proc(*name.split(), *extra, "--json", *db)
                for name, extra in (
                    ("user list", ()),
                    ("domain list", ()),
                    ("registrations", ()),
                    ("watchers list", ("alice@example.com",)),
                    ("route show", ()),
                    ("route explain", ("bob@example.com",)),
                )
            }
            for proc in documents.values():
                assert proc.finish() == 0, proc.stderr
            runs = {
                "message": [
                    Proc("message", "bob@example.com", "hi", *_account("alice", port)),
                    Proc("message", "dave@example.com", "later", *_account("alice", port)),
                ],
                "call": [
                    Proc("call", "bob@example.com", *_account("alice", port), "--dtmf", "1",
                         "--duration", "1.5"),
                    Proc("call", "nobody@example.com", *_account("alice", port)),
                ],
                "presence": [
                    Proc("presence", *_account("alice", port), "--set", "away", "--note", "out"),
                    Proc("presence", *_account("carol", port), "--watch", "alice@example.com",
                         "--duration", "2"),
                ],
                "chat": [
                    Proc("chat", "alice@example.com", *_account("carol", port), "--linger", "1")
                ],
            }  # fmt: skip
            for name, procs in runs.items():
                for proc in procs:
                    proc.finish()
                    seen.setdefault(name, set()).update(e["event"] for e in _events(proc))
            stored = Proc("messages", "list", "--json", *db)  # dave's message waits
            assert stored.finish() == 0, stored.stderr
            documents["messages list"] = stored
            bob.finish()
            seen["answer"] = {e["event"] for e in _events(bob)}
            checked = tmp_path / "options.sip"
            checked.write_bytes(b"OPTIONS sip:x SIP/2.0\r\n\r\n")
            check = Proc("check", "--json", str(checked))
            check.finish()
            seen["check"] = {e["event"] for e in _events(check)}
        finally:
            bob.stop()
    assert seen["answer"] >= {"waiting", "message", "incoming", "answered", "dtmf", "ended",
                              "stats"}, seen  # fmt: skip
    assert seen["call"] >= {"calling", "progress", "answered", "ended", "stats"}, seen
    assert seen["message"] == {"delivered", "stored"}, seen
    assert seen["presence"] >= {"published", "presence"}, seen
    assert "chatting" in seen["chat"], seen
    assert seen["check"] == {"checked"}
    docs = {name: json.loads(proc.stdout) for name, proc in documents.items()}
    assert set(docs) == set(DOCUMENTS)
    for name, (shape, keys) in DOCUMENTS.items():
        doc = docs[name]
        if shape == "list":
            assert isinstance(doc, list) and doc, name
            assert all(set(item) == set(keys) for item in doc), (name, doc)
        else:
            assert isinstance(doc, dict) and doc, name
            assert not keys or set(doc) == set(keys), (name, doc)


def test_readme_names_every_event() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [name for name in EVENTS if f"`{name}`" not in text]
    assert missing == [], missing
