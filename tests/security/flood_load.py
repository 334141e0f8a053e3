"""Load for the flood tests: an attacker flooding REGISTERs over UDP from one address
(one port or many), legitimate clients registering with digest authentication from
other addresses, and the workers' memory read from /proc. Threads, bounded in time."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sipline.core.auth import answer_challenge, parse_challenge
from sipline.core.auth_header import Challenge
from sipline.core.errors import RemoteProtocolError
from sipline.core.message import Response, parse_message
from sipline.testing import SeededEntropy

DOMAIN = "example.com"
_STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


def worker_pids(lines: list[str]) -> list[int]:
    pids: dict[int, int] = {}
    for line in lines:
        match = _STARTED.search(line)
        if match:
            pids[int(match.group(1))] = int(match.group(2))
    return sorted(pids.values())


def rss_mib(pids: list[int]) -> float:
    """The workers' resident memory, summed (VmRSS)."""
    total = 0
    for pid in pids:
        text = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
        assert match is not None
        total += int(match.group(1))
    return total / 1024


def register_text(
    user: str, local: tuple[str, int], server_port: int, call_id: str, cseq: int, auth: str = ""
) -> bytes:
    host, port = local
    lines = [
        f"REGISTER sip:{DOMAIN} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-{call_id}-{cseq};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{DOMAIN}>;tag=f{call_id}",
        f"To: <sip:{user}@{DOMAIN}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        f"Contact: <sip:{user}@{host}:{port}>",
        "Expires: 600",
        "User-Agent: legit-phone/1.0",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


@dataclass
class Flood:
    """REGISTERs for random users at `rate` per second from `host`, spread over
    `ports` local ports, for `seconds`; responses are never read (as a flooder)."""

    server_port: int
    host: str = "127.0.0.2"
    rate: int = 8000
    seconds: float = 12.0
    ports: int = 1
    sent: int = 0
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(self.seconds + 10)

    def _run(self) -> None:
        socks = []
        for _ in range(self.ports):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.host, 0))
            sock.setblocking(False)
            socks.append(sock)
        target = ("127.0.0.1", self.server_port)
        start = time.monotonic()
        n = 0
        try:
            while True:
                elapsed = time.monotonic() - start
                if elapsed >= self.seconds:
                    break
                due = int(elapsed * self.rate)
                while n < due:
                    sock = socks[n % len(socks)]
                    data = register_text(
                        f"u{n % 1000}", sock.getsockname(), self.server_port, f"fl{n}", 1
                    )
                    with contextlib.suppress(OSError):  # a full buffer: dropped, as a flood does
                        sock.sendto(data, target)
                    n += 1
                time.sleep(0.001)
        finally:
            self.sent = n
            for sock in socks:
                sock.close()


@dataclass
class Registrations:
    """A legitimate client on `host`: `count` registrations with digest authentication,
    one after the other, each retransmitted as a UA would (T1 doubling) and counted
    successful when its 200 arrives within `give_up_s`."""

    server_port: int
    host: str
    user: str
    password: str
    count: int = 60
    interval_s: float = 0.2
    give_up_s: float = 8.0
    ok: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def join(self) -> None:
        assert self._thread is not None
        self._thread.join(self.count * (self.interval_s + 2 * self.give_up_s) + 10)

    def _transaction(self, sock: socket.socket, data: bytes, call_id: str) -> Response | None:
        """Send, retransmit from 0.5 s doubling (§17.1.2.2), return the final response."""
        deadline = time.monotonic() + self.give_up_s / 2
        wait = 0.5
        while time.monotonic() < deadline:
            sock.sendto(data, ("127.0.0.1", self.server_port))
            until = min(deadline, time.monotonic() + wait)
            while time.monotonic() < until:
                sock.settimeout(max(0.01, until - time.monotonic()))
                try:
                    raw = sock.recv(65535)
                except TimeoutError:
                    break
                try:
                    msg = parse_message(raw)
                except RemoteProtocolError:
                    continue
                if isinstance(msg, Response) and msg.call_id == call_id and msg.status >= 200:
                    return msg
            wait = min(wait * 2, 4.0)
        return None

    def _run(self) -> None:
        entropy = SeededEntropy(hash(self.host) & 0xFFFF)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self.host, 0))
            local = sock.getsockname()
            for i in range(self.count):
                call_id = f"legit-{self.host}-{i}"
                first = self._transaction(
                    sock, register_text(self.user, local, self.server_port, call_id, 1), call_id
                )
                final = first
                if first is not None and first.status == 401:
                    challenge = parse_challenge(first.headers.get("www-authenticate") or "")
                    assert isinstance(challenge, Challenge)
                    auth = answer_challenge(
                        challenge,
                        method="REGISTER",
                        uri=f"sip:{DOMAIN}",
                        username=self.user,
                        password=self.password,
                        entropy=entropy,
                    ).serialize()
                    data = register_text(self.user, local, self.server_port, call_id, 2, auth)
                    final = self._transaction(sock, data, call_id)
                status = final.status if final is not None else 0
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
                time.sleep(self.interval_s)
