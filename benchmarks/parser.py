"""Parser benchmark: the proxy path, sipline against sippy and pyVoIP, on one core.

Run with ``python -m benchmarks.parser`` (``--help`` for the options).

For each implementation and each message the timed function does what a stateless
proxy does with a datagram:

* INVITE: parse; read the Request-URI host, the top Via's branch and sent-by,
  Max-Forwards, the top Route's host, the To and From tags, Call-ID, the CSeq
  number and method; prepend the proxy's Via, decrement Max-Forwards; serialise
  to bytes.
* 200 OK: parse; read the status, the top Via's branch, CSeq, the To tag; remove
  the top Via; serialise to bytes.

Before timing, the values every implementation read are checked against the
expected ones, and its output is parsed back (with sipline) to check the edits
were made and the body survived, so every row does the same work.

Peer notes, printed with the results:

* sippy works on `str`: the timed function decodes the datagram and encodes the
  result, as a sippy-based proxy must.
* pyVoIP has no serialiser for a parsed message and keeps neither the Request-URI
  nor Route as anything but text. The timed function reads those with plain
  string operations and writes the message back from `SIPMessage.headers` the way
  pyVoIP's own `gen_*` builders write messages (f-strings over that dict), with
  the body copied from the raw datagram. It keeps only the first value of
  repeated non-Via headers, which these messages do not have.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.messages import (
    INVITE,
    INVITE_FIELDS,
    OK_200,
    OK_FIELDS,
    PROXY_BRANCH,
    PROXY_VIA,
    InviteFields,
    ResponseFields,
)
from sipline.core.message import Request, Response, parse_message
from sipline.core.uri import SipUri

__all__ = ["main"]

Work = Callable[[bytes], tuple[tuple[Any, ...], bytes]]


# --- sipline --------------------------------------------------------------------------
def sipline_invite(data: bytes) -> tuple[tuple[Any, ...], bytes]:
    msg = parse_message(data)
    assert isinstance(msg, Request)
    uri = msg.uri
    assert isinstance(uri, SipUri)
    via = msg.top_via
    max_forwards = msg.max_forwards
    assert max_forwards is not None
    route = msg.routes[0].uri
    assert isinstance(route, SipUri)
    cseq = msg.cseq
    fields = (
        uri.host,
        via.branch,
        via.host,
        via.port,
        max_forwards,
        route.host,
        msg.to.tag,
        msg.from_.tag,
        msg.call_id,
        cseq.seq,
        cseq.method,
    )
    headers = msg.headers
    headers.add("Via", PROXY_VIA, first=True)
    headers.set("Max-Forwards", str(max_forwards - 1))
    return fields, msg.to_bytes()


def sipline_response(data: bytes) -> tuple[tuple[Any, ...], bytes]:
    msg = parse_message(data)
    assert isinstance(msg, Response)
    cseq = msg.cseq
    fields = (msg.status, msg.top_via.branch, cseq.seq, cseq.method, msg.to.tag)
    msg.headers.pop_first_value("via")
    return fields, msg.to_bytes()


def sipline_parse_only(data: bytes) -> tuple[tuple[Any, ...], bytes]:
    parse_message(data)
    return (), b""


# --- sippy ----------------------------------------------------------------------------
def _sippy() -> tuple[Any, Any, Any, Any]:
    from sippy.SipHeader import SipHeader  # type: ignore[import-untyped]
    from sippy.SipRequest import SipRequest  # type: ignore[import-untyped]
    from sippy.SipResponse import SipResponse  # type: ignore[import-untyped]
    from sippy.SipVia import SipVia  # type: ignore[import-untyped]

    return SipRequest, SipResponse, SipHeader, SipVia


def make_sippy() -> tuple[Work, Work, Work]:
    sip_request, sip_response, sip_header, sip_via = _sippy()

    def invite(data: bytes) -> tuple[tuple[Any, ...], bytes]:
        msg = sip_request(data.decode())
        uri = msg.getRURI()
        via = msg.getHFBody("via")
        host, port = via.getAddr()
        max_forwards = msg.getHFBody("max-forwards")
        cseq, method = msg.getHFBody("cseq").getCSeq()
        fields = (
            uri.host,
            via.getBranch(),
            host,
            port,
            max_forwards.getNum(),
            msg.getHFBody("route").getUrl().host,
            msg.getHFBody("to").getTag(),
            msg.getHFBody("from").getTag(),
            str(msg.getHFBody("call-id")),
            cseq,
            method,
        )
        msg.insertHeaderBefore(msg.getHF("via"), sip_header(name="via", body=sip_via(PROXY_VIA)))
        max_forwards.incNum(-1)
        return fields, msg.localStr().encode()

    def response(data: bytes) -> tuple[tuple[Any, ...], bytes]:
        msg = sip_response(data.decode())
        cseq, method = msg.getHFBody("cseq").getCSeq()
        fields = (
            msg.getSCode()[0],
            msg.getHFBody("via").getBranch(),
            cseq,
            method,
            msg.getHFBody("to").getTag(),
        )
        msg.removeHeader(msg.getHF("via"))
        return fields, msg.localStr().encode()

    def parse_only(data: bytes) -> tuple[tuple[Any, ...], bytes]:
        sip_request(data.decode())
        return (), b""

    return invite, response, parse_only


# --- pyVoIP ---------------------------------------------------------------------------
def _host_of(uri_text: str) -> str:
    """Host of a SIP URI written as text, possibly in <> (pyVoIP keeps these as text)."""
    text = uri_text.strip().lstrip("<")
    text = text.partition(":")[2]  # drop the scheme
    text = text.rpartition("@")[2]
    for stop in ";>?":
        text = text.partition(stop)[0]
    return text.partition(":")[0]


def _pyvoip_bytes(msg: Any) -> bytes:
    """Write a parsed pyVoIP message back the way pyVoIP's `gen_*` builders do."""
    lines = [msg.heading.decode()]
    headers: dict[str, Any] = msg.headers
    for via in headers["Via"]:
        address = via["address"]
        line = f"Via: {via['type']} {address[0]}:{address[1]}"
        for key, value in via.items():
            if key not in ("type", "address"):
                line += f";{key}" if value is None else f";{key}={value}"
        lines.append(line)
    for name, value in headers.items():
        if name == "Via":
            continue
        if name in ("From", "To"):
            text = f"{value['raw']};tag={value['tag']}" if value["tag"] else value["raw"]
        elif name == "CSeq":
            text = f"{value['check']} {value['method']}"
        elif isinstance(value, list):
            text = ", ".join(value)
        else:
            text = str(value)
        lines.append(f"{name}: {text}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode() + msg.raw.partition(b"\r\n\r\n")[2]


def make_pyvoip() -> tuple[Work, Work, Work]:
    import pyVoIP.VoIP  # noqa: F401  (first: importing pyVoIP.SIP alone is circular)
    from pyVoIP.SIP import SIPMessage

    proxy_via = {
        "type": "SIP/2.0/UDP",
        "address": ("proxy.biloxi.example.com", "5060"),
        "branch": PROXY_BRANCH,
    }

    def invite(data: bytes) -> tuple[tuple[Any, ...], bytes]:
        msg = SIPMessage(data)
        headers = msg.headers
        via = headers["Via"][0]
        host, port = via["address"]
        max_forwards = int(headers["Max-Forwards"])
        cseq = headers["CSeq"]
        fields = (
            _host_of(msg.heading.split(b" ")[1].decode()),
            via["branch"],
            host,
            int(port),
            max_forwards,
            _host_of(headers["Route"]),
            headers["To"]["tag"],
            headers["From"]["tag"],
            headers["Call-ID"],
            int(cseq["check"]),
            cseq["method"],
        )
        headers["Via"].insert(0, dict(proxy_via))
        headers["Max-Forwards"] = str(max_forwards - 1)
        return fields, _pyvoip_bytes(msg)

    def response(data: bytes) -> tuple[tuple[Any, ...], bytes]:
        msg = SIPMessage(data)
        headers = msg.headers
        cseq = headers["CSeq"]
        fields = (
            int(msg.status),
            headers["Via"][0]["branch"],
            int(cseq["check"]),
            cseq["method"],
            headers["To"]["tag"],
        )
        del headers["Via"][0]
        return fields, _pyvoip_bytes(msg)

    def parse_only(data: bytes) -> tuple[tuple[Any, ...], bytes]:
        SIPMessage(data)
        return (), b""

    return invite, response, parse_only


# --- checks ---------------------------------------------------------------------------
def _check_forwarded_invite(name: str, out: bytes) -> None:
    msg = parse_message(out)
    original = parse_message(INVITE)
    assert isinstance(msg, Request), name
    vias = msg.vias
    assert [v.branch for v in vias] == [PROXY_BRANCH, *(v.branch for v in original.vias)], name
    assert msg.max_forwards == INVITE_FIELDS.max_forwards - 1, name
    assert msg.call_id == INVITE_FIELDS.call_id, name
    assert msg.cseq == original.cseq, name
    assert msg.to.tag == INVITE_FIELDS.to_tag and msg.from_.tag == INVITE_FIELDS.from_tag, name
    assert [str(r) for r in msg.routes] == [str(r) for r in original.routes], name
    assert msg.body == original.body and msg.content_length == len(msg.body), name


def _check_forwarded_response(name: str, out: bytes) -> None:
    msg = parse_message(out)
    original = parse_message(OK_200)
    assert isinstance(msg, Response) and msg.status == 200, name
    assert [v.branch for v in msg.vias] == [v.branch for v in original.vias[1:]], name
    assert msg.cseq == original.cseq and msg.to.tag == OK_FIELDS.to_tag, name
    assert msg.body == original.body and msg.content_length == len(msg.body), name


def check(name: str, invite: Work, response: Work) -> None:
    """Fail loudly unless `name` read the right values and made the proxy's edits."""
    fields, out = invite(INVITE)
    got = InviteFields(*fields)
    if got != INVITE_FIELDS:
        raise AssertionError(f"{name} read the INVITE as {got}, expected {INVITE_FIELDS}")
    _check_forwarded_invite(name, out)
    rfields, rout = response(OK_200)
    rgot = ResponseFields(*rfields)
    if rgot != OK_FIELDS:
        raise AssertionError(f"{name} read the 200 OK as {rgot}, expected {OK_FIELDS}")
    _check_forwarded_response(name, rout)


# --- timing ---------------------------------------------------------------------------
def _time(work: Work, data: bytes, number: int) -> float:
    """CPU seconds of this thread (not wall time: on a shared machine the time other
    processes hold the core is not the parser's)."""
    loop = range(number)
    start = time.thread_time()
    for _ in loop:
        work(data)
    return time.thread_time() - start


def best_rate(work: Work, data: bytes, rounds: int, min_time: float) -> float:
    """Messages per second: the best of `rounds` rounds of at least `min_time` s each."""
    number = 1
    while True:
        elapsed = _time(work, data, number)
        if elapsed >= min_time / 4:
            break
        number *= 4
    number = max(1, int(number * min_time / elapsed))
    best = min(_time(work, data, number) for _ in range(rounds))
    return number / best


@dataclass(slots=True)
class Row:
    name: str
    invite: float
    response: float
    parse_only: float


def _pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def _fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


def print_table(rows: list[Row], rounds: int, min_time: float, pinned: str) -> None:
    ref = rows[0]
    print(
        f"SIP parser, proxy path: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.machine()}, {pinned}"
    )
    print(
        f"INVITE with SDP {len(INVITE)} bytes, 200 OK with SDP {len(OK_200)} bytes; "
        f"best of {rounds} rounds of >= {min_time:.2f} s each, gc enabled"
    )
    print()
    header = (
        f"{'implementation':<16}{'INVITE msg/s':>14}{'200 OK msg/s':>14}"
        f"{'µs/INVITE':>11}{'µs/200 OK':>11}{'sipline/peer INVITE':>21}{'sipline/peer 200':>18}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio_i = f"{ref.invite / row.invite:.2f}x" if row is not ref else "-"
        ratio_r = f"{ref.response / row.response:.2f}x" if row is not ref else "-"
        print(
            f"{row.name:<16}{_fmt_rate(row.invite):>14}{_fmt_rate(row.response):>14}"
            f"{1e6 / row.invite:>11.2f}{1e6 / row.response:>11.2f}{ratio_i:>21}{ratio_r:>18}"
        )
    print()
    print("Parse only (INVITE, no header access, no serialisation):")
    for row in rows:
        print(
            f"  {row.name:<14}{_fmt_rate(row.parse_only):>12} msg/s"
            f"{1e6 / row.parse_only:>9.2f} µs/msg"
        )
    print()
    by_name = {row.name: row for row in rows}
    targets = [("sipline INVITE proxy path >= 150,000 msg/s", ref.invite >= 150_000)]
    for peer, factor in (("pyVoIP", 3.0), ("sippy", 7.0)):
        if peer in by_name:
            targets.append(
                (
                    f"sipline >= {factor:g}x {peer} (INVITE)",
                    ref.invite >= factor * by_name[peer].invite,
                )
            )
    print("Targets:")
    for text, met in targets:
        print(f"  {text:<48}{'met' if met else 'NOT met'}")
    print()
    print("Notes:")
    print("  sippy works on str: decoding the datagram and encoding the result are timed.")
    print(
        "  pyVoIP cannot serialise a parsed message: the output is written from its\n"
        "  headers dict as its gen_* builders do, with the body copied from the raw\n"
        "  datagram; the Request-URI and Route host are cut from pyVoIP's raw text."
    )


def run_profile(number: int, top: int = 30) -> None:
    """cProfile sipline's proxy path (INVITE and 200 OK), top functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(number):
        sipline_invite(INVITE)
        sipline_response(OK_200)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(top)


# sipline's INVITE proxy path cut into the steps of `sipline_invite`, for --steps.
_STEPS: list[tuple[str, Callable[[Request], object]]] = [
    ("Request-URI host", lambda m: m.uri.host),  # type: ignore[union-attr]
    ("top Via branch, sent-by", lambda m: (m.top_via.branch, m.top_via.host, m.top_via.port)),
    ("Max-Forwards", lambda m: m.max_forwards),
    ("top Route host", lambda m: m.routes[0].uri.host),  # type: ignore[union-attr]
    ("To tag", lambda m: m.to.tag),
    ("From tag", lambda m: m.from_.tag),
    ("Call-ID", lambda m: m.call_id),
    ("CSeq number, method", lambda m: (m.cseq.seq, m.cseq.method)),
    ("prepend Via", lambda m: m.headers.add("Via", PROXY_VIA, first=True)),
    ("set Max-Forwards", lambda m: m.headers.set("Max-Forwards", "68")),
    ("serialise (and free)", lambda m: m.to_bytes()),
]


def run_steps(rounds: int, min_time: float) -> None:
    """Time growing prefixes of the INVITE proxy path; a step costs the difference
    between the prefix that ends with it and the one before (freeing the message
    and its views happens after the last step, so it is counted there)."""

    def prefix(k: int) -> Work:
        steps = [f for _, f in _STEPS[:k]]

        def work(data: bytes) -> tuple[tuple[Any, ...], bytes]:
            msg = parse_message(data)
            for step in steps:
                step(msg)  # type: ignore[arg-type]
            return (), b""

        return work

    print(f"{'step':<26}{'µs':>8}{'cumulative µs':>16}")
    before = 0.0
    for k, name in enumerate(["parse", *(n for n, _ in _STEPS)]):
        total = 1e6 / best_rate(prefix(k), INVITE, rounds, min_time)
        print(f"{name:<26}{total - before:>8.2f}{total:>16.2f}")
        before = total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parser", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure (best kept)")
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per round")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="cProfile N sipline proxy-path runs instead"
    )
    parser.add_argument("--top", type=int, default=30, help="functions listed by --profile")
    parser.add_argument(
        "--only", choices=["sipline", "sippy", "pyVoIP"], action="append", help="limit the rows"
    )
    parser.add_argument(
        "--steps", action="store_true", help="time each step of sipline's INVITE path instead"
    )
    args = parser.parse_args(argv)
    if args.profile:
        run_profile(args.profile, args.top)
        return 0
    if args.steps:
        _pin_to_one_core()
        run_steps(args.rounds, args.min_time)
        return 0
    pinned = _pin_to_one_core()
    warnings.simplefilter("ignore", DeprecationWarning)  # pyVoIP's enum/parse warnings
    implementations: list[tuple[str, Work, Work, Work]] = [
        ("sipline", sipline_invite, sipline_response, sipline_parse_only),
        ("pyVoIP", *make_pyvoip()),
        ("sippy", *make_sippy()),
    ]
    if args.only:
        implementations = [i for i in implementations if i[0] in args.only or i[0] == "sipline"]
    for name, invite, response, _ in implementations:
        check(name, invite, response)
    rows: list[Row] = []
    for name, invite, response, parse_only in implementations:
        gc.collect()
        rows.append(
            Row(
                name,
                best_rate(invite, INVITE, args.rounds, args.min_time),
                best_rate(response, OK_200, args.rounds, args.min_time),
                best_rate(parse_only, INVITE, args.rounds, args.min_time),
            )
        )
    if args.json:
        print(json.dumps(_as_json(rows), indent=2))
    else:
        print_table(rows, args.rounds, args.min_time, pinned)
    return 0


def _as_json(rows: list[Row]) -> list[dict[str, float | str]]:
    return [
        {
            "implementation": r.name,
            "invite_per_s": r.invite,
            "response_per_s": r.response,
            "parse_only_per_s": r.parse_only,
        }
        for r in rows
    ]


if __name__ == "__main__":
    sys.exit(main())
