"""Raw-socket phones and callers for tests of flows through `sipline serve`: a phone
that registers over TCP or UDP and answers what reaches it on its own flow, and a
caller on a UDP socket of any loopback address that sends MESSAGE or places a call
(INVITE, ACK and BYE along the Record-Route) and answers a BYE from the phone."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from dataclasses import dataclass, field

from sipline.core.auth import answer_challenge, parse_challenge
from sipline.core.auth_header import Challenge
from sipline.core.builders import build_response
from sipline.core.framing import StreamFramer
from sipline.core.message import Message, Request, Response, parse_message
from sipline.core.uri import SipUri
from sipline.core.views import parse_name_addr
from sipline.testing import SeededEntropy

DOMAIN = "example.com"
WAIT_S = 5.0

Address = tuple[str, int]


def _headers(lines: list[tuple[str, str]]) -> str:
    return "".join(f"{k}: {v}\r\n" for k, v in lines)


class Phone:
    """`user@DOMAIN` on one socket: TCP (a connection it opens to the server and keeps)
    or UDP; answers 200 to every request (180 then 200 to an INVITE)."""

    def __init__(
        self, user: str, server: Address, transport: str = "TCP", domain: str = DOMAIN
    ) -> None:
        self.user = user
        self.domain = domain
        self.server = server
        self.transport = transport
        self.entropy = SeededEntropy(hash(user) & 0xFFFF)
        self.received: list[Request] = []
        self.responses: queue.Queue[Response] = queue.Queue()
        self._framer = StreamFramer()
        self._frames: list[bytes] = []
        self._seq = 0
        self._stop = False
        kind = socket.SOCK_STREAM if transport == "TCP" else socket.SOCK_DGRAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.settimeout(WAIT_S)
        self.sock.bind(("127.0.0.1", 0))
        if transport == "TCP":
            self.sock.connect(server)
        self.local: Address = self.sock.getsockname()
        param = ";transport=tcp" if transport == "TCP" else ""
        self.contact = f"sip:{user}@127.0.0.1:{self.local[1]}{param}"
        self._thread: threading.Thread | None = None

    # -- wire ---------------------------------------------------------------------------
    def send(self, data: bytes, to: Address | None = None) -> None:
        if self.transport == "TCP":
            self.sock.sendall(data)
        else:
            self.sock.sendto(data, to or self.server)

    def _read(self) -> tuple[Message, Address]:
        if self.transport == "UDP":
            data, source = self.sock.recvfrom(65535)
            return parse_message(data), source
        while not self._frames:
            chunk = self.sock.recv(65535)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._frames.extend(self._framer.feed(chunk))
        return parse_message(self._frames.pop(0), stream=True), self.server

    def via(self) -> str:
        branch = f"z9hG4bK{self.entropy.random_bytes(6).hex()}"
        return f"SIP/2.0/{self.transport} 127.0.0.1:{self.local[1]};branch={branch};rport"

    # -- registering -----------------------------------------------------------------------
    def register(self, password: str | None = None) -> None:
        """REGISTER (answering one digest challenge); raises unless 200."""
        authorization: list[tuple[str, str]] = []
        for _ in range(2):
            self._seq += 1
            head = [
                ("Via", self.via()),
                ("Max-Forwards", "70"),
                ("From", f"<sip:{self.user}@{DOMAIN}>;tag=reg{self.user}"),
                ("To", f"<sip:{self.user}@{DOMAIN}>"),
                ("Call-ID", f"reg-{self.user}-{self.local[1]}"),
                ("CSeq", f"{self._seq} REGISTER"),
                ("Contact", f"<{self.contact}>"),
                ("Expires", "600"),
                *authorization,
                ("Content-Length", "0"),
            ]
            self.send(f"REGISTER sip:{DOMAIN} SIP/2.0\r\n{_headers(head)}\r\n".encode())
            answer = self._final()
            if answer.status == 200:
                return
            assert answer.status == 401, answer.status
            challenge = parse_challenge(answer.headers.get("www-authenticate") or "")
            assert isinstance(challenge, Challenge)
            creds = answer_challenge(
                challenge,
                method="REGISTER",
                uri=f"sip:{DOMAIN}",
                username=self.user,
                password=password or f"{self.user}-pw",
                entropy=self.entropy,
            )
            authorization = [("Authorization", creds.serialize())]
        raise AssertionError("REGISTER refused")

    def _final(self) -> Response:
        while True:
            message, _ = self._read()
            if isinstance(message, Response) and message.status >= 200:
                return message

    # -- answering ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                message, source = self._read()
            except TimeoutError:
                continue
            except OSError:
                return
            if isinstance(message, Response):
                self.responses.put(message)
                continue
            self.received.append(message)
            if message.method == "ACK":
                continue
            tag = f"ph{len(self.received)}"
            if message.method == "INVITE":
                self.send(build_response(message, 180, to_tag=tag).to_bytes(), source)
                extra = [("Contact", f"<{self.contact}>")]
                ok = build_response(message, 200, to_tag=tag, copy_record_route=True, extra=extra)
                self.send(ok.to_bytes(), source)
            else:
                self.send(build_response(message, 200, to_tag=tag).to_bytes(), source)

    def call(self, user: str) -> tuple[Request, Response]:
        """INVITE `user@DOMAIN` from this socket (as a caller, registered or not) and
        ACK the 200 along its Record-Route; the INVITE as sent and the 200."""
        self._seq += 1
        head = [
            ("Via", self.via()),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.user}@{self.domain}>;tag=call{self._seq}"),
            ("To", f"<sip:{user}@{DOMAIN}>"),
            ("Call-ID", f"call-{self.user}-{self._seq}-{self.local[1]}"),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<{self.contact}>"),
            ("Content-Length", "0"),
        ]
        raw = f"INVITE sip:{user}@{DOMAIN} SIP/2.0\r\n{_headers(head)}\r\n".encode()
        self.send(raw)
        while (answer := self.responses.get(timeout=WAIT_S)).status < 200:
            pass
        assert answer.status == 200, (answer.status, answer.reason)
        invite = parse_message(raw)
        assert isinstance(invite, Request)
        ack = [
            ("Via", self.via()),
            ("Max-Forwards", "70"),
            ("From", head[2][1]),
            ("To", answer.headers.get("to") or ""),
            ("Call-ID", invite.call_id),
            ("CSeq", "1 ACK"),
            *(("Route", r) for r in reversed(answer.headers.get_all("record-route"))),
            ("Content-Length", "0"),
        ]
        target = answer.contacts[0].uri_text
        self.send(f"ACK {target} SIP/2.0\r\n{_headers(ack)}\r\n".encode())
        return invite, answer

    def bye(self, invite: Request) -> Response:
        """Hang up the call `invite` set up (we are the callee): along its Record-Route."""
        deadline = time.monotonic() + WAIT_S
        while True:
            acks = [r for r in self.received if r.method == "ACK" and r.call_id == invite.call_id]
            if acks or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        [ok_tag] = {r.to.tag for r in acks}
        routes = invite.headers.get_all("record-route")
        contact = invite.contacts[0].uri_text
        head = [
            ("Via", self.via()),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.user}@{DOMAIN}>;tag={ok_tag}"),
            ("To", f"{invite.headers.get('from')}"),
            ("Call-ID", invite.call_id),
            ("CSeq", "1 BYE"),
            *(("Route", r) for r in routes),
            ("Content-Length", "0"),
        ]
        self.send(f"BYE {contact} SIP/2.0\r\n{_headers(head)}\r\n".encode())
        return self.responses.get(timeout=WAIT_S)

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread
        self.sock.close()
        if self._thread is not None:
            self._thread.join(timeout=WAIT_S + 1)


@dataclass
class Call:
    invite: Request
    answer: Response
    route: list[str] = field(default_factory=list)


class Caller:
    """A stranger's UA on a UDP socket of `host` (any loopback address)."""

    def __init__(self, host: str, name: str) -> None:
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(WAIT_S)
        self.sock.bind((host, 0))
        self.local: Address = self.sock.getsockname()
        self.entropy = SeededEntropy(hash(name) & 0xFFFF)
        self.n = 0

    def close(self) -> None:
        self.sock.close()

    def _request(
        self, method: str, uri: str, to: str, call_id: str, extra: list[tuple[str, str]]
    ) -> str:
        host, port = self.local
        branch = f"z9hG4bK{self.entropy.random_bytes(6).hex()}"
        head = [
            ("Via", f"SIP/2.0/UDP {host}:{port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.name}@elsewhere.test>;tag={self.name}"),
            ("To", to),
            ("Call-ID", call_id),
            *extra,
        ]
        return f"{method} {uri} SIP/2.0\r\n{_headers(head)}"

    def final(self) -> Response:
        while True:
            data, source = self.sock.recvfrom(65535)
            message = parse_message(data)
            if isinstance(message, Request):  # a BYE from the phone: answered
                self.sock.sendto(build_response(message, 200).to_bytes(), source)
                continue
            if message.status >= 200:
                return message

    def message(self, server: Address, user: str) -> int:
        self.n += 1
        text = f"hello {self.n} from {self.name}".encode()
        request = self._request(
            "MESSAGE",
            f"sip:{user}@{DOMAIN}",
            f"<sip:{user}@{DOMAIN}>",
            f"m{self.n}-{self.name}-{self.local[1]}",
            [("CSeq", "1 MESSAGE"), ("Content-Type", "text/plain")],
        )
        self.sock.sendto(
            request.encode() + f"Content-Length: {len(text)}\r\n\r\n".encode() + text, server
        )
        return self.final().status

    def call(self, server: Address, user: str) -> Call:
        """INVITE, and ACK the 200 along its Record-Route."""
        self.n += 1
        call_id = f"c{self.n}-{self.name}-{self.local[1]}"
        host, port = self.local
        text = self._request(
            "INVITE",
            f"sip:{user}@{DOMAIN}",
            f"<sip:{user}@{DOMAIN}>",
            call_id,
            [("CSeq", "1 INVITE"), ("Contact", f"<sip:{self.name}@{host}:{port}>")],
        )
        raw = (text + "Content-Length: 0\r\n\r\n").encode()
        self.sock.sendto(raw, server)
        answer = self.final()
        assert answer.status == 200, (answer.status, answer.reason)
        invite = parse_message(raw)
        assert isinstance(invite, Request)
        call = Call(invite, answer, list(reversed(answer.headers.get_all("record-route"))))
        self._in_dialog(call, "ACK", 1)
        return call

    def _in_dialog(self, call: Call, method: str, seq: int) -> None:
        target = call.answer.contacts[0].uri_text
        extra = [("CSeq", f"{seq} {method}"), *(("Route", r) for r in call.route)]
        text = self._request(
            method, target, call.answer.headers.get("to") or "", call.invite.call_id, extra
        )
        uri = parse_name_addr(call.route[0], "Route").uri
        assert isinstance(uri, SipUri) and uri.port is not None
        self.sock.sendto((text + "Content-Length: 0\r\n\r\n").encode(), (uri.host, uri.port))

    def bye(self, call: Call) -> int:
        self._in_dialog(call, "BYE", 2)
        return self.final().status

    def wait_bye(self) -> None:
        """Answer the BYE the phone sends (through the server)."""
        data, source = self.sock.recvfrom(65535)
        message = parse_message(data)
        assert isinstance(message, Request) and message.method == "BYE", data[:80]
        self.sock.sendto(build_response(message, 200).to_bytes(), source)
