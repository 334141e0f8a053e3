"""The SQLite schema, as the list of migrations that builds it.

`MIGRATIONS[i]` takes the schema from version i to i + 1 (`PRAGMA user_version`);
`SqliteStore` runs each in its own transaction. A migration is only ever appended:
a file written by an older sipline is brought up to date on open.
"""

from __future__ import annotations

from sipline.storage.sqlite_im import BEAT_MIGRATION, IM_MIGRATION, MESSAGE_STATE_MIGRATION
from sipline.storage.sqlite_ops import OPS_MIGRATION
from sipline.storage.sqlite_shared import BAN_MIGRATION, NONCE_DROP_MIGRATION, SHARED_MIGRATION
from sipline.storage.sqlite_voicemail import VOICEMAIL_MIGRATION

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE domains (
            name TEXT PRIMARY KEY NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE users (
            username TEXT NOT NULL,
            domain TEXT NOT NULL REFERENCES domains(name) ON DELETE RESTRICT,
            PRIMARY KEY (username, domain)
        ) WITHOUT ROWID""",
        """CREATE TABLE credentials (
            username TEXT NOT NULL,
            domain TEXT NOT NULL,
            algorithm TEXT NOT NULL,
            ha1 TEXT NOT NULL,
            PRIMARY KEY (username, domain, algorithm),
            FOREIGN KEY (username, domain) REFERENCES users(username, domain)
                ON DELETE CASCADE
        ) WITHOUT ROWID""",
        """CREATE TABLE bindings (
            id INTEGER PRIMARY KEY,
            aor TEXT NOT NULL,
            contact TEXT NOT NULL,
            expires_at REAL NOT NULL,
            call_id TEXT NOT NULL,
            cseq INTEGER NOT NULL,
            q REAL,
            path TEXT NOT NULL DEFAULT '[]',
            instance TEXT,
            reg_id INTEGER,
            received TEXT,
            user_agent TEXT,
            params TEXT NOT NULL DEFAULT '',
            updated_at REAL NOT NULL,
            UNIQUE (aor, contact)
        )""",
        "CREATE INDEX bindings_expires_at ON bindings(expires_at)",
    ),
    # 2: routing features (per-user rules, per-device labels and locations).
    (
        """CREATE TABLE route_rules (
            aor TEXT PRIMARY KEY NOT NULL,
            document TEXT NOT NULL,
            updated_at REAL NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE device_info (
            aor TEXT NOT NULL,
            device TEXT NOT NULL,
            label TEXT,
            region TEXT,
            pidf TEXT,
            source TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (aor, device)
        ) WITHOUT ROWID""",
    ),
    # 3: messaging and presence (see sqlite_im.py).
    IM_MIGRATION,
    # 4: what several server processes on one file share (see sqlite_shared.py).
    SHARED_MIGRATION,
    # 5: a version number for the HA1s, so a server may cache them in memory.
    (
        """CREATE TABLE credentials_version (
            id INTEGER PRIMARY KEY CHECK (id = 0),
            n INTEGER NOT NULL
        )""",
        "INSERT INTO credentials_version VALUES (0, 0)",
        """CREATE TRIGGER credentials_inserted AFTER INSERT ON credentials
            BEGIN UPDATE credentials_version SET n = n + 1; END""",
        """CREATE TRIGGER credentials_updated AFTER UPDATE ON credentials
            BEGIN UPDATE credentials_version SET n = n + 1; END""",
        """CREATE TRIGGER credentials_deleted AFTER DELETE ON credentials
            BEGIN UPDATE credentials_version SET n = n + 1; END""",
    ),
    # 6: stored messages refused for good are kept as failed (see sqlite_im.py).
    MESSAGE_STATE_MIGRATION,
    # 7: source addresses banned for failed authentication, seen by every worker.
    BAN_MIGRATION,
    # 8: call detail records, operator events, call messages (see sqlite_ops.py).
    OPS_MIGRATION,
    # 9: voicemail messages, mailbox settings and the email outbox (see sqlite_voicemail.py).
    VOICEMAIL_MIGRATION,
    # 10: no shared digest nonce counts (see sqlite_shared.py).
    NONCE_DROP_MIGRATION,
    # 11: server processes' beats, for taking over a silent one's subscriptions.
    BEAT_MIGRATION,
    # 12: the flow each binding's REGISTER came on, and its owner (storage/base.py Binding).
    ("ALTER TABLE bindings ADD COLUMN flow TEXT",),
)
SCHEMA_VERSION = len(MIGRATIONS)
