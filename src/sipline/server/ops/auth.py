"""Who may use the HTTP listener: the admin credential, checked in constant time.

Three ways in, all for the one administrator: a session cookie set by the dashboard's
login (`POST /api/login` with the admin password; HMAC-signed expiry, HttpOnly,
SameSite=Strict), HTTP Basic with user `admin` and that password (curl, the CLI's
`--api`), or `Authorization: Bearer TOKEN` with `[http] token` (Prometheus, scripts).
Without any credential configured (only allowed on a loopback address) every request
is let in, as a local control socket is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time

from sipline.server.ops.config import HttpSettings

__all__ = ["COOKIE", "SESSION_S", "Guard"]

COOKIE = "sipline_session"
SESSION_S = 12 * 3600.0
# Wrong passwords: after this many from one address within the window, that address
# is refused (429) until the window has passed, so the password cannot be guessed fast.
MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Guard:
    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self._key = os.urandom(32)  # sessions last while this process runs
        self._failures: dict[str, list[float]] = {}  # address -> times of wrong passwords

    def locked_out(self, address: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        recent = [t for t in self._failures.get(address, ()) if now - t < FAILURE_WINDOW_S]
        if recent:
            self._failures[address] = recent
        else:
            self._failures.pop(address, None)
        return len(recent) >= MAX_FAILURES

    def failed(self, address: str, now: float | None = None) -> None:
        if len(self._failures) > 10_000:  # a spray from many addresses: forget the oldest
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(address, []).append(time.monotonic() if now is None else now)

    @property
    def open(self) -> bool:
        return not self.settings.credential

    def password_ok(self, password: str) -> bool:
        secret = self.settings.admin_password
        return secret is not None and _same(password, secret)

    def new_session(self, now: float | None = None) -> str:
        until = str(int((now if now is not None else time.time()) + SESSION_S))
        mac = hmac.new(self._key, until.encode(), hashlib.sha256).hexdigest()
        return f"{until}.{mac}"

    def session_ok(self, value: str, now: float | None = None) -> bool:
        until, _, mac = value.partition(".")
        if not until.isdigit():
            return False
        good = hmac.new(self._key, until.encode(), hashlib.sha256).hexdigest()
        return _same(mac, good) and int(until) > (now if now is not None else time.time())

    def allowed(self, authorization: str | None, cookie: str | None) -> bool:
        if self.open:
            return True
        if cookie and self.session_ok(cookie):
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            token = self.settings.token
            return token is not None and _same(value.strip(), token)
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, _, password = decoded.partition(":")
            return user == "admin" and self.password_ok(password)
        return False
