"""`sipline serve` with no configuration and no users says where it listens and how to
add the first user; with users it says how many."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sipline.storage import SqliteStore


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def start_lines(tmp_path: Path, db: Path) -> list[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sipline.cli.main import main; main()", "serve",
         "--listen", f"udp:127.0.0.1:{port}", "--db", str(db)],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 20
    try:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("sipline: serving") or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        proc.stderr.close()
    assert proc.returncode == 0, lines
    assert lines and lines[-1] == f"sipline: serving udp:127.0.0.1:{port}", lines
    return lines


def test_first_start_explains_how_to_add_a_user(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    lines = start_lines(tmp_path, db)
    assert f"sipline: database {db}" in lines
    assert "sipline: domains (none yet)" in lines
    assert f"sipline: add a domain:  sipline domain add example.com --db {db}" in lines
    assert f"sipline: add a user:    sipline user add alice@example.com --db {db}" in lines
    assert db.exists()  # created on first run


def test_start_with_users_counts_them(tmp_path: Path) -> None:
    db = tmp_path / "users.db"
    store = SqliteStore(db)
    store.add_domain("example.org")
    store.add_user("alice", "example.org", "pw")
    store.close()
    lines = start_lines(tmp_path, db)
    assert "sipline: domains example.org" in lines
    assert "sipline: 1 user" in lines
    assert not any("add a user" in line for line in lines)


def test_unopenable_database_fails_with_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"garbage, not SQLite" * 50)
    done = subprocess.run(
        [sys.executable, "-c", "from sipline.cli.main import main; main()", "serve",
         "--listen", f"udp:127.0.0.1:{free_port()}", "--db", str(bad)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot open database {bad}" in done.stderr
