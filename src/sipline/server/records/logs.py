"""Log output: the usual text lines, or one JSON object per line (`[log] format =
"json"`) for log shippers and fail2ban-like tools. Fields given as `extra=` (event,
call_id, user, src, status) become keys of their own."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "configure_logging"]

_FIELDS = ("event", "call_id", "user", "src", "status")


class JsonFormatter(logging.Formatter):
    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if self.worker is not None:
            doc["worker"] = self.worker
        for name in _FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(level: str, fmt: str, worker: int | None = None) -> None:
    """Set up the root logger for `sipline serve` (and again on reload)."""
    root = logging.getLogger()
    handler: logging.Handler
    if root.handlers:
        handler = root.handlers[0]
    else:
        handler = logging.StreamHandler(sys.stderr)
        root.addHandler(handler)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(worker))
    else:
        who = f" worker{worker}" if worker is not None else ""
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s{who} %(name)s: %(message)s")
        )
    root.setLevel(level.upper())
