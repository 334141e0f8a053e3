"""`sipline message`, `sipline chat`, `sipline presence` and `sipline watchers`.

The first three are user agents on the UA API (`sipline.phone`): one message,
an interactive chat (lines typed, or piped in, are sent; messages received are
printed), and presence (publish a status, or watch others'). `sipline watchers`
edits a user's allow-list in the server's database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import click

from sipline.cli.agent_options import (
    AgentCommand,
    account_options,
    agent_settings,
    apply_options,
    check_duration,
    log_level_option,
)
from sipline.cli.output import Output
from sipline.cli.presence_state import PresenceState
from sipline.cli.progress import auth_hint, explain_error, noting_silence
from sipline.cli.softphone import install_stop
from sipline.cli.store_options import StoreOptions, store_options
from sipline.content.pidf import STATUSES
from sipline.phone import (
    IncomingMessage,
    MessageFailed,
    PresencePublication,
    RegistrationError,
    UserAgent,
    UserAgentError,
    WatchUpdate,
)
from sipline.storage import split_address
from sipline.transport.loop import run as run_loop

__all__ = ["add_messaging_commands"]


def _options(f: Any) -> Any:
    return apply_options(
        f,
        [
            *account_options(),
            click.option("--json", "as_json", is_flag=True, help="One JSON object per line."),
            log_level_option(),
        ],
    )


def _agent(o: dict[str, Any], *, register: bool) -> UserAgent:
    logging.basicConfig(
        level=str(o["log_level"]).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return UserAgent(
        o["user"],
        password=o["password"],
        username=o["auth_user"],
        server=o["server"],
        listen=o["listen"],
        transport=o["transport"],
        register=register and o["server"] is not None,
        **agent_settings(o),
    )


def _out(o: dict[str, Any]) -> Output:
    return Output(bool(o["as_json"]))


def _short(uri: str) -> str:
    """sip:alice@example.com -> alice@example.com (what people type)."""
    return uri.split(":", 1)[1] if uri.lower().startswith(("sip:", "sips:")) else uri


def print_message(o: dict[str, Any], m: IncomingMessage) -> None:
    _out(o).emit(
        "message", f"{_short(m.sender)}: {m.text}", sender=m.sender, text=m.text, date=m.date
    )


async def _started(ua: UserAgent, o: dict[str, Any]) -> bool:
    try:
        await noting_silence(ua.start(), _out(o), "REGISTER", o["server"] or "", o["transport"])
    except (RegistrationError, UserAgentError, OSError) as exc:
        click.echo(f"sipline: {explain_error(exc, o['password'])}", err=True)
        await ua.close()
        return False
    return True


def _outcome(o: dict[str, Any], target: str, status: int) -> None:
    if status == 202:
        _out(o).emit(
            "stored",
            f"stored for {target}: delivered when they come online (202)",
            target=target,
            status=status,
        )
    else:
        _out(o).emit("delivered", f"delivered to {target} ({status})", target=target, status=status)


# -- sipline message ----------------------------------------------------------------------------
async def _message_main(target: str, text: str, o: dict[str, Any]) -> int:
    ua = _agent(o, register=False)
    if not await _started(ua, o):
        return 2
    try:
        response = await noting_silence(
            ua.send_message(target, text, cpim=o["cpim"]),
            _out(o),
            "MESSAGE",
            o["server"] or target,
            o["transport"],
        )
        _outcome(o, target, response.status)
        return 0
    except MessageFailed as exc:
        click.echo(f"sipline: {exc}{auth_hint(exc.status, o['password'])}", err=True)
        return 1
    except (UserAgentError, OSError) as exc:
        click.echo(f"sipline: {exc}", err=True)
        return 2
    finally:
        await ua.close()


@click.command(cls=AgentCommand)
@click.argument("target")
@click.argument("text")
@_options
@click.option("--cpim", is_flag=True, help="Wrap the text in message/cpim (RFC 3862).")
def message(target: str, text: str, **o: Any) -> None:
    """Send TEXT to TARGET (sip:bob@example.com) as one instant message (MESSAGE)."""
    sys.exit(run_loop(_message_main(target, text, o)))


# -- sipline chat -------------------------------------------------------------------------------
def _read_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """A thread that reads stdin (a terminal or a pipe) line by line; None at the end."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def _chat_main(peer: str, o: dict[str, Any]) -> int:
    ua = _agent(o, register=True)
    ua.on_message = lambda m: print_message(o, m)
    if not await _started(ua, o):
        return 2
    stop = asyncio.Event()
    install_stop(stop)
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_read_lines, args=(loop, lines), daemon=True).start()
    watch = None
    if o["presence"]:
        with contextlib.suppress(UserAgentError):
            watch = await ua.watch(peer, on_update=_presence_printer(o, peer))
    _out(o).emit(
        "chatting",
        f"chatting with {peer} as {o['user']}: type a line and press enter",
        peer=peer,
        user=o["user"],
    )
    try:
        while not stop.is_set():
            getting = asyncio.ensure_future(lines.get())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait([getting, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not getting.done():
                getting.cancel()
                break
            line = getting.result()
            if line is None:
                # stdin ended (a pipe): stay a moment for the answers, then leave.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), o["linger"])
                break
            if not line.strip():
                continue
            try:
                response = await ua.send_message(peer, line)
                if response.status == 202:
                    _out(o).emit(
                        "stored",
                        f"(stored: {peer} is offline; delivered when they register)",
                        target=peer,
                        status=202,
                    )
            except MessageFailed as exc:
                _out(o).emit(
                    "not_delivered",
                    f"(not delivered: {exc.status} {exc.reason})",
                    target=peer,
                    status=exc.status,
                    reason=exc.reason,
                )
    finally:
        if watch is not None:
            with contextlib.suppress(Exception):
                await watch.close()
        await ua.close()
    return 0


def _presence_printer(o: dict[str, Any], who: str) -> Callable[[WatchUpdate], None]:
    return lambda update: _presence_line(o, who, update)


def _presence_line(o: dict[str, Any], who: str, update: WatchUpdate) -> None:
    doc = update.presence
    if update.state == "terminated":
        text = f"subscription to {who} ended ({update.reason or 'no reason given'})"
    elif update.state == "pending":
        text = f"subscription to {who} waits for their authorisation"
    else:
        text = f"{who} is {update.describe()}"
    _out(o).emit(
        "presence",
        text,
        who=who,
        state=update.state,
        status=doc.status if doc is not None else None,
        note=doc.note if doc is not None else None,
        reason=update.reason,
    )


@click.command(cls=AgentCommand)
@click.argument("peer")
@_options
@click.option(
    "--linger",
    type=click.FloatRange(min=0),
    default=3.0,
    show_default=True,
    help="Seconds to wait for replies once standard input ends.",
)
@click.option("--presence/--no-presence", default=True, help="Show PEER's presence changes.")
def chat(peer: str, **o: Any) -> None:
    """Chat with PEER: lines typed (or piped) are sent, messages received are printed."""
    sys.exit(run_loop(_chat_main(peer, o)))


# -- sipline presence ---------------------------------------------------------------------------
async def _presence_main(o: dict[str, Any]) -> int:
    ua = _agent(o, register=o["register"])
    if not await _started(ua, o):
        return 2
    stop = asyncio.Event()
    install_stop(stop)
    watches = []
    # RFC 3903 §4.4/§4.5: what an earlier run left published is modified or removed
    # through its entity tag, not published a second time beside it.
    state = PresenceState(ua.config.aor.aor, o["server"])
    publication = PresencePublication(ua, expires_s=o["expires"])
    publication.etag = state.etag(now=time.time())
    try:
        if o["set"] is None and o["withdraw"] and not o["watch"]:
            return await _withdraw(o, publication, state)
        if o["set"] is not None:
            ua.publication = publication
            try:
                await ua.publish(o["set"], o["note"], expires_s=o["expires"])
            except UserAgentError as exc:
                ua.publication = None  # leave what an earlier run published alone
                click.echo(f"sipline: {exc}", err=True)
                return 1
            state.save(publication.etag, time.time() + o["expires"])
            note = f" ({o['note']})" if o["note"] else ""
            _out(o).emit(
                "published",
                f"published {o['set']}{note} for {o['expires']} s",
                status=o["set"],
                note=o["note"],
                expires_s=o["expires"],
            )
            if not o["watch"] and o["duration"] is None and not o["withdraw"]:
                ua.publication = None  # stays published at the server until it expires
                return 0
        for who in o["watch"]:
            try:
                watches.append(await ua.watch(who, on_update=_presence_printer(o, who)))
            except UserAgentError as exc:
                click.echo(f"sipline: {who}: {exc}", err=True)
        if o["watch"] and not watches:
            return 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), o["duration"])
        if o["set"] is not None and not o["withdraw"]:
            ua.publication = None
        elif o["withdraw"]:
            if ua.publication is None:
                ua.publication = publication  # --withdraw with --watch: remove ours too
            await ua.publication.remove()
            state.save(None, 0.0)
        return 0
    finally:
        for w in watches:
            with contextlib.suppress(Exception):
                await w.close()
        await ua.close()


async def _withdraw(
    o: dict[str, Any], publication: PresencePublication, state: PresenceState
) -> int:
    """`--withdraw` alone: remove what an earlier `--set` left published (§4.5)."""
    if publication.etag is None:
        click.echo(
            "sipline: no published status of this account is known here"
            " (it was withdrawn, expired, or set from elsewhere)",
            err=True,
        )
        return 1
    try:
        removed = await publication.withdraw()
    except UserAgentError as exc:
        click.echo(f"sipline: {exc}", err=True)
        return 1
    state.save(None, 0.0)
    if removed:
        _out(o).emit("withdrawn", "withdrawn: our published status is removed", removed=True)
    else:
        _out(o).emit(
            "withdrawn", "withdrawn: the server no longer had our published status", removed=False
        )
    return 0


@click.command(cls=AgentCommand)
@_options
@click.option(
    "--watch",
    multiple=True,
    metavar="USER@DOMAIN",
    help="Print this user's presence changes (repeatable).",
)
@click.option(
    "--set", "set", type=click.Choice(list(STATUSES)), default=None, help="Publish our status."
)
@click.option("--note", default=None, help="A note to publish with --set.")
@click.option(
    "--expires",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds the status lasts.",
)
@click.option(
    "--duration",
    type=float,
    default=None,
    callback=check_duration,
    help="Stop after this many seconds.",
)
@click.option("--register", is_flag=True, help="Register with --server too (we appear online).")
@click.option(
    "--withdraw",
    is_flag=True,
    help="Remove the published status when leaving (alone: the one an earlier --set left).",
)
def presence(**o: Any) -> None:
    """Publish our presence (--set away --note "in a meeting") or watch others' (--watch)."""
    if o["set"] is None and not o["watch"] and not o["withdraw"]:
        raise click.UsageError("give --set STATUS, --watch USER@DOMAIN, --withdraw, or both")
    sys.exit(run_loop(_presence_main(o)))


# -- sipline watchers ---------------------------------------------------------------------------
@click.group()
def watchers() -> None:
    """Who may see a user's presence (the user's allow-list in the database)."""


def _addresses(user: str, watcher: str | None = None) -> tuple[str, str | None]:
    try:
        u = "@".join(split_address(user))
        w = "@".join(split_address(watcher)) if watcher is not None else None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return u, w


def _set_rule(user: str, watcher: str, where: StoreOptions, policy: str) -> tuple[str, str]:
    u, w = _addresses(user, watcher)
    assert w is not None
    with where.open() as store:
        where.require_user(store, u)
        store.set_watcher_rule(u, w, policy, time.time())
    return u, w


@watchers.command("allow")
@click.argument("user")
@click.argument("watcher")
@store_options
def watchers_allow(user: str, watcher: str, where: StoreOptions) -> None:
    """Let WATCHER see USER's presence (subscriptions waiting become active)."""
    u, w = _set_rule(user, watcher, where, "allow")
    click.echo(f"{w} may see the presence of {u}")


@watchers.command("block")
@click.argument("user")
@click.argument("watcher")
@store_options
def watchers_block(user: str, watcher: str, where: StoreOptions) -> None:
    """Refuse WATCHER (their subscriptions end with reason=rejected)."""
    u, w = _set_rule(user, watcher, where, "block")
    click.echo(f"{w} may not see the presence of {u}")


@watchers.command("del")
@click.argument("user")
@click.argument("watcher")
@store_options
def watchers_del(user: str, watcher: str, where: StoreOptions) -> None:
    """Forget the rule about WATCHER (the default policy applies again)."""
    u, w = _addresses(user, watcher)
    assert w is not None
    with where.open() as store:
        if not store.remove_watcher_rule(u, w):
            raise click.ClickException(f"{u} has no rule about {w}")
    click.echo(f"no rule about {w} for {u}")


@watchers.command("list")
@click.argument("user")
@click.option("--json", "as_json", is_flag=True, help="JSON for machines.")
@store_options
def watchers_list(user: str, as_json: bool, where: StoreOptions) -> None:
    """USER's rules and current subscriptions to their presence."""
    u, _ = _addresses(user)
    with where.open() as store:
        rules = store.watcher_rules(u)
        subs = [s for s in store.list_subscriptions(resources=[u]) if s.event == "presence"]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "rules": [{"watcher": w, "decision": d} for w, d in rules],
                    "subscriptions": [{"watcher": s.watcher, "state": s.state} for s in subs],
                },
                indent=2,
            )
        )
        return
    for w, d in rules:
        click.echo(f"{d:5} {w}")
    for s in subs:
        click.echo(f"watching ({s.state}): {s.watcher}")


def add_messaging_commands(group: click.Group) -> None:
    """Add `message`, `chat`, `presence` and `watchers` to the `sipline` group."""
    for command in (message, chat, presence, watchers):
        group.add_command(command)
