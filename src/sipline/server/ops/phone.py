"""The web phone at `/phone/`: static files shipped in the package (JsSIP bundled, with
its licence) and the WebSocket address its page should dial.

No admin login: the SIP account is the login, checked by the registrar over the
WebSocket like any device's. `config.json` names the WebSocket for the page as the
browser reached it: behind a reverse proxy (X-Forwarded-Proto or Forwarded present)
the proxy's own host and `/ws`, which README "Behind an HTTPS reverse proxy" maps to
the server's WS listener; otherwise the host the page came from and the port of a WSS
(for an HTTPS page) or WS listener.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web

__all__ = ["PHONE_CSP", "add_phone_routes", "is_phone_path", "websocket_url"]

# The page may open WebSockets to another port of the same host, and play streams.
PHONE_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:;"
    " img-src 'self' data:; style-src 'self'"
)

_FILES = {
    "": ("index.html", "text/html"),
    "phone.js": ("phone.js", "text/javascript"),
    "phone.css": ("phone.css", "text/css"),
    "jssip.min.js": ("jssip.min.js", "text/javascript"),
    "LICENSES.txt": ("LICENSES.txt", "text/plain"),
}

Listeners = Callable[[], list[tuple[str, int]]]


def is_phone_path(path: str) -> bool:
    return path == "/phone" or path.startswith("/phone/")


def _read(name: str) -> bytes:
    return resources.files("sipline.server.ops").joinpath("static", "phone", name).read_bytes()


def websocket_url(
    headers: dict[str, str], host: str, secure: bool, listeners: list[tuple[str, int]]
) -> str | None:
    """The WebSocket the page should dial, or None when the server has no WS listener.

    `headers` are the page request's (lower-case names), `host` its Host header,
    `secure` whether it came over HTTPS, `listeners` the ("ws"|"wss", port) pairs."""
    proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    forwarded = headers.get("forwarded", "")
    if proto or forwarded:
        if not proto:
            proto = "https" if "proto=https" in forwarded.lower() else "http"
        public = headers.get("x-forwarded-host", "").split(",")[0].strip() or host
        return f"{'wss' if proto == 'https' else 'ws'}://{public}/ws"
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    ports = dict(listeners)
    for scheme in ("wss", "ws") if secure else ("ws", "wss"):
        if scheme in ports:
            return f"{scheme}://{name}:{ports[scheme]}"
    return None


def add_phone_routes(app: web.Application, listeners: Listeners) -> None:
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("phone/")  # relative: right behind a proxy's path prefix too

    async def serve(request: web.Request) -> web.Response:
        entry = _FILES.get(request.match_info.get("name", ""))
        if entry is None:
            raise web.HTTPNotFound()
        name, kind = entry
        return web.Response(body=_read(name), content_type=kind, charset="utf-8")

    async def config(request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        url = websocket_url(headers, request.host, request.secure, listeners())
        doc: dict[str, Any] = {"websocket": url}
        return web.json_response(doc, headers={"Cache-Control": "no-store"})

    app.router.add_get("/phone", redirect)
    app.router.add_get("/phone/", serve)
    app.router.add_get("/phone/config.json", config)
    app.router.add_get("/phone/{name}", serve)
