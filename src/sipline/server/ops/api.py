"""The management API (JSON under `/api/`), for the dashboard, scripts and the CLI's
`--api URL`:

    GET  /api/status                      the server's figures (was the SIGUSR1 line)
    GET  /api/history                     figures sampled over time (the dashboard's graphs)
    GET  /api/domains   POST {name}       DELETE /api/domains/{name}
    GET  /api/users     POST {address, password}   PUT /api/users/{address} {password}
                                          DELETE /api/users/{address}
    GET  /api/registrations[?aor=]        DELETE /api/registrations/{aor}
    GET  /api/routes    PUT /api/routes/{aor} {rules document}   DELETE /api/routes/{aor}
    GET  /api/calls[?active=1&since=&user=&limit=]
    GET  /api/calls/{call_id}             the record and its messages (the ladder)
    GET  /api/calls/{call_id}/pcap        the messages as a pcap file
    DELETE /api/calls/{call_id}           end an active call (BYE to both sides)
    GET  /api/events[?kind=&since=&limit=]
    POST /api/reload                      re-read the configuration file
"""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Any, Protocol

from aiohttp import web

from sipline.server.features.directory import load_rules
from sipline.server.features.rules import RuleError
from sipline.server.features.rules_document import check_forward_loops, parse_rules
from sipline.server.records.metrics import Metrics
from sipline.server.records.pcap import pcap_bytes
from sipline.server.records.trace import ladder, packets
from sipline.storage.aio import AsyncStore
from sipline.storage.base import DuplicateError, NotFoundError, StoreError, split_address

__all__ = ["Control", "add_api_routes"]


class Control(Protocol):
    """What the API needs from the running server (server/ops/service.py)."""

    store: AsyncStore
    metrics: Metrics
    regions: list[str]

    def status(self) -> dict[str, Any]: ...

    def history(self) -> list[dict[str, float]]: ...

    def wall(self) -> float:
        """Wall-clock seconds on the server's clock."""
        ...

    async def before_scrape(self) -> None: ...

    async def reload(self) -> dict[str, Any]: ...

    async def end_call(self, call_id: str) -> bool: ...

    def websockets(self) -> list[tuple[str, int]]:
        """The server's WebSocket listeners, ("ws" or "wss", port), for the web phone."""
        ...


def _number(request: web.Request, name: str, default: float | None) -> float | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise web.HTTPBadRequest(reason=f"{name} must be a number") from None
    if not math.isfinite(number):
        raise web.HTTPBadRequest(reason=f"{name} must be a finite number")
    return number


def _limit(request: web.Request) -> int:
    return max(1, min(int(_number(request, "limit", 100) or 100), 10_000))


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        doc = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(reason="the body is not JSON") from None
    if not isinstance(doc, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object")
    return doc


def add_api_routes(app: web.Application, control: Control) -> None:
    store = control.store
    r = app.router

    async def call(fn: Any, *args: Any) -> Any:
        try:
            return await store.call(fn, *args)
        except StoreError as exc:
            raise web.HTTPServiceUnavailable(reason=str(exc)) from None

    async def write(fn: Any, *args: Any) -> Any:
        try:
            return await store.write(fn, *args)
        except DuplicateError as exc:
            raise web.HTTPConflict(reason=str(exc)) from None
        except NotFoundError as exc:
            raise web.HTTPNotFound(reason=str(exc)) from None
        except StoreError as exc:
            raise web.HTTPBadRequest(reason=str(exc)) from None

    async def status(request: web.Request) -> web.Response:
        doc = control.status()
        doc["active_calls"] = await call(store.store.count_active_calls)
        return web.json_response(doc)

    async def history(request: web.Request) -> web.Response:
        return web.json_response(control.history())

    async def domains(request: web.Request) -> web.Response:
        return web.json_response(await store.list_domains())

    async def domain_add(request: web.Request) -> web.Response:
        name = (await _json(request)).get("name")
        if not isinstance(name, str) or not name.strip():
            raise web.HTTPBadRequest(reason="name: a domain name is needed")
        await write(store.store.add_domain, name.strip().lower())
        return web.json_response({"name": name.strip().lower()}, status=201)

    async def domain_del(request: web.Request) -> web.Response:
        await write(store.store.remove_domain, request.match_info["name"])
        return web.json_response({"ok": True})

    async def users(request: web.Request) -> web.Response:
        found = await call(store.store.list_users, request.query.get("domain"))
        return web.json_response([f"{u.username}@{u.domain}" for u in found])

    async def user_add(request: web.Request) -> web.Response:
        doc = await _json(request)
        address, password = doc.get("address"), doc.get("password")
        if not isinstance(address, str) or not isinstance(password, str) or not password:
            raise web.HTTPBadRequest(reason="address and password are needed")
        try:
            username, domain = split_address(address)
        except ValueError as exc:
            raise web.HTTPBadRequest(reason=str(exc)) from None
        await write(store.store.add_user, username, domain, password)
        return web.json_response({"address": f"{username}@{domain}"}, status=201)

    async def user_del(request: web.Request) -> web.Response:
        try:
            username, domain = split_address(request.match_info["address"])
        except ValueError as exc:
            raise web.HTTPBadRequest(reason=str(exc)) from None
        await write(store.store.remove_user, username, domain)
        try:
            await store.remove_bindings(f"{username}@{domain}")
        except StoreError as exc:
            raise web.HTTPServiceUnavailable(reason=str(exc)) from None
        return web.json_response({"ok": True})

    async def user_passwd(request: web.Request) -> web.Response:
        try:
            username, domain = split_address(request.match_info["address"])
        except ValueError as exc:
            raise web.HTTPBadRequest(reason=str(exc)) from None
        password = (await _json(request)).get("password")
        if not isinstance(password, str) or not password:
            raise web.HTTPBadRequest(reason="password: a new password is needed")
        if await call(store.store.get_user, username, domain) is None:
            raise web.HTTPNotFound(reason=f"no user {username}@{domain}")
        await write(store.store.set_password, username, domain, password)
        return web.json_response({"ok": True})

    async def registrations(request: web.Request) -> web.Response:
        now = control.wall()
        aor = request.query.get("aor")
        found = [
            {
                "aor": b.aor,
                "contact": b.contact,
                "expires_in": round(b.expires_at - now),
                "received": b.received,
                "user_agent": b.user_agent,
                "instance": b.instance,
            }
            for b in store.all_cached_bindings()
            if b.expires_at > now and (aor is None or b.aor == aor)
        ]
        found.sort(key=lambda d: (str(d["aor"]), str(d["contact"])))
        return web.json_response(found)

    async def registration_del(request: web.Request) -> web.Response:
        try:
            removed = await store.remove_bindings(request.match_info["aor"])
        except StoreError as exc:
            raise web.HTTPServiceUnavailable(reason=str(exc)) from None
        return web.json_response({"removed": removed})

    async def routes(request: web.Request) -> web.Response:
        rows = await call(store.store.list_route_rules)
        return web.json_response({aor: json.loads(doc) for aor, doc in rows})

    async def route_put(request: web.Request) -> web.Response:
        """As `sipline route set` saves them: for an existing user, checked (and no
        chain of unconditional forwards that comes back to its start)."""
        try:
            username, domain = split_address(request.match_info["aor"].removeprefix("sip:"))
        except ValueError as exc:
            raise web.HTTPBadRequest(reason=str(exc)) from None
        aor = f"{username}@{domain}"
        doc = await _json(request)
        if await call(store.store.get_user, username, domain) is None:
            raise web.HTTPNotFound(reason=f"no user {aor}")
        now = control.wall()
        rows = await call(store.store.list_route_rules)
        served = {d.lower() for d in await store.list_domains()}
        try:
            rules = parse_rules(aor, doc, today=date.today(), regions=control.regions)
            others = {a: load_rules(a, d, now=now) for a, d in rows if a != aor}
            check_forward_loops(aor, rules, others.get, lambda host: host.lower() in served)
        except RuleError as exc:
            raise web.HTTPBadRequest(reason=f"rules of {aor} not saved: {exc}") from None
        text = json.dumps(rules.to_doc(), sort_keys=True)
        await write(store.store.set_route_rules, aor, text, now)
        return web.json_response(rules.to_doc())

    async def route_del(request: web.Request) -> web.Response:
        aor = request.match_info["aor"].removeprefix("sip:")
        if not await write(store.store.remove_route_rules, aor):
            raise web.HTTPNotFound(reason=f"no rules for {aor}")
        return web.json_response({"removed": True})

    async def calls(request: web.Request) -> web.Response:
        # Read here, not on the store's thread: a bad value is a 400 from this task.
        limit, since = _limit(request), _number(request, "since", None)
        user = request.query.get("user") or None
        active = request.query.get("active") in ("1", "true", "yes")
        found = await call(
            lambda: store.store.list_calls(since=since, user=user, active=active, limit=limit)
        )
        return web.json_response([c.as_dict() for c in found])

    async def call_detail(request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        record = await call(store.store.get_call, call_id)
        messages = await call(store.store.call_messages, call_id)
        if record is None and not messages:
            raise web.HTTPNotFound(reason=f"no call {call_id}")
        return web.json_response({"call": record.as_dict() if record else None, **ladder(messages)})

    async def call_pcap(request: web.Request) -> web.Response:
        call_id = request.match_info["call_id"]
        messages = await call(store.store.call_messages, call_id)
        if not messages:
            raise web.HTTPNotFound(reason=f"no messages of call {call_id}")
        return web.Response(
            body=pcap_bytes(packets(messages)),
            content_type="application/vnd.tcpdump.pcap",
            headers={"Content-Disposition": 'attachment; filename="call.pcap"'},
        )

    async def call_end(request: web.Request) -> web.Response:
        ended = await control.end_call(request.match_info["call_id"])
        if not ended:
            raise web.HTTPNotFound(reason="no such active call")
        return web.json_response({"ok": True})

    async def events(request: web.Request) -> web.Response:
        limit, since = _limit(request), _number(request, "since", None)
        kind = request.query.get("kind") or None
        found = await call(lambda: store.store.list_events(since=since, kind=kind, limit=limit))
        return web.json_response([e.as_dict() for e in found])

    async def reload(request: web.Request) -> web.Response:
        return web.json_response(await control.reload())

    r.add_get("/api/status", status)
    r.add_get("/api/history", history)
    r.add_get("/api/domains", domains)
    r.add_post("/api/domains", domain_add)
    r.add_delete("/api/domains/{name}", domain_del)
    r.add_get("/api/users", users)
    r.add_post("/api/users", user_add)
    r.add_delete("/api/users/{address}", user_del)
    r.add_put("/api/users/{address}", user_passwd)
    r.add_get("/api/registrations", registrations)
    r.add_delete("/api/registrations/{aor}", registration_del)
    r.add_get("/api/routes", routes)
    r.add_put("/api/routes/{aor}", route_put)
    r.add_delete("/api/routes/{aor}", route_del)
    r.add_get("/api/calls", calls)
    r.add_get("/api/calls/{call_id}", call_detail)
    r.add_get("/api/calls/{call_id}/pcap", call_pcap)
    r.add_delete("/api/calls/{call_id}", call_end)
    r.add_get("/api/events", events)
    r.add_post("/api/reload", reload)
