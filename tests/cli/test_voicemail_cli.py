"""`sipline voicemail …` and `sipline user email` on a real database: listing, playing
to a file or stdout, deleting, greeting and PIN; user errors are one line, exit 1/2."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sipline.cli.main import cli
from sipline.media.audio import tone
from sipline.media_io.audio_files import read_wav, write_wav
from sipline.server.voicemail.pin import check_pin
from sipline.storage import SqliteStore

ALICE = "alice@example.com"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "vm.db"
    store = SqliteStore(path)
    store.add_domain("example.com")
    store.add_user("alice", "example.com", "pw")
    store.add_voicemail(ALICE, "bob@example.com", 1_800_000_000.0, 2.0, b"RIFF-one")
    store.add_voicemail(ALICE, "carol@example.com", 1_800_000_100.0, 3.0, b"RIFF-two")
    store.close()
    return path


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args), input=stdin)
    return result.exit_code, result.output


def test_list_play_del(db: Path, tmp_path: Path) -> None:
    code, out = run("voicemail", "list", ALICE, "--json", "--db", str(db))
    assert code == 0
    rows = json.loads(out)
    assert [(r["caller"], r["heard"]) for r in rows] == [
        ("bob@example.com", False),
        ("carol@example.com", False),
    ]
    code, out = run("voicemail", "list", ALICE, "--db", str(db))
    assert code == 0 and "NEW" in out and "carol@example.com" in out
    target = tmp_path / "one.wav"
    code, _ = run("voicemail", "play", ALICE, str(rows[0]["id"]), str(target), "--db", str(db))
    assert code == 0 and target.read_bytes() == b"RIFF-one"
    code, out = run("voicemail", "play", ALICE, str(rows[1]["id"]), "-", "--db", str(db))
    assert code == 0 and "RIFF-two" in out
    assert run("voicemail", "del", ALICE, str(rows[0]["id"]), "--db", str(db))[0] == 0
    code, out = run("voicemail", "list", ALICE, "--json", "--db", str(db))
    assert [r["id"] for r in json.loads(out)] == [rows[1]["id"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("voicemail", "list", "nobody@example.com"), "no user nobody@example.com"),
        (("voicemail", "list", "not-an-address"), "ADDRESS"),
        (("voicemail", "del", ALICE, "999"), "no message 999"),
        (("voicemail", "play", ALICE, "999", "-"), "no message 999"),
        (("voicemail", "pin", ALICE, "--pin", "12"), "4 to 16 digits"),
        (("voicemail", "greeting", ALICE), "give a FILE or --default"),
        (("user", "email", ALICE, "not an email"), "is not an email address"),
        (("user", "email", "nobody@example.com", "a@b.example"), "no user"),
    ],
)
def test_user_errors_are_one_line(db: Path, args: tuple[str, ...], message: str) -> None:
    code, out = run(*args, "--db", str(db))
    assert code != 0 and message in out
    assert "Traceback" not in out


def test_greeting_pin_and_email(db: Path, tmp_path: Path) -> None:
    hello = tmp_path / "hello.wav"
    write_wav(hello, tone(440.0, duration_s=0.5, sample_rate=16000), sample_rate=16000)
    assert run("voicemail", "greeting", ALICE, str(hello), "--db", str(db)) == (0, "greeting set\n")
    notaudio = tmp_path / "x.wav"
    notaudio.write_text("hello")
    code, out = run("voicemail", "greeting", ALICE, str(notaudio), "--db", str(db))
    assert code == 1 and out.count("\n") == 1
    assert run("voicemail", "pin", ALICE, "--pin", "2468", "--db", str(db))[0] == 0
    assert run("user", "email", ALICE, "alice@mail.example.com", "--db", str(db))[0] == 0
    store = SqliteStore(db)
    box = store.get_mailbox(ALICE)
    store.close()
    assert box.greeting is not None and len(read_wav(io.BytesIO(box.greeting))) == 4000  # 8 kHz
    assert box.pin_hash is not None and check_pin("2468", box.pin_hash)
    assert not check_pin("2469", box.pin_hash) and "2468" not in box.pin_hash
    assert box.email == "alice@mail.example.com"
    assert run("voicemail", "greeting", ALICE, "--default", "--db", str(db))[0] == 0
    assert run("voicemail", "pin", ALICE, "--clear", "--db", str(db))[0] == 0
    store = SqliteStore(db)
    box = store.get_mailbox(ALICE)
    store.close()
    assert box.greeting is None and box.pin_hash is None
