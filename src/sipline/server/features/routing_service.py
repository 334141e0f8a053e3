"""The server's `RoutePlanner`: feature rules from the store, evaluated per call.

Rules and device information are kept in memory (loaded at start, reloaded when
the tables change, checked every `refresh_s`), so opening a session costs no I/O:
a change made with `sipline route` applies to calls from the next check on.
Registrations feed device locations in: `record_registration` stores the location
a REGISTER carries (Geolocation + PIDF-LO, RFC 6442) or, failing that, the region
of the network it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace

from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request
from sipline.core.uri import SipUri, TelUri, Uri
from sipline.runtime.system import SystemClock
from sipline.runtime.timers import Timers
from sipline.server.features.decisions import RouteSession
from sipline.server.features.directory import MemoryDirectory, device_key, load_rules
from sipline.server.features.emergency import (
    EmergencySession,
    caller_location,
    is_emergency_uri,
    location_from_request,
)
from sipline.server.features.forwarding import CallInfo, CallRouter
from sipline.server.features.location import LocationError, find_region, region_by_network
from sipline.server.features.rules import UserRules
from sipline.server.features.settings import FeatureSettings
from sipline.storage.aio import AsyncStore
from sipline.storage.base import Binding, DeviceInfo, Store, StoreError

__all__ = ["ServerRoutePlanner", "caller_address"]

log = logging.getLogger("sipline.features")

_Snapshot = tuple[tuple[int, float], tuple[int, float]]


def caller_address(uri: Uri) -> str:
    """`user@host` of a From URI (host lower-case), for blocklists and rules."""
    if isinstance(uri, SipUri):
        return f"{uri.user or ''}@{uri.host.lower()}"
    if isinstance(uri, TelUri):
        return f"{uri.digits}@tel"
    return str(uri).lower()


class ServerRoutePlanner:
    def __init__(
        self,
        store: AsyncStore,
        *,
        is_local: Callable[[str], bool],
        bindings: Callable[[str], list[Binding]],
        settings: FeatureSettings,
        wall: Callable[[], float],
        host: Callable[[], str],
        skip: Callable[[str], bool] = lambda aor: False,
        refresh_s: float = 1.0,
        on_missed: Callable[[str, str], None] | None = None,
        missed_wanted: Callable[[], bool] | None = None,
        timers: Timers | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._is_local = is_local
        self._bindings = bindings
        self._wall = wall
        self._host = host
        self._skip = skip
        self._refresh_s = refresh_s
        # The reload check runs on the endpoint's clock (a test steps it).
        self._timers = timers if timers is not None else Timers(SystemClock())
        self._on_missed = on_missed  # a call to a user rang unanswered (missed-call email)
        # Whether `on_missed` does anything now (missed-call emails configured).
        self._missed_wanted = missed_wanted or (lambda: on_missed is not None)
        self._rules: dict[str, UserRules] = {}
        self._infos: dict[str, dict[str, DeviceInfo]] = {}
        self._seen: _Snapshot | None = None
        self._task: asyncio.Task[None] | None = None
        self.directory = MemoryDirectory(
            rules=self._rules, infos=self._infos, bindings=bindings, is_local=is_local
        )

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            await self._timers.sleep(self._refresh_s)
            try:
                await self.refresh()
            except StoreError as exc:
                log.warning("cannot reload routing rules: %s", exc)

    async def refresh(self, *, force: bool = False) -> None:
        """Reload rules and device information if the tables changed."""
        seen = await self.store.call(_change_marks, self.store.store)
        if seen == self._seen and not force:
            return
        rows, infos = await self.store.call(_load_all, self.store.store)
        now = self._wall()
        rules = {}
        for aor, document in rows:
            parsed = load_rules(aor, document, now=now)
            if parsed is not None:
                rules[aor] = parsed
        self._rules.clear()
        self._rules.update(rules)
        self._infos.clear()
        for info in infos:
            self._infos.setdefault(info.aor, {})[info.device] = info
        self._seen = seen

    # -- RoutePlanner ------------------------------------------------------------------------
    def exempt_from_auth(self, request: Request) -> bool:
        if request.method != "INVITE":
            return False
        try:
            if request.to.tag is not None:
                return False
            return is_emergency_uri(request.uri, self.settings.emergency.numbers)
        except RemoteProtocolError:
            return False

    async def open(
        self, request: Request, source_host: str, *, identity: str | None = None
    ) -> RouteSession | None:
        return self.session(request, source_host, identity=identity)

    def session(
        self, request: Request, source_host: str, *, identity: str | None = None
    ) -> RouteSession | None:
        if request.method != "INVITE" or request.routes:
            return None
        try:
            uri = request.uri
            from_uri = request.from_.uri
            if request.to.tag is not None:
                return None
        except RemoteProtocolError:
            return None
        caller_aor = (
            from_uri.aor
            if isinstance(from_uri, SipUri) and from_uri.user and self._is_local(from_uri.host)
            else None
        )
        caller_devices = self.directory.devices(caller_aor) if caller_aor else []
        found = caller_location(request, source_host, caller_devices, self.settings.emergency)
        if is_emergency_uri(uri, self.settings.emergency.numbers):
            callback = f"sip:{caller_aor}" if caller_aor else _plain(from_uri)
            verified = caller_aor is not None and identity == caller_aor
            region = found.region.name if found.region is not None else "none"
            log.warning(
                "emergency call %s from %s (%s): region %s (%s)",
                uri,
                callback,
                "authenticated" if verified else "identity not verified",
                region,
                found.how,
            )
            return EmergencySession(
                request,
                found,
                callback,
                self.settings.emergency,
                self._host(),
                verified=verified,
            )
        if not (isinstance(uri, SipUri) and uri.user and self._is_local(uri.host)):
            return None
        aor = uri.aor
        if self._skip(aor) or (
            aor not in self._rules and (not self._missed_wanted() or not self._bindings(aor))
        ):
            # The proxy rings the callee's devices by q-value, answers 404/480 or
            # redirects, as without features: a callee without rules costs no plan.
            return None
        call = CallInfo(
            aor,
            caller_address(from_uri),
            self._wall(),
            found.region.name if found.region is not None else None,
        )
        return CallRouter(call, self.directory, self.settings.routing, on_missed=self._on_missed)

    # -- registrations -----------------------------------------------------------------------
    async def record_registration(self, request: Request, source_host: str) -> None:
        """After a successful REGISTER: store where each registered device is."""
        regions = self.settings.regions
        try:
            located = location_from_request(request)
        except (RemoteProtocolError, LocationError):
            located = None
        if request.headers.get("geolocation") and located is None:
            log.info("REGISTER from %s: Geolocation without a readable PIDF-LO", source_host)
        try:
            aor = request.to.uri.aor if isinstance(request.to.uri, SipUri) else None
            contacts = [] if request.contact_is_star else request.contacts
        except RemoteProtocolError:
            return
        if aor is None:
            return
        now = self._wall()
        if located is not None:
            region = find_region(regions, located)
            base = DeviceInfo(
                aor, "", None, region.name if region else None, located.pidf, "geolocation", now
            )
        else:
            net = region_by_network(regions, source_host)
            if net is None:
                return
            base = DeviceInfo(aor, "", None, net.name, None, "network", now)
        current = {b.contact: b for b in self._bindings(aor)}
        keys = []
        for contact in contacts:
            binding = current.get(contact.uri_text)
            if binding is not None:
                keys.append(device_key(binding))
        if not keys:
            return
        live = {device_key(b) for b in current.values()} | set(current)
        written, dropped = await self.store.write(_merge_infos, self.store.store, base, keys, live)
        mine = self._infos.setdefault(aor, {})
        for device in dropped:
            mine.pop(device, None)
        for info in written:
            mine[info.device] = info


def _plain(uri: Uri) -> str:
    if isinstance(uri, SipUri):
        return f"{uri.scheme}:{uri.user + '@' if uri.user else ''}{uri.host}"
    return str(uri)


def _change_marks(store: Store) -> _Snapshot:
    return store.route_marks()


def _load_all(store: Store) -> tuple[list[tuple[str, str]], list[DeviceInfo]]:
    return store.list_route_rules(), store.list_device_info()


def _merge_infos(
    store: Store, base: DeviceInfo, keys: list[str], live: set[str]
) -> tuple[list[DeviceInfo], list[str]]:
    """Keep each device's label (and a manual region when the new one is only a guess
    from the network); replace the location. Records learnt from registrations of
    devices no longer bound are dropped, so they cannot pile up; manual and labelled
    ones stay."""
    dropped = []
    for record in store.list_device_info(base.aor):
        if record.source != "manual" and not record.label and record.device not in live:
            store.remove_device_info(base.aor, record.device)
            dropped.append(record.device)
    out = []
    for key in keys:
        old = store.get_device_info(base.aor, key)
        info = replace(base, device=key, label=old.label if old else None)
        if old is not None and old.source == "manual" and base.source == "network" and old.region:
            info = replace(info, region=old.region, source="manual")
        store.set_device_info(info)
        out.append(info)
    return out, dropped
