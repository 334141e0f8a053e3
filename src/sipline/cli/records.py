"""`sipline calls`, `sipline events`, `sipline trace` and `sipline status`: call detail
records, events, a call's messages (ladder or pcap) and the server's figures, from the
database (`--db`) or a running server (`--api URL`)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from sipline.cli.api_client import api_get, api_option, api_request, via_api
from sipline.cli.store_options import StoreOptions, store_options
from sipline.server.records.pcap import pcap_bytes
from sipline.server.records.trace import ladder, packets

__all__ = ["calls", "events", "status", "trace"]

_FIELDS = (
    "call_id", "caller", "callee", "source", "started_at", "ringing_at", "answered_at",
    "ended_at", "duration_s", "answered_by", "forwarded_by", "hangup_by", "status", "reason",
)  # fmt: skip
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str | None, now: float | None = None) -> float | None:
    """`30m`, `2h`, `7d` ago, or an ISO 8601 date/time (UTC unless it says)."""
    if value is None:
        return None
    now = time.time() if now is None else now
    match = _AGO.match(value.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: give 30m, 2h, 7d or a date (2026-12-07T10:00)", param_hint="--since"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _time(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.command()
@click.option(
    "--since", default=None, metavar="WHEN", help="Only calls started since: 30m, 2h, 7d or a date."
)
@click.option(
    "--user", default=None, metavar="USER@DOMAIN", help="Only calls from or to this user."
)
@click.option("--active", is_flag=True, help="Only calls not ended.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line.")
@store_options
@api_option
def calls(
    since: str | None,
    user: str | None,
    active: bool,
    limit: int,
    as_json: bool,
    as_csv: bool,
    where: StoreOptions,
    api: str | None,
) -> None:
    """Call detail records, newest first."""
    api = via_api(where, api)
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    start = parse_since(since)
    if api is not None:
        query = {"limit": str(limit), "active": "1" if active else "0"}
        if start is not None:
            query["since"] = str(start)
        if user:
            query["user"] = user
        rows: list[dict[str, Any]] = api_get(api, "/api/calls", query)
    else:
        with where.open() as store:
            rows = [
                c.as_dict()
                for c in store.list_calls(since=start, user=user, active=active, limit=limit)
            ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if as_csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
        return
    if not rows:
        click.echo("no calls")
        return
    for r in rows:
        duration = f"{r['duration_s']:.1f}s" if r["duration_s"] is not None else "-"
        state = f"{r['status'] or '-'} {r['reason'] or ''}".strip()
        if r["ended_at"] is None:
            state = "active" if r["answered_at"] else "ringing"
        click.echo(
            f"{_time(r['started_at'])}  {r['caller']} -> {r['callee']}  {state}  {duration}"
            f"  hangup={r['hangup_by'] or '-'}  {r['call_id']}"
        )


@click.command()
@click.option(
    "--since", default=None, metavar="WHEN", help="Only events since: 30m, 2h, 7d or a date."
)
@click.option(
    "--kind",
    default=None,
    help="registered, unregistered, expired, register_refused, auth_failed, banned.",
)
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@store_options
@api_option
def events(
    since: str | None,
    kind: str | None,
    limit: int,
    as_json: bool,
    where: StoreOptions,
    api: str | None,
) -> None:
    """Registrations and failed logins, newest first."""
    api = via_api(where, api)
    start = parse_since(since)
    if api is not None:
        query = {"limit": str(limit)}
        if start is not None:
            query["since"] = str(start)
        if kind:
            query["kind"] = kind
        rows: list[dict[str, Any]] = api_get(api, "/api/events", query)
    else:
        with where.open() as store:
            rows = [e.as_dict() for e in store.list_events(since=start, kind=kind, limit=limit)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for e in rows:
        click.echo(f"{_time(e['at'])}  {e['kind']:<16} {e['user']}  {e['source']}  {e['detail']}")


@click.command()
@click.argument("call_id")
@click.option(
    "--pcap",
    "pcap_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the messages to this pcap file (Wireshark, tshark).",
)
@click.option("--json", "as_json", is_flag=True, help="The ladder as JSON.")
@store_options
@api_option
def trace(
    call_id: str, pcap_file: Path | None, as_json: bool, where: StoreOptions, api: str | None
) -> None:
    """A call's SIP messages: a ladder in the terminal, or a pcap file."""
    api = via_api(where, api)
    quoted = urllib.parse.quote(call_id, safe="")
    if api is not None:
        if pcap_file is not None:
            data = api_request(api, "GET", f"/api/calls/{quoted}/pcap")
            _write(pcap_file, data)
            return
        doc: dict[str, Any] = api_get(api, f"/api/calls/{quoted}")
    else:
        with where.open() as store:
            messages = store.call_messages(call_id)
        if not messages:
            raise click.ClickException(f"no messages of call {call_id}")
        if pcap_file is not None:
            _write(pcap_file, pcap_bytes(packets(messages)))
            click.echo(f"{len(messages)} messages written to {pcap_file}")
            return
        doc = ladder(messages)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    for m in doc["messages"]:
        click.echo(f"{m['t']:9.3f}s  {m['from']:>24} -> {m['to']:<24} {m['label']}")


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"--pcap: cannot write {path}: {exc.strerror}") from None


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@api_option
def status(as_json: bool, api: str | None) -> None:
    """A running server's figures (transactions, counters, registrations, calls)."""
    if api is None:
        raise click.UsageError("--api URL is needed (the server's [http] listen)")
    doc: dict[str, Any] = api_get(api, "/api/status")
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    for key, value in doc.items():
        click.echo(f"{key:<22} {value}")
    sys.stdout.flush()
