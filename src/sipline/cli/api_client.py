"""`--api URL`: the CLI against a running server's management API instead of the
database file. The credential comes from `$SIPLINE_API_TOKEN` (a bearer token) or
`$SIPLINE_ADMIN_PASSWORD` (HTTP Basic, user admin)."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["api_get", "api_option", "api_request", "via_api"]

F = TypeVar("F", bound=Callable[..., Any])


def api_option(fn: F) -> F:
    decorator = click.option(
        "--api",
        metavar="URL",
        default=None,
        help="A running server's HTTP address (http://127.0.0.1:8080/) instead of --db; credential from $SIPLINE_API_TOKEN or $SIPLINE_ADMIN_PASSWORD.",
    )
    return decorator(fn)


def via_api(where: Any, api: str | None) -> str | None:
    """The URL when the command goes through `--api` (then `--db`/`--config` is an error)."""
    if api is not None and (where.db is not None or where.config_path is not None):
        raise click.UsageError("give --db/--config or --api, not both")
    return api


def _headers() -> dict[str, str]:
    token = os.environ.get("SIPLINE_API_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    password = os.environ.get("SIPLINE_ADMIN_PASSWORD")
    if password:
        basic = base64.b64encode(f"admin:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {}


def api_request(
    base: str, method: str, path: str, query: dict[str, str] | None = None, body: Any = None
) -> bytes:
    """One request; a failure becomes a one-line ClickException."""
    if not base.startswith(("http://", "https://")):
        raise click.ClickException(f"--api: {base!r} must start with http:// or https://")
    url = base.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    headers = _headers()
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http/https checked above)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, AttributeError):
            reason = exc.reason
        raise click.ClickException(f"{base}: {exc.code} {reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", exc)
        raise click.ClickException(f"cannot reach {base}: {why}") from None


def api_get(base: str, path: str, query: dict[str, str] | None = None) -> Any:
    return json.loads(api_request(base, "GET", path, query))
