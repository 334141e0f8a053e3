"""`sipline route`: set, show, delete and explain a user's routing rules.

Rules live in the database (`--db`, as for `sipline serve`); a running server picks
changes up within a second. `--config` gives the server's configuration, for the
regions and emergency settings that `explain` needs and that `set` checks names
against.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from sipline.cli.api_client import api_get, api_option, api_request, via_api
from sipline.cli.route_document import (
    FORWARDS,
    apply_options,
    read_document,
    summary,
    unknown_targets,
)
from sipline.cli.store_options import StoreOptions, store_options
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, parse_message
from sipline.core.uri import SipUri, parse_uri
from sipline.server.component_config import feature_settings
from sipline.server.config import ServerConfig
from sipline.server.features.directory import MemoryDirectory, load_rules
from sipline.server.features.emergency import CallerLocation, is_emergency_uri
from sipline.server.features.emergency import caller_location as locate_caller
from sipline.server.features.explain import Explanation, explain_call, explain_emergency
from sipline.server.features.forwarding import CallInfo
from sipline.server.features.instant import FORMAT_HINT, InstantError, parse_instant
from sipline.server.features.location import Location, find_region, region_by_network
from sipline.server.features.routing_service import caller_address
from sipline.server.features.rules import RuleError, UserRules
from sipline.server.features.rules_document import check_forward_loops, parse_rules
from sipline.storage.base import Binding, DeviceInfo, Store, StoreError, split_address
from sipline.storage.location import open_store

__all__ = ["route"]


def _setup(where: StoreOptions) -> tuple[ServerConfig, Store]:
    cfg = where.config()
    try:
        return cfg, open_store(cfg.server.database)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def _address(text: str) -> str:
    value = text.removeprefix("sip:")
    try:
        user, domain = split_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ADDRESS") from None
    return f"{user}@{domain}"


def _local(cfg: ServerConfig, store: Store) -> Callable[[str], bool]:
    domains = {d.lower() for d in cfg.server.domains} | set(store.list_domains())
    return lambda host: host.lower() in domains


@click.group()
def route() -> None:
    """Routing rules: forwarding, find-me, schedules, regions, DND, blocklists."""


@route.command("set")
@click.argument("address")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--dnd/--no-dnd", default=None, help="Do not disturb: callers get busy (486).")
@click.option(
    "--block",
    multiple=True,
    metavar="PATTERN",
    help="Refuse callers matching PATTERN (e.g. *@spam.example).",
)
@click.option(
    "--unblock", multiple=True, metavar="PATTERN", help="Remove PATTERN from the blocklist."
)
@click.option(
    "--forward-always", metavar="TARGET", help="Forward every call (user@domain or a SIP URI)."
)
@click.option("--forward-busy", metavar="TARGET", help="Forward when busy (486).")
@click.option("--forward-no-answer", metavar="TARGET", help="Forward when nobody answers in time.")
@click.option(
    "--no-answer-s",
    type=float,
    metavar="SECONDS",
    help="How long to ring before --forward-no-answer (default 20).",
)
@click.option(
    "--forward-unavailable",
    metavar="TARGET",
    help="Forward when no device answers or none is registered.",
)
@click.option(
    "--no-forward", multiple=True, type=click.Choice([*FORWARDS, "all"]), help="Remove a forward."
)
@store_options
@api_option
def set_rules(
    address: str,
    file: str | None,
    dnd: bool | None,
    block: tuple[str, ...],
    unblock: tuple[str, ...],
    forward_always: str | None,
    forward_busy: str | None,
    forward_no_answer: str | None,
    no_answer_s: float | None,
    forward_unavailable: str | None,
    no_forward: tuple[str, ...],
    where: StoreOptions,
    api: str | None,
) -> None:
    """Save the rules of ADDRESS: FILE (TOML or JSON, - for stdin) replaces them, the
    options change them. Invalid rules are refused and nothing is saved."""
    aor = _address(address)
    if (url := via_api(where, api)) is not None:
        changes = (dnd, block, unblock, forward_always, forward_busy, forward_no_answer,
                   no_answer_s, forward_unavailable, no_forward)  # fmt: skip
        if file is None or any(c not in (None, ()) for c in changes):
            raise click.UsageError("with --api, give the whole rules as FILE (no options)")
        saved = json.loads(api_request(url, "PUT", f"/api/routes/{aor}", body=read_document(file)))
        click.echo(f"rules of {aor} saved")
        for line in summary(parse_rules(aor, saved, today=datetime.now(UTC).date(), check=False)):
            click.echo(f"  {line}")
        return
    cfg, store = _setup(where)
    try:
        where.require_user(store, aor)
        if file is not None:
            doc = read_document(file)
        else:
            stored = store.get_route_rules(aor)
            doc = json.loads(stored) if stored else {}
        apply_options(doc, dnd, block, unblock, no_forward, no_answer_s, {
            "always": forward_always, "busy": forward_busy,
            "no_answer": forward_no_answer, "unavailable": forward_unavailable,
        })  # fmt: skip
        regions = [r.name for r in cfg.regions] if where.config_path is not None else None
        now = time.time()
        try:
            rules = parse_rules(aor, doc, today=datetime.now(UTC).date(), regions=regions)
            others = {a: load_rules(a, d, now=now) for a, d in store.list_route_rules() if a != aor}
            check_forward_loops(aor, rules, others.get, _local(cfg, store))
        except RuleError as exc:
            raise click.ClickException(f"rules of {aor} not saved: {exc}") from None
        store.set_route_rules(aor, json.dumps(rules.to_doc(), sort_keys=True), now)
        warnings = unknown_targets(store, rules, _local(cfg, store))
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    for warning in warnings:
        click.echo(f"sipline: warning: {warning}", err=True)
    click.echo(f"rules of {aor} saved")
    for line in summary(rules):
        click.echo(f"  {line}")


@route.command("show")
@click.argument("address", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@store_options
@api_option
def show(address: str | None, as_json: bool, where: StoreOptions, api: str | None) -> None:
    """Show the rules (and device records) of ADDRESS, or of every user."""
    devices: list[DeviceInfo] = []
    if (url := via_api(where, api)) is not None:  # the rules only: devices stay local
        stored: dict[str, Any] = api_get(url, "/api/routes")
        rows = [(a, json.dumps(d)) for a, d in stored.items()]
    else:
        _, store = _setup(where)
        try:
            rows = store.list_route_rules()
            devices = store.list_device_info(_address(address) if address else None)
        finally:
            store.close()
    if address is not None:
        aor = _address(address)
        rows = [(a, d) for a, d in rows if a == aor]
    if as_json:
        out = {
            a: {"rules": json.loads(d), "devices": [_device_doc(i) for i in devices if i.aor == a]}
            for a, d in rows
        }
        for info in devices:
            out.setdefault(info.aor, {"rules": None, "devices": [_device_doc(info)]})
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    if not rows and not devices:
        click.echo(f"no rules for {address}" if address else "no rules")
        return
    for aor, document in rows:
        click.echo(aor)
        rules = load_rules(aor, document, now=time.time())
        for line in summary(rules) if rules is not None else ["(stored rules cannot be read)"]:
            click.echo(f"  {line}")
    for info in devices:
        region = f"region {info.region} ({info.source})" if info.region else "no region"
        label = f" label {info.label}" if info.label else ""
        click.echo(f"device {info.aor} {info.device}:{label} {region}")


def _device_doc(info: DeviceInfo) -> dict[str, Any]:
    return {
        "device": info.device,
        "label": info.label,
        "region": info.region,
        "source": info.source,
        "has_pidf": bool(info.pidf),
    }


@route.command("del")
@click.argument("address")
@store_options
@api_option
def delete(address: str, where: StoreOptions, api: str | None) -> None:
    """Delete the rules of ADDRESS (its calls then ring every device)."""
    aor = _address(address)
    if (url := via_api(where, api)) is not None:
        api_request(url, "DELETE", f"/api/routes/{aor}")
        click.echo(f"rules of {aor} deleted")
        return
    _, store = _setup(where)
    try:
        removed = store.remove_route_rules(aor)
    finally:
        store.close()
    if not removed:
        raise click.ClickException(f"no rules for {aor}")
    click.echo(f"rules of {aor} deleted")


@route.command("device")
@click.argument("address")
@click.argument("device")
@click.option("--label", help="A name rules can ring (device:NAME), e.g. desk or mobile.")
@click.option("--region", help="The region the device is in (a [[regions]] name).")
@click.option("--delete", "remove", is_flag=True, help="Forget this device's record.")
@store_options
def device(
    address: str,
    device: str,
    label: str | None,
    region: str | None,
    remove: bool,
    where: StoreOptions,
) -> None:
    """Label DEVICE of ADDRESS or set its region. DEVICE is its Contact URI, or its
    +sip.instance when it registers with one."""
    aor = _address(address)
    cfg, store = _setup(where)
    try:
        if not remove:
            where.require_user(store, aor)
        if remove:
            if not store.remove_device_info(aor, device):
                raise click.ClickException(f"no record for device {device} of {aor}")
            click.echo(f"device {device} of {aor} forgotten")
            return
        if (
            region is not None
            and where.config_path is not None
            and region not in [r.name for r in cfg.regions]
        ):
            known = ", ".join(r.name for r in cfg.regions) or "none configured"
            raise click.ClickException(f"--region: unknown region {region!r} (known: {known})")
        old = store.get_device_info(aor, device) or DeviceInfo(aor, device)
        info = DeviceInfo(
            aor,
            device,
            label if label is not None else old.label,
            region if region is not None else old.region,
            old.pidf if region is None else None,
            "manual" if region is not None else old.source,
            time.time(),
        )
        store.set_device_info(info)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(f"device {device} of {aor}: label {info.label or '-'}, region {info.region or '-'}")


@route.command("explain")
@click.argument("address")
@click.option(
    "--at",
    "at_text",
    default="now",
    show_default=True,
    metavar=f'"{FORMAT_HINT}"',
    help="The instant of the call (ISO 8601; ZONE: an IANA name such as Asia/Tokyo, or UTC;"
    " without one, the callee's zone).",
)
@click.option(
    "--from",
    "from_uri",
    default="sip:anonymous@anonymous.invalid",
    show_default=True,
    help="The caller.",
)
@click.option(
    "--caller-location",
    metavar="REGION|LAT,LON|IP",
    help="Where the caller is (default: their registered device or network).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@store_options
def explain(
    address: str,
    at_text: str,
    from_uri: str,
    caller_location: str | None,
    as_json: bool,
    where: StoreOptions,
) -> None:
    """Which rules apply to a call to ADDRESS, and the targets in order, without placing it."""
    cfg, store = _setup(where)
    settings = feature_settings(cfg)
    try:
        is_local = _local(cfg, store)
        now = time.time()
        rules = {}
        for aor, document in store.list_route_rules():
            parsed = load_rules(aor, document, now=now)
            if parsed is not None:
                rules[aor] = parsed
        infos: dict[str, dict[str, DeviceInfo]] = {}
        for info in store.list_device_info():
            infos.setdefault(info.aor, {})[info.device] = info
        bindings: dict[str, list[Binding]] = {}
        for b in store.all_bindings():
            if b.expires_at > now:
                bindings.setdefault(b.aor, []).append(b)
    finally:
        store.close()
    directory = MemoryDirectory(
        rules=rules, infos=infos, bindings=lambda a: bindings.get(a, []), is_local=is_local
    )
    try:
        caller = parse_uri(from_uri.strip("<>"))
    except RemoteProtocolError as exc:
        raise click.BadParameter(f"{from_uri!r}: {exc.reason}", param_hint="--from") from None
    caller_aor = (
        caller.aor if isinstance(caller, SipUri) and caller.user and is_local(caller.host) else None
    )
    target_text = (
        address if ":" in address else (address if "@" not in address else f"sip:{address}")
    )
    ruri = (
        target_text
        if ":" in target_text
        else f"sip:{target_text}@{next(iter(cfg.server.domains), 'localhost')}"
    )
    try:
        request = _request(ruri, from_uri)
    except RemoteProtocolError as exc:
        raise click.BadParameter(f"{address!r}: {exc.reason}", param_hint="ADDRESS") from None
    found = _caller_location(
        caller_location, request, directory.devices(caller_aor) if caller_aor else [], settings
    )
    if is_emergency_uri(request.uri, settings.emergency.numbers):
        callback = f"sip:{caller_aor}" if caller_aor else from_uri
        result: Explanation = explain_emergency(request, found, settings.emergency, callback)
    else:
        aor = _address(address)
        when, label = _instant(at_text, rules.get(aor))
        call_info = CallInfo(
            aor, caller_address(caller), when, found.region.name if found.region else None
        )
        result = explain_call(call_info, directory, settings.routing, zone_label=label)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        click.echo(result.text())


def _request(ruri: str, from_uri: str) -> Request:
    text = (
        f"INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP explain.invalid;branch=z9hG4bKexplain\r\n"
        f"From: <{from_uri.strip('<>')}>;tag=explain\r\nTo: <{ruri}>\r\nCall-ID: explain\r\n"
        "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    msg = parse_message(text.encode())
    assert isinstance(msg, Request)  # an INVITE line was written
    msg.uri  # noqa: B018 (parse the Request-URI now: a bad one is the user's mistake)
    return msg


def _caller_location(
    text: str | None, request: Request, devices: list[Any], settings: Any
) -> CallerLocation:
    regions = settings.regions
    if text is None:
        return locate_caller(request, "", devices, settings.emergency)
    named = settings.region(text)
    if named is not None:
        return CallerLocation(named.location(), named, "given with --caller-location")
    lat_s, comma, lon_s = text.partition(",")
    if comma:
        try:
            loc = Location(float(lat_s), float(lon_s))
        except ValueError:
            raise click.BadParameter(
                f"{text!r} is not LAT,LON", param_hint="--caller-location"
            ) from None
        return CallerLocation(loc, find_region(regions, loc), "given with --caller-location")
    net = region_by_network(regions, text)
    if net is not None:
        return CallerLocation(net.location(), net, f"the network of {text}")
    known = ", ".join(r.name for r in regions) or "none configured"
    raise click.BadParameter(
        f"{text!r} is no region (known: {known}), LAT,LON or address in a region's networks",
        param_hint="--caller-location",
    )


def _instant(text: str, rules: UserRules | None) -> tuple[float, str]:
    """`now`, or an instant (`2026-12-24 19:00 Europe/Berlin`, `2026-12-24T19:00+01:00`);
    without a zone, in the callee's."""
    if text.strip().lower() == "now":
        now = time.time()
        return now, datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        instant = parse_instant(text, rules.zone if rules is not None else "UTC")
    except InstantError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    return instant.timestamp, instant.label
