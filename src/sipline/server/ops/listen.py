"""The HTTP listener's socket, bound before anything serves on it: by the single server
process, or by the supervisor of `--workers N` (which hands it to worker 0). Apart from
`http.py` so the supervisor binds it without importing aiohttp."""

from __future__ import annotations

import socket

from sipline.server.config_values import parse_hostport
from sipline.server.ops.config import HttpSettings
from sipline.server.startup import ServeError

__all__ = ["bind_http", "http_url"]


def bind_http(settings: HttpSettings) -> socket.socket:
    """A listening TCP socket at `[http] listen`; ServeError naming it if taken."""
    assert settings.listen is not None
    host, port = parse_hostport(settings.listen, "http.listen")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ServeError(f"cannot listen on http {settings.listen}: {reason}") from exc
    return sock


def http_url(settings: HttpSettings, sock: socket.socket) -> str:
    name = sock.getsockname()
    host = f"[{name[0]}]" if sock.family == socket.AF_INET6 else name[0]
    return f"{'https' if settings.tls_cert is not None else 'http'}://{host}:{name[1]}/"
