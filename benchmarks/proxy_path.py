"""CPU per call of the proxy call path, in one process, without SIPp.

``python -m benchmarks.proxy_path [--calls N] [--concurrency C] [--register | --auth |
--options] [--profile FILE] [--plain] [--no-stages] [--top N]``

A `SipServer` (record-routing proxy, the callee found by a location lookup) runs on
127.0.0.1 with two raw UDP peers on the same event loop: a caller outside the served
domain and a callee registered as bob. Each call is INVITE / 100 / 180 / 200 / ACK /
BYE / 200, the ACK and BYE along the Record-Route set; the peers build their messages
from bytes with no parsing beyond copying header lines, so nearly all the CPU time is
the server's. The figure is process CPU time per call (time.process_time), which other
processes on the machine disturb far less than a rate measured against SIPp.
With ``--register``, the same for REGISTER with digest (401 then 200); with ``--auth``,
the call of workload (f): the caller is a user of the domain, who answers the 407 (and
ACKs it) before the INVITE goes through. With ``--options``, workload (c): OPTIONS to
the server itself (Request-URI sip:127.0.0.1:PORT, Max-Forwards 70), which `SipServer`
answers statelessly with 200 (`answer_statelessly`, RFC 3261 §11.2, §8.2.7); ``--calls``
is then the number of OPTIONS.
With ``--plain``, the routing features are off (no planner): what a call to a callee
without rules may cost at most.

After the measured run, a second run of the same calls under cProfile splits the
CPU per call by stage: each stage's share of the profiled run (inclusive, so the
indented stages are parts of the one above them) times the unprofiled CPU per call.
The profiler's own cost per function call inflates stages with many small calls.
``--top N`` also lists the N functions with the most own time in that profiled run
(what `python -m benchmarks` prints for a target not met).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import itertools
import pstats
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sipline.server.config import ServerConfig, parse_listen
from sipline.server.sip_server import SipServer
from sipline.storage.base import Binding
from sipline.transport.loop import run

HOST = "127.0.0.1"
DOMAIN = "example.com"
_COPY = (b"via:", b"from:", b"to:", b"call-id:", b"cseq:", b"record-route:")


# (label, depth, [(path suffix, function name), ...]): a stage's time is the sum of
# its functions' inclusive times (none of them calls another of the same stage).
STAGES: list[tuple[str, int, list[tuple[str, str]]]] = [
    ("received datagrams, to the handlers", 0, [("transport/udp.py", "datagram_received")]),
    ("parse", 1, [("core/message.py", "parse_message")]),
    ("transaction layer (receive)", 1, [("transaction/layer.py", "receive")]),
    ("proxy handlers (tasks)", 0, [("runtime/handlers.py", "_await_handler")]),
    ("routing features plan", 1, [("proxy/driver.py", "apply"), ("features/routing_service.py", "open")]),
    ("sending (all)", 0, [("runtime/endpoint.py", "_transmit")]),
    ("socket sends", 1, [("transport/layer.py", "send")]),
    ("transaction layer (all)", 0, [("transaction/layer.py", f) for f in (
        "receive", "send_request", "send_response", "handle_timers", "next_event",
        "datagrams_to_send")]),
    ("call records tap", 0, [("records/tap.py", "__call__")]),
    ("benchmark peers", 0, [("benchmarks/proxy_path.py", "datagram_received"),
                            ("benchmarks/proxy_path.py", "one_call"),
                            ("benchmarks/proxy_path.py", "one_register")]),
]  # fmt: skip


def stage_report(stats: pstats.Stats, per_item_us: float) -> list[str]:
    """CPU per call by stage: each stage's share of the time the profiled run spent in
    functions (with uvloop, the loop's own waiting is in none of them)."""
    table = stats.stats  # type: ignore[attr-defined]  # pstats keeps it undocumented
    total_s: float = stats.total_tt  # type: ignore[attr-defined]
    out = []
    for label, depth, funcs in STAGES:
        spent = sum(
            ct
            for (path, _, name), (_, _, _, ct, _) in table.items()
            if any(path.endswith(p) and name == f for p, f in funcs)
        )
        share = spent / total_s if total_s else 0.0
        out.append(f"  {'  ' * depth}{label:<{40 - 2 * depth}} {share * per_item_us:7.0f} us"
                   f"  {100 * share:5.1f}%")  # fmt: skip
    return out


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def _header(data: bytes, name: bytes) -> list[bytes]:
    n = len(name)
    return [ln[n:].strip() for ln in _lines(data)[1:] if ln[:n].lower() == name]


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.inbox: dict[bytes, asyncio.Queue[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        call_id = _header(data, b"call-id:")[0]
        self.inbox.setdefault(call_id, asyncio.Queue()).put_nowait(data)

    async def next(self, call_id: bytes) -> bytes:
        return await asyncio.wait_for(self.inbox.setdefault(call_id, asyncio.Queue()).get(), 5)

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, port))


def answer(request: bytes, status: bytes, to_tag: bytes, contact_port: int) -> bytes:
    out = [b"SIP/2.0 " + status]
    for line in _lines(request)[1:]:
        low = line[:14].lower()
        if low.startswith(_COPY):
            if low.startswith(b"to:") and to_tag and b"tag=" not in line:
                line += b";tag=" + to_tag
            out.append(line)
    out.append(b"Contact: <sip:bob@%s:%d>" % (HOST.encode(), contact_port))
    out.append(b"Content-Length: 0\r\n\r\n")
    return b"\r\n".join(out)


def _digest(challenge: bytes, header: bytes, user: str, method: str, uri: str, n: int) -> str:
    """The credentials answering `challenge`'s `header` (MD5, qop=auth; RFC 7616 §3.4)."""
    www = _header(challenge, header)[0].decode()
    params = dict(p.strip().split("=", 1) for p in www.split(" ", 1)[1].split(","))
    nonce, realm = params["nonce"].strip('"'), params["realm"].strip('"')
    ha1 = hashlib.md5(f"{user}:{realm}:pw-{user}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    cnonce = f"abc{n}"
    resp = hashlib.md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}",'
        f' response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}"'
    )


async def one_call(
    n: int, server_port: int, caller: Peer, callee: Peer, user: str | None = None
) -> None:
    """One call; with `user`, from that user of the domain, who answers the 407 first
    (workload (f) of `python -m benchmarks`)."""
    cid = b"call-%d@bench" % n
    sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    src = f"{user}@{DOMAIN}" if user else "caller@elsewhere.test"
    uri = f"sip:bob@{DOMAIN}"

    def invite(cseq: int, auth: bytes = b"") -> bytes:
        return (
            b"INVITE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-i%d-%d;rport\r\n"
            b"Max-Forwards: 70\r\nFrom: <sip:%s>;tag=c%d\r\n"
            b"To: <sip:bob@%s>\r\nCall-ID: %s\r\nCSeq: %d INVITE\r\n%s"
            b"Contact: <sip:caller@%s:%d>\r\nSubject: bench\r\nUser-Agent: proxy_path\r\n"
            b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s"
        ) % (uri.encode(), HOST.encode(), caller.port, n, cseq, src.encode(), n,
             DOMAIN.encode(), cid, cseq, auth, HOST.encode(), caller.port, len(sdp), sdp)  # fmt: skip

    cseq = 1
    caller.send(invite(cseq), server_port)
    if user is not None:
        while (challenge := await caller.next(cid)).startswith(b"SIP/2.0 1"):
            pass
        if not challenge.startswith(b"SIP/2.0 407"):
            raise RuntimeError(challenge.split(b"\r\n", 1)[0].decode())
        to = _header(challenge, b"to:")[0]
        ack = (
            b"ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-i%d-1;rport\r\n"
            b"Max-Forwards: 70\r\nFrom: <sip:%s>;tag=c%d\r\nTo: %s\r\nCall-ID: %s\r\n"
            b"CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        ) % (uri.encode(), HOST.encode(), caller.port, n, src.encode(), n, to, cid)  # §17.1.1.3
        caller.send(ack, server_port)
        cseq = 2
        auth = _digest(challenge, b"proxy-authenticate:", user, "INVITE", uri, n)
        caller.send(invite(cseq, b"Proxy-Authorization: %s\r\n" % auth.encode()), server_port)
    forwarded = await callee.next(cid)
    callee.send(answer(forwarded, b"180 Ringing", b"b%d" % n, callee.port), server_port)
    callee.send(answer(forwarded, b"200 OK", b"b%d" % n, callee.port), server_port)
    while True:
        got = await caller.next(cid)
        if got.startswith(b"SIP/2.0 200"):
            ok = got
            break
    routes = list(reversed(_header(ok, b"record-route:")))
    to = b"To: " + _header(ok, b"to:")[0]
    common = (b"From: <sip:%s>;tag=c%d\r\n%s\r\nCall-ID: %s\r\n"
              b"Max-Forwards: 70\r\n") % (src.encode(), n, to, cid)  # fmt: skip
    route = b"".join(b"Route: " + r + b"\r\n" for r in routes)
    ruri = b"sip:bob@%s:%d" % (HOST.encode(), callee.port)
    via = b"Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK-%%s%d;rport\r\n" % (HOST.encode(), caller.port, n)
    ack = b"ACK %s SIP/2.0\r\n%s%s%sCSeq: %d ACK\r\nContent-Length: 0\r\n\r\n" % (
        ruri, via % b"a", route, common, cseq,
    )  # fmt: skip
    caller.send(ack, server_port)
    await callee.next(cid)  # the ACK
    bye = b"BYE %s SIP/2.0\r\n%s%s%sCSeq: %d BYE\r\nContent-Length: 0\r\n\r\n" % (
        ruri, via % b"b", route, common, cseq + 1,
    )  # fmt: skip
    caller.send(bye, server_port)
    got_bye = await callee.next(cid)
    callee.send(answer(got_bye, b"200 OK", b"", callee.port), server_port)
    while not (await caller.next(cid)).startswith(b"SIP/2.0 200"):
        pass
    caller.inbox.pop(cid, None)
    callee.inbox.pop(cid, None)


async def one_register(n: int, server_port: int, peer: Peer, user: str) -> None:
    cid = b"reg-%d@bench" % n
    aor = b"%s@%s" % (user.encode(), DOMAIN.encode())

    def register(cseq: int, auth: bytes) -> bytes:
        return (
            b"REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-r%d-%d;rport\r\n"
            b"Max-Forwards: 70\r\nFrom: <sip:%s>;tag=r%d\r\nTo: <sip:%s>\r\nCall-ID: %s\r\n"
            b"CSeq: %d REGISTER\r\nContact: <sip:%s@%s:%d>\r\nExpires: 3600\r\n%s"
            b"Content-Length: 0\r\n\r\n"
        ) % (DOMAIN.encode(), HOST.encode(), peer.port, n, cseq, aor, n, aor, cid, cseq,
             user.encode(), HOST.encode(), peer.port, auth)  # fmt: skip

    peer.send(register(1, b""), server_port)
    challenge = await peer.next(cid)
    digest = _digest(challenge, b"www-authenticate:", user, "REGISTER", f"sip:{DOMAIN}", n)
    peer.send(register(2, b"Authorization: %s\r\n" % digest.encode()), server_port)
    final = await peer.next(cid)
    if not final.startswith(b"SIP/2.0 200"):
        raise RuntimeError(final.split(b"\r\n", 1)[0].decode())
    peer.inbox.pop(cid, None)


async def one_options(n: int, server_port: int, peer: Peer) -> None:
    """One OPTIONS to the server itself and its 200, answered without a transaction."""
    cid = b"opt-%d@bench" % n
    host = HOST.encode()
    options = (
        b"OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;branch=z9hG4bK-o%d;rport\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:probe@elsewhere.test>;tag=o%d\r\n"
        b"To: <sip:%s:%d>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n"
        b"Accept: application/sdp\r\nContent-Length: 0\r\n\r\n"
    ) % (host, server_port, host, peer.port, n, n, host, server_port, cid)
    peer.send(options, server_port)
    answer = await peer.next(cid)
    if not answer.startswith(b"SIP/2.0 200"):
        raise RuntimeError(answer.split(b"\r\n", 1)[0].decode())
    peer.inbox.pop(cid, None)


def top_functions(stats: pstats.Stats, top: int) -> list[str]:
    """The `top` functions by own time (pstats' tottime), one line each."""
    table = stats.stats  # type: ignore[attr-defined]  # pstats keeps it undocumented
    total_s: float = stats.total_tt  # type: ignore[attr-defined]
    ranked = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    out = [f"  {'own s':>8} {'share':>6} {'calls':>9}  function"]
    for (path, line, name), (_, calls, tt, _, _) in ranked:
        where = "" if path == "~" else f" ({'/'.join(Path(path).parts[-2:])}:{line})"
        share = 100 * tt / total_s if total_s else 0.0
        out.append(f"  {tt:8.3f} {share:5.1f}% {calls:9d}  {name}{where}")
    return out


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        defaults = ServerConfig()
        cfg = replace(
            defaults,
            server=replace(
                defaults.server,
                listen=(parse_listen(f"udp:{HOST}:0"),),
                domains=(DOMAIN,),
                database=Path(tmp) / "bench.db",
                log_level="warning",
            ),
            auth=replace(defaults.auth, algorithms=("MD5",)),
        )
        server = SipServer(cfg)
        await server.start()
        store = server.store
        assert store is not None
        users = [f"u{i:04d}" for i in range(200)]
        for user in ["bob", *users]:
            await store.write(store.store.add_user, user, DOMAIN, f"pw-{user}")
        loop = asyncio.get_running_loop()
        _, caller = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
        _, callee = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
        await asyncio.sleep(0.01)  # connection_made
        aor = f"bob@{DOMAIN}"
        contact = f"sip:bob@{HOST}:{callee.port}"
        now = time.time()
        binding = Binding(aor, contact, now + 7200, "bench", 1, updated_at=now)
        await store.update_bindings(aor, upsert=[binding])
        server_port = server.endpoint.local_address("UDP").port
        if args.plain:
            assert server.proxy is not None
            server.proxy.planner = None
        try:  # as `sipline serve` does once started
            from sipline.runtime.system import tune_gc
        except ImportError:  # an older tree (for before/after figures)
            pass
        else:
            tune_gc()
        counter = itertools.count()
        limit = args.calls // 4  # the warm-up

        async def worker() -> None:
            while (n := next(counter)) < limit:
                if args.options:
                    await one_options(n, server_port, caller)
                elif args.register:
                    await one_register(n, server_port, caller, users[n % len(users)])
                else:
                    user = users[n % len(users)] if args.auth else None
                    await one_call(n, server_port, caller, callee, user)

        # Warm up (caches, first-use imports), then measure.
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        counter = itertools.count(limit)  # fresh Call-IDs and branches
        limit += args.calls
        profile = cProfile.Profile() if args.profile else None
        cpu0, wall0, main0 = time.process_time(), time.perf_counter(), time.thread_time()
        if profile is not None:
            profile.enable()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        loop_cpu = time.thread_time() - main0
        what = (
            "OPTIONS"
            if args.options
            else "register"
            if args.register
            else "authenticated call"
            if args.auth
            else "call"
        )
        per_item = 1e6 * cpu / args.calls
        print(f"{args.calls} {what}{'' if args.options else 's'}: {per_item:.0f} us CPU per"
              f" {what} ({1e6 * loop_cpu / args.calls:.0f} on the event loop's thread),"
              f" {args.calls / wall:.0f} {what}/s on one core ({wall:.1f} s)")  # fmt: skip
        if args.stages:
            staged = min(args.calls, 1000)
            counter = itertools.count(limit)
            limit += staged
            profile = cProfile.Profile()
            profile.enable()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            profile.disable()
            stats = pstats.Stats(profile)
            print(f"CPU per {what} by stage ({staged} more under cProfile):")
            print("\n".join(stage_report(stats, per_item)))
            if args.top:
                print(f"The {args.top} functions with the most own time in that run:")
                print("\n".join(top_functions(stats, args.top)))
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy_path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--register", action="store_true", help="REGISTER with digest instead")
    what.add_argument("--options", action="store_true",
                      help="OPTIONS to the server itself, answered statelessly (as (c))")  # fmt: skip
    what.add_argument("--auth", action="store_true",
                      help="calls from users of the domain, who answer the 407 first (as (f))")  # fmt: skip
    parser.add_argument("--profile", help="write a cProfile of the measured part here")
    parser.add_argument("--plain", action="store_true", help="the routing features off")
    parser.add_argument("--no-stages", dest="stages", action="store_false",
                        help="skip the profiled run that splits the CPU by stage")  # fmt: skip
    parser.add_argument("--top", type=int, default=0, metavar="N",
                        help="also list the N functions with the most own time in that run")  # fmt: skip
    args = parser.parse_args(argv)
    run(bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
