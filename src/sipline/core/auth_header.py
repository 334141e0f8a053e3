"""Values of the authentication headers: challenges and credentials.

WWW-Authenticate / Proxy-Authenticate carry a challenge, Authorization /
Proxy-Authorization carry credentials (RFC 3261 §20.7, §20.27, §20.28, §20.44,
grammar in §25.1, extended by RFC 7616 §3.3-§3.4 and RFC 8760 §2).  Digest values
become the typed `Challenge` and `Credentials`; any other scheme is kept as an
`OtherAuth` (scheme plus its raw parameters), so a proxy can forward it untouched.

Parsing is tolerant where the RFCs allow it (LWS and folding around every
separator, parameter names in any case, token and quoted-string forms accepted for
every parameter) and raises only `RemoteProtocolError` on malformed input.
Serialization writes the canonical form: exactly the parameters §25.1 and RFC 8760
quote are quoted (realm, nonce, opaque, domain, qop-options, username, uri,
response, cnonce), the others are bare tokens (algorithm, stale, message qop, nc,
userhash, charset). The auth-param syntax itself is `sipline.core.auth_params`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sipline.core.auth_params import (
    NC_RE,
    TOKEN68_RE,
    TOKEN_RE,
    Params,
    bare,
    check_name,
    decode_ext_value,
    either,
    ext_value,
    flag,
    join_params,
    quote,
)
from sipline.core.errors import LocalProtocolError, RemoteProtocolError
from sipline.core.scanners import parse_auth_value

__all__ = [
    "Challenge",
    "Credentials",
    "OtherAuth",
    "parse_challenge",
    "parse_credentials",
]

_Digest = TypeVar("_Digest", "Challenge", "Credentials")


# --- unknown schemes ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OtherAuth:
    """A challenge or credentials in a scheme other than Digest, kept opaque.

    `params` holds the auth-params in order with their values unquoted; `token68`
    the single token68 some HTTP schemes use instead (never both).
    """

    scheme: str
    params: Params = ()
    token68: str | None = None

    def serialize(self) -> str:
        scheme = bare(self.scheme, "auth-scheme")
        if self.token68 is not None:
            if self.params or TOKEN68_RE.fullmatch(self.token68) is None:
                raise LocalProtocolError("token68 must be alone and well formed")
            return f"{scheme} {self.token68}"
        return join_params(scheme, [f"{check_name(n)}={either(v, n)}" for n, v in self.params])


# --- Digest challenge -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """A Digest challenge (RFC 3261 §25.1 digest-cln, RFC 7616 §3.3).

    `algorithm` is as sent (None means MD5); `qop` lists the offered options
    (empty when the parameter is absent, the RFC 2069 form); `extra` keeps
    parameters we do not interpret, in order.
    """

    realm: str
    nonce: str
    opaque: str | None = None
    algorithm: str | None = None
    qop: tuple[str, ...] = ()
    stale: bool = False
    domain: tuple[str, ...] = ()
    userhash: bool = False
    charset: str | None = None
    extra: Params = ()

    @classmethod
    def parse(cls, value: str | bytes) -> Challenge:
        """Parse a Digest challenge; any other scheme is a `RemoteProtocolError`."""
        return _digest_only(parse_challenge(value), "authentication")

    def serialize(self) -> str:
        """The header value, starting with the "Digest" scheme."""
        parts = [f"realm={quote(self.realm, 'realm')}"]
        if self.domain:
            for uri in self.domain:
                if not uri or any(c in uri for c in ' \t\r\n"\\'):
                    raise LocalProtocolError(f"domain URI {uri!r} cannot be listed")
            parts.append(f'domain="{" ".join(self.domain)}"')
        parts.append(f"nonce={quote(self.nonce, 'nonce')}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque, 'opaque')}")
        if self.stale:
            parts.append("stale=true")
        if self.algorithm is not None:
            parts.append(f"algorithm={bare(self.algorithm, 'algorithm')}")
        if self.qop:
            # qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT
            parts.append(f'qop="{",".join(bare(q, "qop") for q in self.qop)}"')
        if self.charset is not None:
            parts.append(f"charset={bare(self.charset, 'charset')}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{check_name(n)}={either(v, n)}" for n, v in self.extra)
        return join_params("Digest", parts)


def _challenge_from(params: Params, what: str) -> Challenge:
    fields: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for name, value in params:
        key = name.lower()
        if key in _CHALLENGE_KEYS:
            fields[key] = value
        else:
            extra.append((name, value))
    for required in ("realm", "nonce"):
        if required not in fields:
            raise RemoteProtocolError(f"Malformed {what}: Digest challenge without {required}")
    qop = tuple(q for q in (p.strip(" \t") for p in fields.get("qop", "").split(",")) if q)
    if "qop" in fields and (not qop or any(TOKEN_RE.fullmatch(q) is None for q in qop)):
        raise RemoteProtocolError(f"Malformed {what}: bad qop-options")
    return Challenge(
        realm=fields["realm"],
        nonce=fields["nonce"],
        opaque=fields.get("opaque"),
        algorithm=fields.get("algorithm"),
        qop=qop,
        stale=flag(fields.get("stale", "")),
        domain=tuple(fields.get("domain", "").split()),
        userhash=flag(fields.get("userhash", "")),
        charset=fields.get("charset"),
        extra=tuple(extra),
    )


_CHALLENGE_KEYS = frozenset(
    {"realm", "nonce", "opaque", "algorithm", "qop", "stale", "domain", "userhash", "charset"}
)


def parse_challenge(value: str | bytes) -> Challenge | OtherAuth:
    """Parse a WWW-Authenticate or Proxy-Authenticate value."""
    what = "challenge"
    scheme, params = parse_auth_value(value, what)
    if scheme.lower() != "digest":
        return _other(scheme, params)
    if isinstance(params, str) or not params:
        raise RemoteProtocolError(f"Malformed {what}: Digest needs auth-params")
    return _challenge_from(params, what)


# --- Digest credentials -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """Digest credentials (RFC 3261 §25.1 digest-response, RFC 7616 §3.4).

    Every field may be absent on receipt (a verifier reports what is missing);
    `username` is the decoded value whether it came as `username` or as RFC 7616
    `username*`. `nc` is the 8 hex digits as sent, since it is hashed as sent.
    """

    username: str | None = None
    realm: str | None = None
    nonce: str | None = None
    uri: str | None = None
    response: str | None = None
    algorithm: str | None = None
    cnonce: str | None = None
    opaque: str | None = None
    qop: str | None = None
    nc: str | None = None
    userhash: bool = False
    extra: Params = ()

    @classmethod
    def parse(cls, value: str | bytes) -> Credentials:
        """Parse Digest credentials; any other scheme is a `RemoteProtocolError`."""
        return _digest_only(parse_credentials(value), "authorization")

    def serialize(self) -> str:
        """The header value, starting with the "Digest" scheme."""
        parts: list[str] = []
        if self.username is not None:
            if any(c in self.username for c in "\r\n"):
                # RFC 7616 §3.4.4: what a quoted-string cannot carry goes in username*.
                parts.append(f"username*={ext_value(self.username)}")
            else:
                parts.append(f"username={quote(self.username, 'username')}")
        for name in ("realm", "nonce", "uri", "response"):
            field = getattr(self, name)
            if field is not None:
                parts.append(f"{name}={quote(field, name)}")
        if self.algorithm is not None:
            parts.append(f"algorithm={bare(self.algorithm, 'algorithm')}")
        if self.cnonce is not None:
            parts.append(f"cnonce={quote(self.cnonce, 'cnonce')}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque, 'opaque')}")
        # message-qop = "qop" EQUAL qop-value ; nonce-count = "nc" EQUAL nc-value (unquoted)
        if self.qop is not None:
            parts.append(f"qop={bare(self.qop, 'qop')}")
        if self.nc is not None:
            if NC_RE.fullmatch(self.nc) is None:
                raise LocalProtocolError(f"nc={self.nc!r} is not 8 hex digits")
            parts.append(f"nc={self.nc}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(f"{check_name(n)}={either(v, n)}" for n, v in self.extra)
        return join_params("Digest", parts)


_CREDENTIAL_KEYS = frozenset(
    {
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "algorithm",
        "cnonce",
        "opaque",
        "qop",
        "nc",
    }
)


def parse_credentials(value: str | bytes) -> Credentials | OtherAuth:
    """Parse an Authorization or Proxy-Authorization value."""
    what = "credentials"
    scheme, params = parse_auth_value(value, what)
    if scheme.lower() != "digest":
        return _other(scheme, params)
    if isinstance(params, str) or not params:
        raise RemoteProtocolError(f"Malformed {what}: Digest needs auth-params")
    fields: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    username_star: str | None = None
    userhash = False
    for name, raw in params:
        key = name.lower()
        if key in _CREDENTIAL_KEYS:
            fields[key] = raw
        elif key == "username*":
            username_star = decode_ext_value(raw, what)
        elif key == "userhash":
            userhash = flag(raw)
        else:
            extra.append((name, raw))
    if username_star is not None:
        # RFC 7616 §3.4.4: username and username* are mutually exclusive.
        if "username" in fields:
            raise RemoteProtocolError(f"Malformed {what}: both username and username*")
        fields["username"] = username_star
    nc = fields.get("nc")
    if nc is not None and NC_RE.fullmatch(nc) is None:
        raise RemoteProtocolError(f"Malformed {what}: nc is not 8 hex digits")
    qop = fields.get("qop")
    if qop is not None and TOKEN_RE.fullmatch(qop) is None:
        raise RemoteProtocolError(f"Malformed {what}: qop is not a token")
    return Credentials(
        username=fields.get("username"),
        realm=fields.get("realm"),
        nonce=fields.get("nonce"),
        uri=fields.get("uri"),
        response=fields.get("response"),
        algorithm=fields.get("algorithm"),
        cnonce=fields.get("cnonce"),
        opaque=fields.get("opaque"),
        qop=qop,
        nc=nc,
        userhash=userhash,
        extra=tuple(extra),
    )


def _digest_only(parsed: _Digest | OtherAuth, kind: str) -> _Digest:
    if isinstance(parsed, OtherAuth):
        raise RemoteProtocolError(f"Unsupported {kind} scheme {parsed.scheme!r}")
    return parsed


def _other(scheme: str, params: Params | str) -> OtherAuth:
    if isinstance(params, str):
        return OtherAuth(scheme, token68=params)
    return OtherAuth(scheme, params)
