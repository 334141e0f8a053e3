"""SRTP keyed by SDES (RFC 4568), through libsrtp (the `pylibsrtp` binding, extra `[srtp]`).

`CryptoAttribute` is the `a=crypto` line: a tag, a crypto-suite and the inline master
key and salt (RFC 4568 §6.1, §9.1). `SrtpContext` protects what we send with our key and
unprotects what we receive with the peer's (RFC 3711). Parsing and formatting the
attribute is pure; only `SrtpContext` needs libsrtp, imported when first used.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import re
from dataclasses import dataclass
from typing import Any

from sipline.core.clock import Entropy

__all__ = [
    "SUITES",
    "CryptoAttribute",
    "SrtpContext",
    "SrtpError",
    "new_crypto",
    "select_crypto",
    "srtp_available",
]


class SrtpError(ValueError):
    """A malformed crypto attribute, an unusable suite, or a packet that failed its check."""


# RFC 4568 §6.2: the suites every SDES implementation knows; 30 octets = 16 key + 14 salt.
SUITES: dict[str, tuple[str, int]] = {
    "AES_CM_128_HMAC_SHA1_80": ("SRTP_PROFILE_AES128_CM_SHA1_80", 30),
    "AES_CM_128_HMAC_SHA1_32": ("SRTP_PROFILE_AES128_CM_SHA1_32", 30),
}

# crypto-attribute = tag 1*WSP crypto-suite 1*WSP key-params *(1*WSP session-param)
_CRYPTO = re.compile(r"(\d{1,9})[ \t]+([A-Za-z0-9_]+)[ \t]+([^ \t]+)((?:[ \t]+[^ \t]+)*)")
# key-params = "inline:" key-salt ["|" lifetime] ["|" MKI ":" length]
_INLINE = re.compile(r"inline:([A-Za-z0-9+/=]+)(?:\|([^|]+))?(?:\|(\d+):(\d+))?")


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One `a=crypto` value (RFC 4568 §9.1); `key` is master key then master salt."""

    tag: int
    suite: str
    key: bytes
    lifetime: str | None = None
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        match = _CRYPTO.fullmatch(value.strip())
        if match is None:
            raise SrtpError(f"malformed crypto attribute {value!r}")
        tag, suite, key_params, rest = match.groups()
        # Several keys may be listed with ';' (§9.1); we use the first.
        first = key_params.split(";", 1)[0]
        inline = _INLINE.fullmatch(first)
        if inline is None:
            raise SrtpError(f"crypto attribute without an inline key: {value!r}")
        try:
            key = base64.b64decode(inline.group(1), validate=True)
        except binascii.Error as exc:
            raise SrtpError(f"crypto key is not base64: {exc}") from None
        if inline.group(3) is not None:
            raise SrtpError("crypto keys with an MKI are not supported")
        params = tuple(rest.split())
        return cls(int(tag), suite, key, inline.group(2), params)

    def value(self) -> str:
        key = base64.b64encode(self.key).decode("ascii")
        lifetime = f"|{self.lifetime}" if self.lifetime else ""
        params = "".join(f" {p}" for p in self.session_params)
        return f"{self.tag} {self.suite} inline:{key}{lifetime}{params}"

    @property
    def supported(self) -> bool:
        """A suite we know, a key of its length, and no session parameters we would
        have to honour (§6.3: an unknown one makes the line unusable)."""
        known = SUITES.get(self.suite)
        return known is not None and len(self.key) == known[1] and not self.session_params


def new_crypto(
    tag: int, *, entropy: Entropy, suite: str = "AES_CM_128_HMAC_SHA1_80"
) -> CryptoAttribute:
    """A fresh master key and salt for `suite` (RFC 4568 §6.1: random, never reused)."""
    if suite not in SUITES:
        raise SrtpError(f"unknown crypto suite {suite}")
    return CryptoAttribute(tag, suite, entropy.random_bytes(SUITES[suite][1]))


def select_crypto(offered: list[str]) -> CryptoAttribute | None:
    """The first offered `a=crypto` line we can use (RFC 4568 §7.1.1), or None."""
    for value in offered:
        try:
            crypto = CryptoAttribute.parse(value)
        except SrtpError:
            continue
        if crypto.supported:
            return crypto
    return None


def srtp_available() -> bool:
    """Whether the optional libsrtp binding is installed (`pip install sipline[srtp]`)."""
    try:
        importlib.import_module("pylibsrtp")
    except ImportError:
        return False
    return True


class SrtpContext:
    """Protects outgoing RTP/RTCP with `local` and checks incoming with `remote`.

    Both must use the same suite (the answer echoes the offer's, RFC 4568 §7.1.2).
    Packets failing authentication or replay checks raise `SrtpError`.

    `previous`: the context of the last offer/answer of this stream. A key that stays
    the same across a re-negotiation keeps its libsrtp session (RFC 4568 §7.1.4: same
    key, same crypto context), so the RTP rollover counter and the SRTCP index go on:
    a fresh session would number from 0 again under the same key, repeating keystream
    and replay-window entries (RFC 3711 §9.2).
    """

    def __init__(
        self,
        local: CryptoAttribute,
        remote: CryptoAttribute,
        *,
        previous: SrtpContext | None = None,
    ) -> None:
        if not local.supported or not remote.supported:
            raise SrtpError("unsupported crypto suite or key length")
        if local.suite != remote.suite:
            raise SrtpError(f"crypto suites differ: {local.suite} and {remote.suite}")
        try:
            lib: Any = importlib.import_module("pylibsrtp")
        except ImportError as exc:
            raise SrtpError("SRTP needs the pylibsrtp package (pip install sipline[srtp])") from exc
        self._error = lib.Error
        self.suite = local.suite
        self.local_key = local.key
        self.remote_key = remote.key
        same_suite = previous is not None and previous.suite == self.suite
        profile = getattr(lib.Policy, SUITES[local.suite][0])
        if same_suite and previous is not None and previous.local_key == local.key:
            self._tx: Any = previous._tx
        else:
            self._tx = lib.Session(
                policy=lib.Policy(
                    key=local.key, ssrc_type=lib.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
                )
            )
        if same_suite and previous is not None and previous.remote_key == remote.key:
            self._rx: Any = previous._rx
        else:
            self._rx = lib.Session(
                policy=lib.Policy(
                    key=remote.key, ssrc_type=lib.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
                )
            )

    def protect(self, rtp: bytes) -> bytes:
        try:
            return bytes(self._tx.protect(rtp))
        except self._error as exc:
            raise SrtpError(f"cannot protect RTP: {exc}") from None

    def unprotect(self, srtp: bytes) -> bytes:
        try:
            return bytes(self._rx.unprotect(srtp))
        except self._error as exc:
            raise SrtpError(f"SRTP check failed: {exc}") from None

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        try:
            return bytes(self._tx.protect_rtcp(rtcp))
        except self._error as exc:
            raise SrtpError(f"cannot protect RTCP: {exc}") from None

    def unprotect_rtcp(self, srtcp: bytes) -> bytes:
        try:
            return bytes(self._rx.unprotect_rtcp(srtcp))
        except self._error as exc:
            raise SrtpError(f"SRTCP check failed: {exc}") from None
