"""Helpers for the routing-feature tests: a `SipServer` in this process with a wall
clock the test sets, a small user agent (sipline's own Endpoint) that registers and
places calls, and SIPp UAS peers run in the background with every message they
receive logged (`-trace_msg`), bounded by `timeout -k` and SIPp's own `-timeout`.

Loopback only. Processes are stopped by their own PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

from interop_helpers import HOST, SIPP_DATA, free_port_pair, need

from sipline.core.auth import answer_challenge, parse_challenge
from sipline.core.auth_header import Challenge
from sipline.core.message import Request, Response, parse_message
from sipline.runtime.endpoint import ClientTransaction, Endpoint
from sipline.server.config import Listen, ServerConfig
from sipline.server.features.location import Region
from sipline.server.sip_server import SipServer
from sipline.storage.sqlite import SqliteStore
from sipline.transport import Target

DOMAIN = "example.com"
PASSWORD = "secret-pw"


def at(text: str) -> float:
    """`"2026-12-01 10:00 Europe/Berlin"` -> epoch seconds."""
    day, clock, zone = text.split()
    return datetime.fromisoformat(f"{day} {clock}").replace(tzinfo=ZoneInfo(zone)).timestamp()


class SetClock:
    """Monotonic time runs; the wall clock (what schedules read) is what the test says."""

    def __init__(self, wall: float) -> None:
        self.wall_s = wall

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return self.wall_s


@dataclass
class Running:
    server: SipServer
    clock: SetClock
    port: int
    db: Path

    @property
    def target(self) -> Target:
        return Target("UDP", HOST, self.port)

    async def set_rules(self, aor: str, doc: str) -> None:
        """Store a rules document the way `sipline route set` does, and reload."""
        assert self.server.store is not None and self.server.planner is not None
        await self.server.store.write(
            self.server.store.store.set_route_rules, aor, doc, time.time()
        )
        await self.server.planner.refresh()


@contextlib.asynccontextmanager
async def running_server(
    tmp_path: Path,
    *,
    users: Sequence[str] = ("alice", "bob", "carol"),
    wall: float,
    regions: Sequence[Region] = (),
    authenticate_calls: bool = False,
    emergency_psap: str | None = None,
) -> AsyncIterator[Running]:
    db = tmp_path / "sipline.db"
    store = SqliteStore(db)
    store.add_domain(DOMAIN)
    for user in users:
        store.add_user(user, DOMAIN, PASSWORD)
    store.close()
    clock = SetClock(wall)
    last: Exception | None = None
    for _ in range(3):
        port = free_port_pair()
        cfg = ServerConfig()
        cfg = replace(
            cfg,
            server=replace(
                cfg.server, listen=(Listen("UDP", HOST, port),), domains=(DOMAIN,), database=db
            ),
            auth=replace(cfg.auth, authenticate_calls=authenticate_calls),
            limits=replace(cfg.limits, timer_c_s=30.0),
            # Devices are registered by the test's client on their behalf: route to the
            # Contact, not to where the REGISTER came from.
            registrar=replace(cfg.registrar, fix_nated_register=False),
            emergency=replace(cfg.emergency, psap=emergency_psap),
            regions=tuple(regions),
        )
        server = SipServer(cfg, clock=clock)
        try:
            await server.start()
        except Exception as exc:  # lost a race for the port: try another
            last = exc
            continue
        try:
            yield Running(server, clock, port, db)
        finally:
            await server.stop()
        return
    raise AssertionError(f"cannot start the server: {last}")


# -- SIPp UAS peers -------------------------------------------------------------------------
@dataclass
class SippUas:
    """One SIPp UAS answering with `scenario`, in the background, bounded in time."""

    scenario: str
    workdir: Path
    port: int = 0
    limit_s: int = 20
    calls: int = 1
    proc: asyncio.subprocess.Process | None = None
    log: Path = field(default_factory=Path)

    @property
    def uri(self) -> str:
        return f"sip:{HOST}:{self.port}"

    def contact(self, user: str) -> str:
        return f"sip:{user}@{HOST}:{self.port}"

    async def start(self) -> SippUas:
        sipp = need("sipp")
        chosen = self.port
        for attempt in range(3):
            self.port = chosen or free_port_pair()
            self.log = self.workdir / f"{self.scenario}-{self.port}-messages.log"
            with self.workdir.joinpath(f"{self.scenario}-{self.port}.err").open("wb") as err:
                self.proc = await self._spawn(sipp, err)
            try:
                await self._bound()
                return self
            except AssertionError:
                # The free port was taken between the probe and SIPp's bind: pick another
                # (unless the caller named the port).
                if chosen or attempt == 2 or self.proc.returncode is None:
                    raise
        return self

    async def _spawn(self, sipp: str, err: IO[bytes]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            "timeout", "-k", "5", str(self.limit_s + 5), sipp,
            "-sf", str(SIPP_DATA / f"{self.scenario}.xml"),
            "-i", HOST, "-p", str(self.port), "-m", str(self.calls),
            "-timeout", f"{self.limit_s}s", "-nostdin", "-buff_size", "4194304",
            "-trace_msg", "-message_file", str(self.log),
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip

    async def _bound(self) -> None:
        """Wait until SIPp holds its UDP port (it is then ready for requests)."""
        import socket  # noqa: PLC0415

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((HOST, self.port))
                except OSError:
                    return
            assert self.proc is not None
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"SIPp {self.scenario} did not start on port {self.port}")

    async def finish(self, timeout_s: float = 15.0) -> int:
        """Wait for the scenario to end; its exit status (0: the call went as scripted)."""
        assert self.proc is not None
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            await self.stop()
        return self.proc.returncode if self.proc.returncode is not None else -1

    async def stop(self) -> None:
        """Stop SIPp through its `timeout` wrapper's PID (SIGTERM, which `timeout`
        passes on to SIPp), and reap it; SIGKILL if that does not do."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
        await self.proc.wait()

    def received(self, method: str | None = None) -> list[Request]:
        """The requests SIPp logged as received."""
        if not self.log.exists():
            return []
        out = []
        for chunk in (
            self.log.read_bytes().decode("utf-8", "replace").split("message received [")[1:]
        ):
            text = chunk.split("\n", 2)[2] if chunk.count("\n") >= 2 else ""
            text = text.split("\n-----------------------------------------------", 1)[0]
            try:
                msg = parse_message(text.encode())
            except Exception:  # a partial log entry: not a message we can check
                continue
            if isinstance(msg, Request) and (method is None or msg.method == method):
                out.append(msg)
        return out


# -- a user agent ---------------------------------------------------------------------------
@dataclass
class Call:
    invite: Request
    ct: ClientTransaction
    provisional: list[Response] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    async def final(self, timeout_s: float = 15.0) -> Response:
        return await asyncio.wait_for(asyncio.shield(self.ct.final), timeout_s)


class Phone:
    """A caller and registering client on its own UDP port, built on sipline's Endpoint."""

    def __init__(self) -> None:
        self.ep = Endpoint()
        self.port = 0
        self._n = 0

    async def start(self) -> Phone:
        _, self.port = await self.ep.bind("UDP", HOST, 0)
        return self

    async def close(self) -> None:
        await self.ep.close()

    def _id(self) -> str:
        self._n += 1
        return f"{self._n}-{time.monotonic_ns()}"

    def build(
        self,
        method: str,
        ruri: str,
        *,
        from_: str,
        to: str,
        cseq: int = 1,
        call_id: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        lines = [
            f"{method} {ruri} SIP/2.0",
            "Max-Forwards: 70",
            f"From: <{from_}>;tag=f{self._id()}",
            f"To: <{to}>",
            f"Call-ID: {call_id or self._id()}@{HOST}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:caller@{HOST}:{self.port}>",
            *(f"{n}: {v}" for n, v in extra),
        ]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        assert isinstance(msg, Request)
        return msg

    async def register(
        self,
        server: Target,
        user: str,
        contact: str,
        *,
        extra: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        expires: int = 600,
    ) -> Response:
        """REGISTER `contact` for user@example.com, answering the digest challenge."""
        aor = f"sip:{user}@{DOMAIN}"
        call_id = self._id()
        headers = [("Expires", str(expires)), *extra]
        req = self.build(
            "REGISTER",
            f"sip:{DOMAIN}",
            from_=aor,
            to=aor,
            call_id=call_id,
            extra=headers,
            body=body,
            content_type=content_type,
        )
        req.headers.set("Contact", f"<{contact}>")
        first = await self.ep.request(req, server)
        if first.status != 401:
            return first
        value = next(v for v in first.headers.get_all("www-authenticate"))
        challenge = parse_challenge(value)
        assert isinstance(challenge, Challenge)
        creds = answer_challenge(
            challenge,
            method="REGISTER",
            uri=f"sip:{DOMAIN}",
            username=user,
            password=PASSWORD,
            entropy=self.ep.entropy,
        )
        again = self.build(
            "REGISTER",
            f"sip:{DOMAIN}",
            from_=aor,
            to=aor,
            cseq=2,
            call_id=call_id,
            extra=[*headers, ("Authorization", creds.serialize())],
            body=body,
            content_type=content_type,
        )
        again.headers.set("Contact", f"<{contact}>")
        return await self.ep.request(again, server)

    def invite(
        self,
        server: Target,
        ruri: str,
        *,
        from_: str = f"sip:dave@{HOST}",
        extra: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        content_type: str = "application/sdp",
    ) -> Call:
        sdp = (
            body
            if body is not None
            else (
                f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
                "m=audio 40000 RTP/AVP 0\r\n"
            ).encode()
        )
        req = self.build(
            "INVITE", ruri, from_=from_, to=ruri, extra=extra, body=sdp, content_type=content_type
        )
        holder: list[Call] = []

        def seen(response: Response) -> None:
            if response.status < 200 and holder:
                holder[0].provisional.append(response)

        ct = self.ep.send_request(req, server, on_response=seen)
        call = Call(req, ct)
        holder.append(call)
        return call

    async def hang_up(self, call: Call, ok: Response) -> Response:
        """ACK the 2xx and send BYE, both along the route set (§12.1.2, §13.2.2.4)."""
        routes = list(reversed(ok.headers.get_all("record-route")))
        contact = ok.contacts[0].uri_text
        first_hop = _hop(routes[0]) if routes else _hop(contact)
        to = ok.headers.get("to") or ""
        base = [
            ("From", call.invite.headers.get("from") or ""),
            ("To", to),
            ("Call-ID", call.invite.call_id),
            ("Max-Forwards", "70"),
            *(("Route", r) for r in routes),
        ]
        ack = _bare("ACK", contact, [*base, ("CSeq", f"{call.invite.cseq.seq} ACK")])
        branch = self.ep.new_branch()
        ack.headers.add("Via", self.ep.via_value(first_hop, branch), first=True)
        self.ep.send_stateless(ack, first_hop)
        bye = _bare("BYE", contact, [*base, ("CSeq", f"{call.invite.cseq.seq + 1} BYE")])
        return await asyncio.wait_for(self.ep.request(bye, first_hop), 10)


def _bare(method: str, ruri: str, headers: Sequence[tuple[str, str]]) -> Request:
    text = f"{method} {ruri} SIP/2.0\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    msg = parse_message((text + "Content-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def _hop(value: str) -> Target:
    uri = value.strip().strip("<>").split(">")[0]
    hostport = uri.split("@")[-1].split(";")[0].removeprefix("sip:")
    host, _, port = hostport.rpartition(":")
    return Target("UDP", host, int(port))
