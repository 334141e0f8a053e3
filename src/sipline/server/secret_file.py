"""The server's secret, kept beside its database.

Digest nonces (RFC 7616 §3.3: the server chooses how) and our signed Record-Route
(sipline.server.security.route_sign) are keyed hashes under one secret that every worker
shares. Kept in a file readable by the server's user only, it survives a restart: a
phone answering a challenge issued just before it is not re-challenged, and a request in
a dialog set up before it still follows the dialog's route set through us (a caller can
still hang up a call to a foreign domain). A database that is not a file (":memory:")
gets a fresh secret each start.
"""

from __future__ import annotations

import os
from pathlib import Path

from sipline.storage.location import is_url, local_folder

__all__ = ["SECRET_BYTES", "secret_path", "server_secret"]

SECRET_BYTES = 32


def secret_path(database: Path | str) -> Path | None:
    if str(database) == ":memory:":
        return None
    if is_url(database):
        # A PostgreSQL database: the secret stays with the server, in its directory.
        return local_folder(database) / "sipline-postgresql.secret"
    database = Path(database)
    return database.with_name(database.name + ".secret")


def server_secret(database: Path | str) -> bytes:
    """The secret of the server whose database is `database`, created (mode 0600) on
    first use; a missing, unreadable or damaged file gives way to a new secret."""
    path = secret_path(database)
    if path is None:
        return os.urandom(SECRET_BYTES)
    try:
        text = path.read_text(encoding="ascii").strip()
        secret = bytes.fromhex(text)
        if len(secret) == SECRET_BYTES:
            return secret
    except (OSError, ValueError):
        pass
    secret = os.urandom(SECRET_BYTES)
    try:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secret.hex() + "\n")
        os.replace(tmp, path)
    except OSError:
        return secret  # a read-only directory: this run's secret is not kept
    return secret
