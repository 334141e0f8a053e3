"""Builders and a recorder for the proxy context tests (sipline.core.proxy)."""

from __future__ import annotations

from collections.abc import Callable

from sipline.core.builders import build_response
from sipline.core.message import Request, Response, parse_message
from sipline.core.proxy import (
    Action,
    CancelBranch,
    Fork,
    GiveUp,
    HangUp,
    ProxyContext,
    Relay,
    Respond,
    SendResponse,
    StepEnded,
)

INVITE = (
    "{method} sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP proxy.example.com:5060;branch=z9hG4bKproxy1\r\n"
    "Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n"
    "Max-Forwards: 69\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    "CSeq: 1 {method}\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)


def branch_request(method: str = "INVITE") -> Request:
    """A branch's request as the proxy sent it: our Via on top of the caller's."""
    msg = parse_message(INVITE.format(method=method).encode())
    assert isinstance(msg, Request)
    return msg


def response(
    status: int,
    *,
    method: str = "INVITE",
    reason: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> Response:
    """A response to a branch, as it arrives from the wire."""
    out = build_response(branch_request(method), status, reason, to_tag="b0b", extra=extra)
    msg = parse_message(out.to_bytes())
    assert isinstance(msg, Response)
    return msg


def describe(action: Action[str]) -> str:
    if isinstance(action, Fork):
        return f"Fork {action.branch} {action.target}"
    if isinstance(action, Relay):
        return f"Relay {action.response.status}" + (" stateless" if action.stateless else "")
    if isinstance(action, SendResponse):
        return f"Send {action.response.status}"
    if isinstance(action, Respond):
        return f"Respond {action.status}"
    if isinstance(action, CancelBranch):
        return f"Cancel {action.branch}" + (f" {action.reason}" if action.reason else "")
    if isinstance(action, GiveUp):
        return f"GiveUp {action.branch} {action.status}"
    if isinstance(action, HangUp):
        return f"HangUp {action.branch}" + (" BYE" if action.send_bye else "")
    assert isinstance(action, StepEnded)
    best = action.best.status if action.best is not None else None
    return f"StepEnded {best}" + (" timed out" if action.timed_out else "")


Row = tuple[float, str, list[str], str, float | None]


class Recorder:
    """Feeds a context as the server's driver does (a `GiveUp` comes straight back as
    the branch's response) and records (now, input, actions, state, next deadline)."""

    def __init__(self, ctx: ProxyContext[str], method: str = "INVITE") -> None:
        self.ctx = ctx
        self.method = method
        self.rows: list[Row] = []
        self.actions: list[Action[str]] = []

    def at(self, now: float, label: str, call: Callable[[], list[Action[str]]]) -> None:
        done = self.perform(call(), now)
        self.rows.append((now, label, done, self.ctx.state.name, self.ctx.next_deadline()))

    def perform(self, actions: list[Action[str]], now: float) -> list[str]:
        done: list[str] = []
        for action in actions:
            self.actions.append(action)
            done.append(describe(action))
            if isinstance(action, GiveUp):
                made = response(action.status, method=self.method, reason=action.reason)
                done += self.perform(self.ctx.receive_response(action.branch, made, now=now), now)
        return done

    def recv(
        self, now: float, branch: int, status: int, extra: list[tuple[str, str]] | None = None
    ) -> None:
        r = response(status, method=self.method, extra=extra)
        self.at(
            now, f"{status} from {branch}", lambda: self.ctx.receive_response(branch, r, now=now)
        )

    def timers_until(self, end: float) -> None:
        """Call `handle_timers` exactly at each deadline the context announces."""
        while (deadline := self.ctx.next_deadline()) is not None and deadline <= end:
            self.at(deadline, "timers", lambda: self.ctx.handle_timers(now=deadline))
