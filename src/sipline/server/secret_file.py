"""The server's secret, kept beside its database.

Digest nonces (RFC 7616 §3.3: the server chooses how) and our signed Record-Route
(sipline.server.security.route_sign) are keyed hashes under one secret that every worker
shares. Kept in a file readable by the server's user only, it survives a restart: a
phone answering a challenge issued just before it is not re-challenged, and a request in
a dialog set up before it still follows the dialog's route set through us (a caller can
still hang up a call to a foreign domain). A database that is not a file (":memory:")
gets a fresh secret each start. Several nodes sharing one database share the secret
too (README "Running several nodes"): on one machine they find the same file beside
it; on several, `[server] secret_file` names a copy of it on each.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["SECRET_BYTES", "secret_path", "server_secret"]

SECRET_BYTES = 32


def secret_path(database: Path, file: Path | None = None) -> Path | None:
    """`file` (`[server] secret_file`), else DATABASE.secret beside a database file."""
    if file is not None:
        return file
    if str(database) == ":memory:":
        return None
    return database.with_name(database.name + ".secret")


def server_secret(database: Path, file: Path | None = None) -> bytes:
    """The secret of the server whose database is `database`, created (mode 0600) on
    first use; a missing, unreadable or damaged file gives way to a new secret.

    Several nodes may start at once on one database (README "Running several
    nodes"): the file is created only if absent (a hard link of a complete temporary
    file, which fails if another made it first), and the loser reads the winner's, so
    they all end up with one secret."""
    path = secret_path(database, file)
    if path is None:
        return os.urandom(SECRET_BYTES)
    found = _read(path)
    if found is not None:
        return found
    secret = os.urandom(SECRET_BYTES)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secret.hex() + "\n")
        try:
            os.link(tmp, path)  # only if absent: the first one made wins
        except FileExistsError:
            winner = _read(path)
            if winner is not None:
                return winner
            os.replace(tmp, path)  # a damaged file: ours replaces it
    except OSError:
        return secret  # a read-only directory: this run's secret is not kept
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return secret


def _read(path: Path) -> bytes | None:
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return secret if len(secret) == SECRET_BYTES else None
