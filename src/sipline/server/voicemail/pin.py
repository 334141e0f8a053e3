"""Voicemail PINs, kept as salted scrypt hashes (never in clear in the store)."""

from __future__ import annotations

import hashlib
import hmac
import os

__all__ = ["PinError", "check_pin", "hash_pin"]

_N, _R, _P = 2**14, 8, 1


class PinError(ValueError):
    """Not a usable PIN."""


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 16):
        raise PinError("a voicemail PIN is 4 to 16 digits")
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != "scrypt" or not pin.isdigit() or len(pin) > 16:
        return False
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return hmac.compare_digest(digest.hex(), digest_hex)
