"""The entity tags of the presence `sipline presence` left published.

RFC 3903 §4.1: a publication is named by the entity tag the server returned, and
only with it (SIP-If-Match) can a later publication modify or remove it (§4.4,
§4.5). `sipline presence --set` ends while its status stays published, so the tag
is kept in a small file, `$XDG_STATE_HOME/sipline/presence.json` (else
`~/.local/state/...`), per account and server: the next `--set` modifies that
publication instead of adding a second one, and `--withdraw` alone removes it.
The file is a convenience: a missing or damaged one only means a fresh publication.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

__all__ = ["PresenceState"]

log = logging.getLogger("sipline.cli")


def _default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sipline" / "presence.json"


class PresenceState:
    def __init__(self, aor: str, server: str | None, path: Path | None = None) -> None:
        self.key = f"{aor} via {server or 'the domain'}"
        self.path = path if path is not None else _default_path()

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def etag(self, *, now: float) -> str | None:
        """The entity tag of our unexpired publication, if we left one."""
        entry = self._read().get(self.key)
        if not isinstance(entry, dict):
            return None
        etag, until = entry.get("etag"), entry.get("expires_at")
        if not isinstance(etag, str) or not isinstance(until, int | float) or until <= now:
            return None
        return etag

    def save(self, etag: str | None, expires_at: float) -> None:
        """Remember `etag` until `expires_at` (None: forget it)."""
        data = {k: v for k, v in self._read().items() if k != self.key}
        if etag is not None:
            data[self.key] = {"etag": etag, "expires_at": expires_at}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:
            log.warning("cannot keep the presence entity tag in %s: %s", self.path, exc)
