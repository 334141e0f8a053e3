"""CPU per call of the transaction layer alone, sans I/O: what a proxy's
`TransactionLayer` does for the messages of one call, without sockets or asyncio.

``python -m benchmarks.transaction_path [--calls N] [--rounds N] [--top N]``

Each call is the proxy's share of INVITE / 100 / 180 / 200 / ACK / BYE / 200: the
caller's INVITE and BYE received (server transactions, with the 100, 180 and 200
sent in the INVITE's), the same two sent onwards (client transactions, with the
callee's 100, 180, 200 and BYE 200 received), the caller's 2xx ACK passed up, and
every event and datagram drained as the runtime's pump does. Every 200 calls the
clock moves 40 s on and `handle_timers` ends what waits in Completed (Timers J, K)
and the INVITE server transaction's Accepted state, so the tables stay small.

Messages are parsed from bytes before each call's timing starts, and the views the
layer reads are left unparsed, as they come from the wire. Two figures: CPU per call
(best of --rounds rounds, process CPU), and the Python function calls per call that
cProfile counts, which no other process on the machine disturbs.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from typing import Any

from sipline.core.builders import build_response
from sipline.core.message import Request, Response, parse_message
from sipline.core.transaction.layer import TransactionLayer

__all__ = ["TransactionLayer", "function_calls", "main", "run_calls"]

CALLER = ("198.51.100.33", 5060)
CALLEE = ("203.0.113.7", 5060)
PROXY_VIA = "SIP/2.0/UDP 192.0.2.10:5060;branch={}"


def _head(start: str, lines: list[str]) -> bytes:
    return ("\r\n".join([start, *lines, "Content-Length: 0", "", ""])).encode()


def _request(method: str, n: int, seq: int, to_tag: str = "") -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    return _head(
        f"{method} sip:bob@example.com SIP/2.0",
        [
            f"Via: SIP/2.0/UDP 198.51.100.33:5060;rport;branch=z9hG4bKc{n}{method[0]}",
            "Max-Forwards: 70",
            'From: "Alice" <sip:alice@atlanta.example.com>;tag=a' + str(n),
            f"To: <sip:bob@example.com>{tag}",
            f"Call-ID: call{n}@atlanta.example.com",
            f"CSeq: {seq} {method}",
            "Contact: <sip:alice@198.51.100.33:5060>",
        ],
    )


def _response(status: int, reason: str, branch: str, n: int, method: str, seq: int) -> bytes:
    return _head(
        f"SIP/2.0 {status} {reason}",
        [
            f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch}",
            f"Via: SIP/2.0/UDP 198.51.100.33:5060;rport=5060;branch=z9hG4bKc{n}{method[0]}",
            'From: "Alice" <sip:alice@atlanta.example.com>;tag=a' + str(n),
            "To: <sip:bob@example.com>" + ("" if status == 100 else ";tag=b" + str(n)),
            f"Call-ID: call{n}@atlanta.example.com",
            f"CSeq: {seq} {method}",
        ],
    )


def _forwarded(request: Request, branch: str) -> Request:
    """The request as the proxy sends it on: its own Via on top (§16.6 step 8)."""
    out = Request(request.method, "sip:bob@203.0.113.7:5060", request.headers.copy(), b"")
    out.headers.add("Via", PROXY_VIA.format(branch), first=True)
    return out


def _drain(layer: TransactionLayer) -> None:
    """What the runtime's pump does: an event, then every datagram, until no event is
    left (the datagrams are dropped: nothing here sends)."""
    while True:
        event = layer.next_event()
        layer.datagrams_to_send()
        if event is None:
            return


def _prepare(n: int) -> tuple[Any, ...]:
    """One call's messages, parsed, and what the proxy's TU would hand the layer."""
    invite = parse_message(_request("INVITE", n, 1))
    branch_i, branch_b = f"z9hG4bKpi{n}", f"z9hG4bKpb{n}"
    responses = [
        parse_message(_response(s, r, branch_i, n, "INVITE", 1))
        for s, r in ((100, "Trying"), (180, "Ringing"), (200, "OK"))
    ]
    ack = parse_message(_request("ACK", n, 1, f"b{n}"))
    bye = parse_message(_request("BYE", n, 2, f"b{n}"))
    bye_ok = parse_message(_response(200, "OK", branch_b, n, "BYE", 2))
    assert isinstance(invite, Request) and isinstance(ack, Request)
    assert isinstance(bye, Request) and isinstance(bye_ok, Response)
    relayed = []
    for response in [*responses[1:], bye_ok]:
        assert isinstance(response, Response)
        copy = Response(response.status, response.reason, response.headers.copy())
        copy.headers.pop_first_value("via")
        relayed.append(copy)
    return (
        invite, build_response(invite, 100), _forwarded(invite, branch_i), responses,
        relayed, ack, bye, _forwarded(bye, branch_b), bye_ok,
    )  # fmt: skip


def _call(layer: TransactionLayer, script: tuple[Any, ...], now: float) -> None:
    invite, trying, onward, responses, relayed, ack, bye, bye_onward, bye_ok = script
    layer.receive_request(invite, CALLER, False, now)
    _drain(layer)
    layer.send_response(trying, now=now)
    layer.send_request(onward, target=CALLEE, reliable=False, now=now)
    _drain(layer)
    layer.receive_response(responses[0], CALLEE, now)
    _drain(layer)
    for response, back in zip(responses[1:], relayed, strict=False):
        layer.receive_response(response, CALLEE, now)
        _drain(layer)
        layer.send_response(back, now=now)
        _drain(layer)
    layer.receive_request(ack, CALLER, False, now)
    _drain(layer)
    layer.receive_request(bye, CALLER, False, now)
    _drain(layer)
    layer.send_request(bye_onward, target=CALLEE, reliable=False, now=now)
    _drain(layer)
    layer.receive_response(bye_ok, CALLEE, now)
    _drain(layer)
    layer.send_response(relayed[-1], now=now)
    _drain(layer)


def run_calls(
    layer: TransactionLayer, first: int, count: int, now: float,
    profile: cProfile.Profile | None = None,
) -> float:  # fmt: skip
    """`count` calls through `layer`; returns the process CPU seconds they took
    (the messages are made before the clock starts)."""
    scripts = [_prepare(n) for n in range(first, first + count)]
    start = time.process_time()
    if profile is not None:
        profile.enable()
    for script in scripts:
        _call(layer, script, now)
    if profile is not None:
        profile.disable()
    return time.process_time() - start


def _round(calls: int) -> float:
    layer = TransactionLayer()
    now, spent = 1000.0, 0.0
    for first in range(0, calls, 200):
        spent += run_calls(layer, first, min(200, calls - first), now)
        now += 40.0
        layer.handle_timers(now=now)
        _drain(layer)
    if layer.live_count:
        raise RuntimeError(f"{layer.live_count} transactions left after the run")
    return spent


def function_calls(calls: int) -> tuple[float, pstats.Stats]:
    """Python function calls per call under cProfile (the layer and what it reads of
    the messages, the benchmark's own `_call` and `_drain` not counted), and the
    profile."""
    profile = cProfile.Profile()
    run_calls(TransactionLayer(), 0, calls, 1000.0, profile)
    stats = pstats.Stats(profile)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    ours = ("_call", "_drain", "disable")
    total = sum(stat[1] for (_, _, name), stat in table.items() if name not in ours)
    return total / calls, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.transaction_path", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--top", type=int, default=0, help="print the N functions with most own time"
    )
    args = parser.parse_args(argv)
    _round(min(args.calls, 2000))  # warm up
    gc.collect()
    best = min(_round(args.calls) for _ in range(args.rounds))
    per_call, stats = function_calls(min(args.calls, 2000))
    print(
        f"{args.calls} calls, best of {args.rounds}: {best / args.calls * 1e6:.1f} us CPU per call"
        f" in the transaction layer (14 messages), {per_call:.0f} Python function calls per call"
    )
    if args.top:
        stats.stream = sys.stdout  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
