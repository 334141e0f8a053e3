"""TLS contexts for SIP over TLS (RFC 3261 §26.2, RFC 5922) and a self-signed
certificate generator for tests and first runs."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["client_context", "generate_self_signed", "server_context"]

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


def generate_self_signed(
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    hostnames: Sequence[str] = DEFAULT_NAMES,
    *,
    days: int = 3650,
) -> None:
    """Write a self-signed EC P-256 certificate and its key (PEM, key mode 0600).

    Every entry of `hostnames` becomes a subjectAltName: IP literals as iPAddress,
    the rest as dNSName (RFC 5922 §7.1 matches SIP domains against these). The
    certificate is its own CA, so clients can trust it with `ca_path=cert_path`.
    """
    if not hostnames:
        raise ValueError("at least one hostname is needed")
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for name in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context(
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    *,
    client_ca_path: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """A server context (TLS 1.2+). With `client_ca_path`, clients must present a
    certificate signed by it (mutual TLS, RFC 5922 §7.3)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    if client_ca_path is not None:
        context.load_verify_locations(client_ca_path)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(
    *,
    ca_path: str | os.PathLike[str] | None = None,
    verify: bool = True,
    cert_path: str | os.PathLike[str] | None = None,
    key_path: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """A client context (TLS 1.2+). It trusts `ca_path`, or the system store when
    None, and checks the server's name; `verify=False` turns both off (tests and
    lab use only). `cert_path`/`key_path` add a client certificate."""
    context = ssl.create_default_context(cafile=ca_path)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert_path is not None:
        context.load_cert_chain(cert_path, key_path)
    return context
