"""`sipline check`: a linter for SIP messages and traces."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from sipline.cli.output import Output
from sipline.core.builders import REASON_PHRASES
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Request, parse_message
from sipline.core.validate import expected_response, validate

__all__ = ["CheckResult", "check", "check_bytes"]


@dataclass(slots=True)
class CheckResult:
    file: str
    valid: bool
    kind: str  # "request", "response" or "unknown"
    reason: str | None  # the defect, or the semantic note for a valid message
    status: int | None  # what a server would answer (None: processed normally)
    response: str | None  # that answer's status line
    role: str | None  # which kind of server would answer so (proxy, endpoint, ...)


def check_bytes(name: str, data: bytes) -> CheckResult:
    """Validate one message and say what a server would answer."""
    kind = "response" if data.lstrip(b"\r\n")[:4].upper() == b"SIP/" else "request"
    try:
        msg = parse_message(data)
        validate(msg)
    except RemoteProtocolError as e:
        if kind == "response":
            # A malformed response is never answered; it is dropped (RFC 3261 §16.7, §18.1.2).
            return CheckResult(name, False, kind, e.reason, None, "dropped", None)
        return CheckResult(
            name, False, kind, e.reason, e.status, f"SIP/2.0 {e.status} {e.reason}", "any"
        )
    if isinstance(msg, Request):
        verdict = expected_response(msg)
        if verdict is not None:
            reason = verdict.reason
            phrase = REASON_PHRASES.get(verdict.status, reason)
            return CheckResult(
                name,
                True,
                kind,
                reason,
                verdict.status,
                f"SIP/2.0 {verdict.status} {phrase}",
                verdict.role,
            )
    return CheckResult(name, True, kind, None, None, None, None)


_WHO = {
    "any": "a server",
    "proxy": "a proxy",
    "endpoint": "an endpoint",
    "registrar": "a registrar",
}


def _render(r: CheckResult) -> str:
    if r.valid and r.status is None:
        return f"{r.file}: valid"
    if r.valid:
        why = f" ({r.reason})" if r.response and r.reason and r.reason not in r.response else ""
        return f"{r.file}: valid; {_WHO.get(r.role or 'any', 'a server')} would answer {r.response}{why}"
    if r.kind == "response":
        return f"{r.file}: invalid: {r.reason}; a receiver drops it"
    return f"{r.file}: invalid: {r.reason}; a server answers {r.response}"


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per message.")
def check(files: tuple[str, ...], as_json: bool) -> None:
    """Validate SIP messages in FILES (one message per file; '-' reads standard input).

    Prints 'valid' or 'invalid: <reason>' and the response a server would send.
    Exits 0 only when every message is valid.
    """
    results: list[CheckResult] = []
    for name in files:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as e:
            raise click.ClickException(f"cannot read {name}: {e.strerror}") from None
        results.append(check_bytes("<stdin>" if name == "-" else name, data))
    out = Output(as_json)
    for r in results:
        out.emit("checked", _render(r), **asdict(r))
    sys.exit(0 if all(r.valid for r in results) else 1)
