"""`sipline call` and `sipline answer`: a command-line softphone on the UA API.

Both print the call's progress (trying, ringing, answered, ended and why) and, when a
call ends, its RTP statistics: packets sent, received and lost, jitter and an
estimated MOS. `--json` prints one JSON object per line instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from sipline.cli.agent_options import (
    AgentCommand,
    account_options,
    agent_settings,
    apply_options,
    check_codecs,
    check_dtmf,
    check_duration,
    check_play,
    check_port_range,
    check_record,
    check_srtp,
    log_level_option,
)
from sipline.cli.output import Output
from sipline.cli.progress import auth_hint, explain_error, noting_silence
from sipline.phone import (
    Call,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallFailed,
    CallHeld,
    CallProgressed,
    CallResumed,
    DtmfReceived,
    MediaOptions,
    RegistrationError,
    SessionTimerPolicy,
    TransferProgressed,
    UserAgent,
    UserAgentError,
)
from sipline.transport.loop import run as run_loop

__all__ = ["add_phone_commands", "answer", "call"]


class _Printer(Output):
    """A call's progress, for people or (`--json`) as the events of `output.EVENTS`."""

    def __init__(self, as_json: bool, password: str | None = None) -> None:
        super().__init__(as_json)
        self._password = password
        self._last_progress: int | None = None
        self.silent: str | None = None  # where our requests go, for "no answer from"

    def event(self, call: Call, event: CallEvent) -> None:
        if isinstance(event, CallProgressed):
            # A 401/407 makes us send the INVITE again, and the server says 100 again:
            # the same progress twice is news to nobody.
            if event.status == self._last_progress:
                return
            self._last_progress = event.status
            name = {100: "trying", 180: "ringing"}.get(event.status, "progress")
            media = ", early media" if event.early_media else ""
            self.emit(
                "progress",
                f"{name} {event.status} {event.reason}{media}",
                status=event.status,
                reason=event.reason,
                early_media=event.early_media,
            )
        elif isinstance(event, CallAnswered):
            self._answered(call, event)
        elif isinstance(event, CallHeld | CallResumed):
            word = "held" if isinstance(event, CallHeld) else "resumed"
            by = "by the other side" if event.by_remote else "by us"
            self.emit(word, f"{word} {by}", by_remote=event.by_remote)
        elif isinstance(event, DtmfReceived):
            self.emit(
                "dtmf",
                f"dtmf {event.digit} ({event.method})",
                digit=event.digit,
                method=event.method,
            )
        elif isinstance(event, TransferProgressed):
            self.emit(
                "transfer",
                f"transfer {event.status} {event.reason}",
                status=event.status,
                reason=event.reason,
            )
        elif isinstance(event, CallEnded):
            status = f" ({event.status})" if event.status else ""
            hint = auth_hint(event.status, self._password)
            text = f"{event.reason}{status}{hint}"
            if event.status == 408 and self._last_progress is None and self.silent is not None:
                # Not a word back: our own Timer B fired (RFC 3261 §17.1.1.2).
                text = f"no answer from {self.silent}: {event.reason} (408)"
            self.ended(text, event.reason, event.by.value, event.status)

    def _answered(self, call: Call, event: CallAnswered) -> None:
        # Our call: whoever the 2xx says answered (a forward may have reached someone
        # else); a call we answered: the caller.
        who = event.answered_by or call.remote.uri_text
        text = f"answered {who} ({event.codec})"
        if event.forwarded_from:
            why = f" ({event.forward_reason})" if event.forward_reason else ""
            text += f", forwarded from {event.forwarded_from}{why}"
        self.emit(
            "answered",
            text,
            peer=who,
            codec=event.codec,
            contact=event.contact,
            forwarded_from=event.forwarded_from,
            forward_reason=event.forward_reason,
        )

    def ended(self, text: str, reason: str, by: str, status: int | None) -> None:
        self.emit("ended", f"ended: {text}", reason=reason, by=by, status=status)

    def stats(self, call: Call) -> None:
        s = call.stats()
        if self.as_json:
            self.emit("stats", None, **asdict(s))
            return
        click.echo(f"  codec {s.codec}")
        click.echo(
            f"  packets sent {s.packets_sent}, received {s.packets_received}, "
            f"lost {s.packets_lost} ({s.loss_percent:.1f}%)"
        )
        rtt = f", RTT {s.rtt_ms:.1f} ms" if s.rtt_ms is not None else ""
        click.echo(f"  jitter {s.jitter_ms:.1f} ms, estimated MOS {s.mos:.2f}{rtt}")
        if s.remote_packets_lost is not None:
            click.echo(f"  the other side lost {s.remote_packets_lost} of ours")


def _agent(options: dict[str, Any], *, auto_answer: bool, register: bool) -> UserAgent:
    codecs = tuple(options["codec"]) or ("PCMU", "PCMA")
    return UserAgent(
        options["user"],
        password=options["password"],
        username=options["auth_user"],
        server=options["server"],
        listen=options["listen"],
        transport=options["transport"],
        register=register and options["server"] is not None,
        auto_answer=auto_answer,
        media=MediaOptions(codecs=codecs, srtp=options["srtp"], **_ports(options)),
        session_timer=SessionTimerPolicy(expires_s=options["session_expires"] or None),
        **agent_settings(options),
    )


def _ports(options: dict[str, Any]) -> dict[str, Any]:
    ports = options["rtp_ports"]
    return {} if ports is None else {"port_range": ports}


async def _run_call(call: Call, options: dict[str, Any], out: _Printer, stop: asyncio.Event) -> int:
    call.add_listener(lambda event: out.event(call, event))
    for event in call.history:  # what happened before we listened
        out.event(call, event)
    answered: asyncio.Future[None] = asyncio.ensure_future(asyncio.shield(call.answered))
    stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    await asyncio.wait([answered, stopped], return_when=asyncio.FIRST_COMPLETED)
    if not answered.done():
        await call.hangup()
    stopped.cancel()
    try:
        await answered
    except CallFailed:
        return 1
    loop = asyncio.get_running_loop()
    began = loop.time()
    if options["dtmf"]:
        await asyncio.sleep(0.5)
        if call.is_active:
            await call.send_dtmf(options["dtmf"], method=options["dtmf_method"])
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(asyncio.shield(call.ended))]
    waits.append(asyncio.ensure_future(stop.wait()))
    duration = options["duration"]
    if duration is not None:
        waits.append(
            asyncio.ensure_future(asyncio.sleep(max(0.0, duration - (loop.time() - began))))
        )
    elif options["play"] is not None and options.get("hangup_after_play", True):
        waits.append(asyncio.ensure_future(call.media.session.source_done or asyncio.sleep(0)))
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    if call.is_active:
        await call.hangup()
    out.stats(call)
    return 0


def install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)


async def _start(ua: UserAgent, out: _Printer, options: dict[str, Any]) -> bool:
    """Start the agent (and register), saying so when the server is silent."""
    try:
        server = options["server"] or ""
        await noting_silence(ua.start(), out, "REGISTER", server, options["transport"])
    except (RegistrationError, UserAgentError, OSError) as exc:
        click.echo(f"sipline: {explain_error(exc, options['password'])}", err=True)
        await ua.close()
        return False
    return True


async def _call_main(target: str, options: dict[str, Any]) -> int:
    out = _Printer(options["json"], options["password"])
    stop = asyncio.Event()
    install_stop(stop)
    ua = _agent(options, auto_answer=False, register=options["register"])
    if not await _start(ua, out, options):
        return 2
    try:
        call = await ua.call(target, play=options["play"], record=options["record"])
        uri = call.remote.uri_text
        out.emit("calling", f"calling {target}", target=target, uri=uri)
        heard = lambda: bool(call.history) or not call.is_active  # noqa: E731
        server = options["server"] or uri
        out.silent = server
        return await noting_silence(
            _run_call(call, options, out, stop), out, "INVITE", server, options["transport"], heard
        )
    except (UserAgentError, ValueError, OSError) as exc:
        click.echo(f"sipline: {exc}", err=True)
        return 2
    finally:
        await ua.close()


async def _answer_main(options: dict[str, Any]) -> int:
    out = _Printer(options["json"], options["password"])
    stop = asyncio.Event()
    install_stop(stop)
    ua = _agent(options, auto_answer=False, register=True)
    ua.on_message = lambda m: out.emit(
        "message",
        f"message from {m.sender}: {m.text}",
        sender=m.sender,
        text=m.text,
        date=m.date,
    )
    if not await _start(ua, out, options):
        return 2
    where = ua.contact().uri_text
    out.emit(
        "waiting",
        f"waiting for calls at {where}" + (" (registered)" if ua.registered else ""),
        contact=where,
        registered=ua.registered,
    )
    handled = 0
    wanted = options["calls"]
    try:
        while wanted == 0 or handled < wanted:
            incoming: asyncio.Future[Any] = asyncio.ensure_future(ua.next_call())
            stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
            await asyncio.wait([incoming, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not incoming.done():
                incoming.cancel()
                break
            call = incoming.result()
            handled += 1
            peer = call.remote.uri_text
            out.emit("incoming", f"incoming call from {peer}", peer=peer, to=call.local.uri_text)
            if options["ring"] and not await _ring(call, options["ring"], stop):
                break
            if not call.is_active:
                why = call.end_reason.reason if call.end_reason else "cancelled by the caller"
                out.ended(why, why, "remote", 487)
                continue
            record = _numbered(options["record"], handled, wanted)
            try:
                await call.answer(play=options["play"], record=record)
            except UserAgentError as exc:
                out.ended(str(exc), str(exc), "local", None)
                continue
            await _run_call(call, {**options, "hangup_after_play": False}, out, stop)
            if stop.is_set():
                break
    finally:
        await ua.close()
    return 0


async def _ring(call: Call, seconds: float, stop: asyncio.Event) -> bool:
    """Let the call ring; a CANCEL ends the ringing at once. False when we were stopped
    (the call is then turned down: 480, we are no longer there)."""
    waits: list[asyncio.Future[Any]] = [
        asyncio.ensure_future(asyncio.shield(call.ended)),
        asyncio.ensure_future(stop.wait()),
        asyncio.ensure_future(asyncio.sleep(seconds)),
    ]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()
    if stop.is_set():
        if call.is_active:
            with contextlib.suppress(UserAgentError):
                await call.reject(480)
        return False
    return True


def _numbered(path: Path | None, n: int, total: int) -> Path | None:
    """reply.wav, or reply-2.wav for the second of several calls."""
    if path is None or total == 1 or n == 1:
        return path
    return path.with_name(f"{path.stem}-{n}{path.suffix}")


def _common(f: Any) -> Any:
    return apply_options(
        f,
        [
            *account_options(),
            click.option(
                "--play",
                type=click.Path(path_type=Path),
                callback=check_play,
                help="Audio file to send (WAV, MP3, Ogg, FLAC, ...).",
            ),
            click.option(
                "--record",
                type=click.Path(path_type=Path),
                callback=check_record,
                help="WAV file for what we hear.",
            ),
            click.option(
                "--duration",
                type=float,
                default=None,
                callback=check_duration,
                help="Hang up after this many seconds.",
            ),
            click.option(
                "--dtmf",
                default="",
                metavar="DIGITS",
                callback=check_dtmf,
                help="DTMF to send once answered.",
            ),
            click.option(
                "--dtmf-method",
                type=click.Choice(["rtp", "info"]),
                default="rtp",
                show_default=True,
            ),
            click.option(
                "--codec",
                multiple=True,
                callback=check_codecs,
                help="Codec in order of preference (PCMU, PCMA, opus).",
            ),
            click.option(
                "--srtp",
                type=click.Choice(["off", "optional", "mandatory"]),
                default="off",
                show_default=True,
                callback=check_srtp,
            ),
            click.option(
                "--rtp-ports",
                default=None,
                metavar="LO-HI",
                callback=check_port_range,
                help="UDP ports for RTP/RTCP (default 16384-32766).",
            ),
            click.option(
                "--session-expires",
                type=click.IntRange(min=0),
                default=1800,
                show_default=True,
                help="RFC 4028 interval; 0: none.",
            ),
            click.option("--json", "json_output", is_flag=True, help="One JSON object per line."),
            log_level_option(),
        ],
    )


def _prepare(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs["json"] = kwargs.pop("json_output")
    logging.basicConfig(
        level=kwargs.pop("log_level").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return kwargs


@click.command(cls=AgentCommand)
@click.argument("target")
@_common
@click.option("--register", is_flag=True, help="Register with --server before calling.")
def call(target: str, **kwargs: Any) -> None:
    """Call TARGET (sip:bob@example.com, bob, urn:service:sos, 112), play and record audio,
    print statistics. Emergency URNs and numbers go through --server (RFC 6881)."""
    options = _prepare(kwargs)
    sys.exit(run_loop(_call_main(target, options)))


@click.command(cls=AgentCommand)
@_common
@click.option(
    "--calls",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Calls to answer; 0: until interrupted.",
)
@click.option(
    "--ring",
    type=float,
    default=0.0,
    callback=check_duration,
    help="Seconds to ring before answering.",
)
def answer(**kwargs: Any) -> None:
    """Register and answer incoming calls, playing and recording audio."""
    options = _prepare(kwargs)
    sys.exit(run_loop(_answer_main(options)))


def add_phone_commands(group: click.Group) -> None:
    """Add `call` and `answer` to the `sipline` command group."""
    group.add_command(call)
    group.add_command(answer)
