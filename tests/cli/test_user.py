"""`sipline user`, `sipline domain` and `sipline registrations` on a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipline.cli.main import cli
from sipline.core.auth import ha1
from sipline.storage import Binding, SqliteStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "accounts.db"


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args), input=stdin)
    return result.exit_code, result.output


def test_add_list_passwd_del(db: Path) -> None:
    assert run("domain", "add", "Example.COM", "--db", str(db)) == (
        0, "added domain example.com\n"
    )  # fmt: skip
    code, out = run("user", "add", "alice@example.com", "--password", "s3cret", "--db", str(db))
    assert (code, out) == (0, "added alice@example.com\n")
    code, _ = run("user", "add", "bob@example.com", "--db", str(db), stdin="pw-b\npw-b\n")
    assert code == 0

    code, out = run("user", "list", "--json", "--db", str(db))
    assert code == 0
    listed = json.loads(out)
    assert [u["address"] for u in listed] == ["alice@example.com", "bob@example.com"]
    assert "MD5" in listed[0]["algorithms"] and "SHA-256" in listed[0]["algorithms"]
    code, out = run("user", "list", "--db", str(db))
    assert code == 0 and "alice@example.com" in out and "2 user(s)" in out

    # Only HA1s are stored, never the password.
    store = SqliteStore(db)
    alice = store.get_user("alice", "example.com")
    store.close()
    assert alice is not None
    assert alice.ha1["MD5"] == ha1("alice", "example.com", "s3cret", "MD5")
    assert b"s3cret" not in db.read_bytes()

    code, out = run("user", "passwd", "alice@example.com", "--password", "new", "--db", str(db))
    assert code == 0
    store = SqliteStore(db)
    assert store.lookup_ha1("alice", "example.com", "MD5") == ha1(
        "alice", "example.com", "new", "MD5"
    )
    store.close()

    assert run("user", "del", "bob@example.com", "--db", str(db))[0] == 0
    code, out = run("user", "list", "--json", "--db", str(db))
    assert [u["address"] for u in json.loads(out)] == ["alice@example.com"]


def test_prompted_password_must_match(db: Path) -> None:
    run("domain", "add", "example.com", "--db", str(db))
    code, out = run("user", "add", "carol@example.com", "--db", str(db), stdin="a\nb\na\na\n")
    assert code == 0, out
    assert "do not match" in out.lower()


def test_errors_are_clear_and_fail(db: Path, tmp_path: Path) -> None:
    code, out = run("user", "add", "alice@example.com", "--password", "x", "--db", str(db))
    assert code == 1
    assert "no domain example.com" in out and "sipline domain add example.com" in out
    run("domain", "add", "example.com", "--db", str(db))
    run("user", "add", "alice@example.com", "--password", "x", "--db", str(db))
    code, out = run("user", "add", "alice@example.com", "--password", "y", "--db", str(db))
    assert code == 1 and "alice@example.com exists already" in out
    code, out = run("user", "del", "nobody@example.com", "--db", str(db))
    assert code == 1 and "no user nobody@example.com" in out
    code, out = run("user", "passwd", "nobody@example.com", "--password", "x", "--db", str(db))
    assert code == 1 and "no user nobody@example.com" in out
    code, out = run("user", "add", "not-an-address", "--password", "x", "--db", str(db))
    assert code == 2 and "user@domain" in out
    code, out = run("domain", "add", "example.com", "--db", str(db))
    assert code == 1 and "exists already" in out
    code, out = run("domain", "del", "example.com", "--db", str(db))
    assert code == 1 and "still has users" in out
    code, out = run("domain", "add", "bad domain!", "--db", str(db))
    assert code == 2

    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    code, out = run("user", "list", "--db", str(missing))
    assert code == 1 and "cannot open database" in out
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just some text" * 100)
    for args in (("user", "list"), ("registrations",), ("domain", "list")):
        code, out = run(*args, "--db", str(garbage))
        assert code == 1 and "cannot open database" in out, args


def test_domains(db: Path) -> None:
    run("domain", "add", "a.example", "--db", str(db))
    run("domain", "add", "b.example", "--db", str(db))
    run("user", "add", "x@b.example", "--password", "x", "--db", str(db))
    code, out = run("domain", "list", "--json", "--db", str(db))
    assert json.loads(out) == [
        {"domain": "a.example", "users": 0},
        {"domain": "b.example", "users": 1},
    ]
    assert run("domain", "del", "a.example", "--db", str(db))[0] == 0
    code, out = run("domain", "del", "a.example", "--db", str(db))
    assert code == 1 and "no domain a.example" in out


def test_default_database_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIPLINE_DB", str(tmp_path / "env.db"))
    assert run("domain", "add", "example.com")[0] == 0
    assert (tmp_path / "env.db").exists()
    monkeypatch.delenv("SIPLINE_DB")
    monkeypatch.chdir(tmp_path)
    assert run("domain", "add", "example.org")[0] == 0
    assert (tmp_path / "sipline.db").exists()


def test_registrations_table_and_json(db: Path) -> None:
    store = SqliteStore(db)
    store.upsert_binding(
        Binding("alice@example.com", "sip:alice@192.0.2.1:5060", 4e9, "c1", 1, q=0.5,
                received="udp:198.51.100.1:40000", user_agent="softphone/1.0")
    )  # fmt: skip
    store.upsert_binding(Binding("bob@example.com", "sip:bob@192.0.2.2", 1.0, "c2", 1))  # expired
    store.close()
    for name in ("registrations", "reg"):
        code, out = run(name, "--json", "--db", str(db))
        assert code == 0
        [row] = json.loads(out)
        assert row["aor"] == "alice@example.com" and row["q"] == 0.5
        assert row["received"] == "udp:198.51.100.1:40000" and row["expires_in"] > 0
    code, out = run("reg", "--db", str(db))
    assert code == 0 and "alice@example.com" in out and "bob@" not in out
    code, out = run("reg", "bob@example.com", "--json", "--db", str(db))
    assert json.loads(out) == []
