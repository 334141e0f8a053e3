"""The one HTTP listener (`[http] listen`): `/metrics`, the management API under
`/api/`, and the dashboard (static files shipped in the package, no network needed).

aiohttp, on the server's own event loop. The listener runs in the single server
process, or in worker 0 with `--workers N` (on a socket the supervisor bound, so a
taken port is reported at start and a restarted worker 0 serves the same one).
Everything but the login page and the web phone (server/ops/phone.py) needs the
admin credential (server/ops/auth.py).
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from importlib import resources
from typing import Any

from aiohttp import web

from sipline.server.ops.api import Control, add_api_routes
from sipline.server.ops.auth import COOKIE, SESSION_S, Guard
from sipline.server.ops.config import HttpSettings
from sipline.server.ops.listen import http_url
from sipline.server.ops.phone import PHONE_CSP, add_phone_routes, is_phone_path
from sipline.server.records.metrics import CONTENT_TYPE

__all__ = ["HttpListener"]

log = logging.getLogger("sipline.http")

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
_OPEN = frozenset({"/", "/app.js", "/app.css", "/api/login", "/api/logout"})
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'",
}


def _static(name: str) -> bytes:
    return resources.files("sipline.server.ops").joinpath("static", name).read_bytes()


class HttpListener:
    def __init__(self, settings: HttpSettings, control: Control) -> None:
        self.settings = settings
        self.guard = Guard(settings)
        self.control = control
        self.runner: web.AppRunner | None = None
        self.url = ""

    def apply(self, settings: HttpSettings) -> None:
        """New credentials take effect at once (reload); sessions stay valid."""
        self.settings = settings
        self.guard.settings = settings

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        for path in _STATIC:
            app.router.add_get(path, self._serve_static)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/api/login", self._login)
        app.router.add_post("/api/logout", self._logout)
        add_api_routes(app, self.control)
        add_phone_routes(app, self.control.websockets)
        return app

    async def start(self, sock: socket.socket) -> str:
        """Serve on `sock` (server/ops/listen.py); returns the URL."""
        self.runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self.runner.setup()
        tls: ssl.SSLContext | None = None
        if self.settings.tls_cert is not None and self.settings.tls_key is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        await web.SockSite(self.runner, sock, ssl_context=tls).start()
        self.url = http_url(self.settings, sock)
        if self.guard.open:
            log.warning("http: %s has no admin credential ([http] admin_password)", self.url)
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # -- handlers ---------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # The web phone's login is the SIP account, checked by the registrar.
        phone = is_phone_path(request.path)
        if (
            not phone
            and request.path not in _OPEN
            and not self.guard.allowed(
                request.headers.get("Authorization"), request.cookies.get(COOKIE)
            )
        ):
            if request.path == "/metrics" or request.path.startswith("/api/"):
                return web.json_response(
                    {"error": "the admin credential is needed"},
                    status=401,
                    # Not Basic: a browser would open its own password dialog over the dashboard's.
                    headers={"WWW-Authenticate": 'Bearer realm="sipline"'},
                )
            raise web.HTTPFound("/")
        # A form on another site must not act with the operator's cookie: every change
        # is JSON (not a simple CORS request), and the cookie is SameSite=Strict.
        if (
            request.method in ("POST", "PUT", "DELETE")
            and request.content_length
            and request.content_type != "application/json"
        ):
            return web.json_response({"error": "send JSON"}, status=415)
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400 and request.path.startswith("/api/"):
                return web.json_response({"error": exc.reason}, status=exc.status)
            raise
        response.headers.update(_SECURITY_HEADERS)
        if phone:
            response.headers["Content-Security-Policy"] = PHONE_CSP
        return response

    async def _serve_static(self, request: web.Request) -> web.Response:
        name, kind = _STATIC[request.path]
        return web.Response(body=_static(name), content_type=kind.split(";")[0], charset="utf-8")

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.control.before_scrape()
        body = self.control.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _login(self, request: web.Request) -> web.Response:
        try:
            doc = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "send JSON"}, status=400)
        password = doc.get("password") if isinstance(doc, dict) else None
        if self.guard.open:
            return web.json_response({"ok": True, "open": True})
        source = request.remote or "?"
        if self.guard.locked_out(source):
            return web.json_response(
                {"error": "too many wrong passwords: try again in a minute"},
                status=429,
                headers={"Retry-After": "60"},
            )
        if not isinstance(password, str) or not self.guard.password_ok(password):
            self.guard.failed(source)
            log.warning(
                "http: failed admin login src=%s",
                source,
                extra={"event": "admin_login_failed", "src": source},
            )
            return web.json_response({"error": "wrong password"}, status=403)
        response = web.json_response({"ok": True})
        response.set_cookie(
            COOKIE,
            self.guard.new_session(),
            max_age=int(SESSION_S),
            httponly=True,
            samesite="Strict",
            secure=self.settings.tls_cert is not None,
        )
        return response

    async def _logout(self, request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE)
        return response
