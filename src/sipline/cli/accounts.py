"""`sipline user …` and `sipline domain …`: the accounts the server authenticates.

Only digest HA1s are stored (one per algorithm, realm = domain), never the password.
Errors (a duplicate user, an unknown domain, a database that cannot be opened) are
one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import click
from rich.console import Console
from rich.table import Table

from sipline.cli.api_client import api_get, api_option, api_request, via_api
from sipline.cli.store_options import StoreOptions, store_options
from sipline.server.config import ConfigError, check_domain
from sipline.storage import HA1_ALGORITHMS, NotFoundError, split_address

__all__ = ["domain", "user"]

# A plain addr-spec (RFC 5322 §3.4.1) without comments or quoted local parts.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


def _address(value: str) -> tuple[str, str]:
    try:
        return split_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="ADDRESS") from None


def _quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="@")


def _password(given: str | None, prompt: str) -> str:
    password = given
    if password is None:
        password = click.prompt(prompt, hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        raise click.BadParameter("must not be empty", param_hint="--password")
    return password


# --- users -------------------------------------------------------------------------------


@click.group()
def user() -> None:
    """Add, list, change and delete users (user@domain)."""


@user.command("add")
@click.argument("address")
@click.option("--password", help="The password (prompted for when omitted).")
@store_options
@api_option
def user_add(address: str, password: str | None, where: StoreOptions, api: str | None) -> None:
    """Add ADDRESS (user@domain) to a domain added before with `sipline domain add`."""
    username, dom = _address(address)
    if (url := via_api(where, api)) is not None:
        secret = _password(password, f"Password for {username}@{dom}")
        body = {"address": f"{username}@{dom}", "password": secret}
        api_request(url, "POST", "/api/users", body=body)
        click.echo(f"added {username}@{dom}")
        return
    with where.open() as store:
        if not store.has_domain(dom) and dom in where.configured_domains():
            store.add_domain(dom)  # as `sipline serve --config` would at start
        if not store.has_domain(dom):
            raise click.ClickException(
                f"no domain {dom}: add it first with `sipline domain add {dom}`"
                " (or start `sipline serve --domain` with it)"
            )
        secret = _password(password, f"Password for {username}@{dom}")
        store.add_user(username, dom, secret)
    click.echo(f"added {username}@{dom}")


@user.command("list")
@click.option("--domain", "only", metavar="NAME", help="Only the users of this domain.")
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@store_options
@api_option
def user_list(only: str | None, as_json: bool, where: StoreOptions, api: str | None) -> None:
    """List users and the digest algorithms they can authenticate with."""
    if (url := via_api(where, api)) is not None:
        names: list[str] = api_get(url, "/api/users", {"domain": only} if only else None)
        if as_json:
            click.echo(json.dumps([{"address": n} for n in names], indent=2))
        else:
            for name in names:
                click.echo(name)
        return
    with where.open() as store:
        users = store.list_users(only)
    if as_json:
        rows = [
            {"address": u.address, "username": u.username, "domain": u.domain,
             "algorithms": [a for a in HA1_ALGORITHMS if a in u.ha1]}
            for u in users
        ]  # fmt: skip
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("address", "algorithms", title=f"{len(users)} user(s)")
    for u in users:
        table.add_row(u.address, ", ".join(a for a in HA1_ALGORITHMS if a in u.ha1))
    Console().print(table)


@user.command("passwd")
@click.argument("address")
@click.option("--password", help="The new password (prompted for when omitted).")
@store_options
@api_option
def user_passwd(address: str, password: str | None, where: StoreOptions, api: str | None) -> None:
    """Set a new password for ADDRESS."""
    username, dom = _address(address)
    if (url := via_api(where, api)) is not None:
        secret = _password(password, f"New password for {address}")
        path = f"/api/users/{_quoted(f'{username}@{dom}')}"
        api_request(url, "PUT", path, body={"password": secret})
        click.echo(f"changed the password of {username}@{dom}")
        return
    with where.open() as store:
        if store.get_user(username, dom) is None:
            raise click.ClickException(f"no user {username}@{dom}")
        store.set_password(username, dom, _password(password, f"New password for {address}"))
    click.echo(f"changed the password of {username}@{dom}")


@user.command("email")
@click.argument("address")
@click.argument("email", required=False)
@click.option("--clear", is_flag=True, help="No email for this user.")
@store_options
def user_email(address: str, email: str | None, clear: bool, where: StoreOptions) -> None:
    """Set the email address ADDRESS's voicemail (and missed-call notices) go to."""
    username, dom = _address(address)
    if clear == (email is not None):
        raise click.UsageError("give an EMAIL address or --clear")
    if email is not None and not _EMAIL.fullmatch(email):
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="EMAIL")
    with where.open() as store:
        if store.get_user(username, dom) is None:
            raise click.ClickException(f"no user {username}@{dom}")
        store.set_mailbox_email(f"{username}@{dom}", email)
    click.echo(f"email of {username}@{dom}: {email or 'none'}")


@user.command("del")
@click.argument("address")
@store_options
@api_option
def user_del(address: str, where: StoreOptions, api: str | None) -> None:
    """Delete ADDRESS and its registrations."""
    username, dom = _address(address)
    if (url := via_api(where, api)) is not None:
        api_request(url, "DELETE", f"/api/users/{_quoted(f'{username}@{dom}')}")
        click.echo(f"deleted {username}@{dom}")
        return
    with where.open() as store, store.transaction():
        store.remove_user(username, dom)
        store.remove_bindings(f"{username}@{dom}")
    click.echo(f"deleted {username}@{dom}")


# --- domains -----------------------------------------------------------------------------


@click.group()
def domain() -> None:
    """Add, list and delete the domains this server is responsible for."""


def _domain_name(value: str) -> str:
    try:
        return check_domain(value, "NAME")
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("NAME: "), param_hint="NAME") from None


@domain.command("add")
@click.argument("name")
@store_options
@api_option
def domain_add(name: str, where: StoreOptions, api: str | None) -> None:
    """Add the domain NAME (also the digest realm of its users)."""
    name = _domain_name(name)
    if (url := via_api(where, api)) is not None:
        api_request(url, "POST", "/api/domains", body={"name": name})
        click.echo(f"added domain {name}")
        return
    with where.open() as store:
        store.add_domain(name)
    click.echo(f"added domain {name}")


@domain.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@store_options
@api_option
def domain_list(as_json: bool, where: StoreOptions, api: str | None) -> None:
    """List domains with their number of users."""
    if (url := via_api(where, api)) is not None:
        names: list[str] = api_get(url, "/api/domains")
        users: list[str] = api_get(url, "/api/users")
        counts = {d: sum(u.endswith("@" + d) for u in users) for d in names}
    else:
        with where.open() as store:
            counts = {d: len(store.list_users(d)) for d in store.list_domains()}
    if as_json:
        click.echo(json.dumps([{"domain": d, "users": n} for d, n in counts.items()], indent=2))
        return
    table = Table("domain", "users", title=f"{len(counts)} domain(s)")
    for d, n in counts.items():
        table.add_row(d, str(n))
    Console().print(table)


@domain.command("del")
@click.argument("name")
@store_options
@api_option
def domain_del(name: str, where: StoreOptions, api: str | None) -> None:
    """Delete the domain NAME (it must have no users left)."""
    name = _domain_name(name)
    if (url := via_api(where, api)) is not None:
        api_request(url, "DELETE", f"/api/domains/{_quoted(name)}")
        click.echo(f"deleted domain {name}")
        return
    with where.open() as store:
        try:
            store.remove_domain(name)
        except NotFoundError:
            raise click.ClickException(f"no domain {name}") from None
    click.echo(f"deleted domain {name}")
