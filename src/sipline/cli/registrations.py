"""`sipline registrations` (alias `reg`): the current bindings of the location service."""

from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.table import Table

from sipline.cli.api_client import api_get, api_option, via_api
from sipline.cli.store_options import StoreOptions, store_options
from sipline.storage import Binding

__all__ = ["registrations"]


def _as_dict(b: Binding, now: float) -> dict[str, object]:
    return {
        "aor": b.aor,
        "contact": b.contact,
        "expires_in": b.remaining_s(now),
        "q": b.q,
        "received": b.received,
        "path": list(b.path),
        "instance": b.instance,
        "reg_id": b.reg_id,
        "user_agent": b.user_agent,
        "call_id": b.call_id,
        "cseq": b.cseq,
    }


@click.command()
@click.argument("aor", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@store_options
@api_option
def registrations(aor: str | None, as_json: bool, where: StoreOptions, api: str | None) -> None:
    """List registered contacts (unexpired), of every user or of AOR (user@domain)."""
    now = time.time()
    if (url := via_api(where, api)) is not None:
        rows: list[dict[str, object]] = api_get(
            url, "/api/registrations", {"aor": aor} if aor else None
        )
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            click.echo(
                f"{r['aor']}  {r['contact']}  {r['expires_in']} s"
                f"  {r['received'] or ''}  {r['user_agent'] or ''}"
            )
        return
    with where.open() as store:
        found = store.list_bindings(aor) if aor else store.all_bindings()
    live = [b for b in found if b.expires_at > now]
    if as_json:
        click.echo(json.dumps([_as_dict(b, now) for b in live], indent=2))
        return
    table = Table("address", "contact", "expires", "q", "received", "user agent")
    table.title = f"{len(live)} registration(s)"
    for b in live:
        table.add_row(
            b.aor,
            b.contact,
            f"{b.remaining_s(now)} s",
            "" if b.q is None else f"{b.q:g}",
            b.received or "",
            b.user_agent or "",
        )
    Console().print(table)
