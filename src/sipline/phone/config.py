"""User agent configuration: who we are, where the server is, and the call policies."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from sipline import __version__
from sipline.core.errors import RemoteProtocolError
from sipline.core.timers import TimerConfig
from sipline.core.uri import SipUri, parse_uri
from sipline.phone.media import AddressMapper, MediaOptions
from sipline.phone.session_timer import SessionTimerPolicy

__all__ = ["ALLOW", "SUPPORTED", "UserAgentConfig", "parse_aor", "parse_hostport"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, MESSAGE"
SUPPORTED = "timer"


def parse_aor(text: str) -> SipUri:
    """`alice@example.com` or `sip:alice@example.com` -> the SIP URI (ValueError if not)."""
    candidate = text if ":" in text.split("@", 1)[0] else f"sip:{text}"
    try:
        uri = parse_uri(candidate)
    except RemoteProtocolError as exc:
        raise ValueError(f"{text!r} is not a SIP address: {exc.reason}") from None
    if not isinstance(uri, SipUri) or uri.user is None:
        raise ValueError(f"{text!r} is not a SIP address of a user (user@domain)")
    return uri


def parse_hostport(text: str, default_port: int = 5060) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` -> (host without brackets, port)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{text!r}: unclosed '['")
        host, rest = text[1:end], text[end + 1 :]
        port_s = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_s = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if not host:
        raise ValueError(f"{text!r}: no host")
    if port_s and (not port_s.isdigit() or not 0 <= int(port_s) < 65536):
        raise ValueError(f"{text!r}: port must be a number from 0 to 65535")
    return host, int(port_s) if port_s else default_port


@dataclass(slots=True)
class UserAgentConfig:
    """Everything a `UserAgent` needs; see `UserAgent` for the meaning of each field."""

    aor: SipUri
    password: str | None = None
    username: str | None = None  # defaults to the user part of the AOR
    display_name: str | None = None
    server: tuple[str, int] | None = None  # registrar and outbound proxy
    transport: str = "UDP"
    listen_host: str = "0.0.0.0"
    listen_port: int = 0
    # A UDP socket bound already (by a supervising process); listen_host/port then
    # name its address.
    listen_socket: socket.socket | None = None
    advertise: str | None = None
    register: bool | None = None  # None: register when a server is given
    register_expires_s: int = 600
    keepalive_s: float | None = 25.0
    # TLS: the CA file that signs the server's certificate (None: the system store);
    # tls_verify=False accepts any certificate (self-signed test servers only).
    tls_ca_file: str | None = None
    tls_verify: bool = True
    auto_answer: bool = False
    ring_s: float = 0.0  # auto-answer after ringing this long
    media: MediaOptions = field(default_factory=MediaOptions)
    media_mapper: AddressMapper | None = None
    session_timer: SessionTimerPolicy = field(default_factory=SessionTimerPolicy)
    timers: TimerConfig = field(default_factory=TimerConfig)
    user_agent: str = f"sipline/{__version__}"
    max_redirects: int = 5
    # Dial strings sent as urn:service:sos (RFC 6881 §9.3); the server's [emergency] numbers.
    emergency_numbers: tuple[str, ...] = ("112", "911")

    @classmethod
    def of(
        cls,
        aor: str,
        *,
        password: str | None = None,
        username: str | None = None,
        server: str | None = None,
        listen: str = "0.0.0.0:0",
        transport: str = "udp",
        register: bool | None = None,
        auto_answer: bool = False,
        **settings: object,
    ) -> UserAgentConfig:
        """The configuration `UserAgent`'s keyword arguments describe."""
        host, port = parse_hostport(listen, default_port=0)
        default_port = 5061 if transport.upper() == "TLS" else 5060
        config = cls(
            aor=parse_aor(aor),
            password=password,
            username=username,
            server=parse_hostport(server, default_port) if server else None,
            transport=transport.upper(),
            listen_host=host,
            listen_port=port,
            register=register,
            auto_answer=auto_answer,
        )
        for name, value in settings.items():
            if not hasattr(config, name):
                raise TypeError(f"unknown setting {name!r} (see UserAgentConfig)")
            setattr(config, name, value)
        return config

    @property
    def auth_username(self) -> str:
        return self.username or self.aor.user or ""

    @property
    def reliable(self) -> bool:
        """A connection-oriented transport: RFC 5626 outbound applies."""
        return self.transport in ("TCP", "TLS")

    @property
    def should_register(self) -> bool:
        if self.register is None:
            return self.server is not None
        return self.register
