"""TLS with the generated self-signed certificate, IPv4 and IPv6."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from transport_helpers import HOSTS, Errors, Inbox, request, response

from sipline.transport import Target, TransportError, TransportLayer
from sipline.transport.tls import client_context, generate_self_signed, server_context

MakeLayer = Callable[..., tuple[TransportLayer, Inbox]]


def test_self_signed_certificate(tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    generate_self_signed(cert_path, key_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime > datetime.timedelta(days=3649)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    server_context(cert_path, key_path)  # the pair loads


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("server_name", [None, "localhost"])
async def test_tls_both_directions(
    make_layer: MakeLayer, tls_files: tuple[Path, Path], host: str, server_name: str | None
) -> None:
    cert, key = tls_files
    client, client_inbox = make_layer(tls_client_context=client_context(ca_path=cert))
    server, server_inbox = make_layer()
    listener = await server.listen_tls(host, 0, server_context(cert, key))
    assert listener.transport == "TLS"
    target = Target("TLS", host, listener.local[1], server_name=server_name)

    client.send(request(), target)
    data, source = await server_inbox.get()
    assert data == request()
    assert source.transport == "TLS"
    assert source.connection is not None
    assert source.connection.get_extra_info("ssl_object") is not None

    server.send(response(), Target("TLS", *source.remote), connection=source.connection)
    data, back = await client_inbox.get()
    assert data == response()
    assert back.transport == "TLS"
    assert back.connection is client.connection_for(target)
    assert server.stats.connections_total == 1


async def test_untrusted_certificate_is_reported(
    make_layer: MakeLayer, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    client, _ = make_layer(tls_client_context=client_context())  # system CAs only
    server, inbox = make_layer()
    port = (await server.listen_tls("127.0.0.1", 0, server_context(cert, key))).local[1]
    errors = Errors()
    client.send(request(), Target("TLS", "127.0.0.1", port), on_error=errors)
    error = await errors.get()
    assert isinstance(error, TransportError)
    assert "certificate" in str(error).lower()
    assert inbox.queue.empty()


async def test_wrong_server_name_is_reported(
    make_layer: MakeLayer, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    client, _ = make_layer(tls_client_context=client_context(ca_path=cert))
    server, _ = make_layer()
    port = (await server.listen_tls("127.0.0.1", 0, server_context(cert, key))).local[1]
    errors = Errors()
    target = Target("TLS", "127.0.0.1", port, server_name="sip.example.com")
    client.send(request(), target, on_error=errors)
    assert isinstance(await errors.get(), TransportError)


async def test_unverified_client_context(
    make_layer: MakeLayer, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    client, _ = make_layer(tls_client_context=client_context(verify=False))
    server, inbox = make_layer()
    port = (await server.listen_tls("127.0.0.1", 0, server_context(cert, key))).local[1]
    client.send(request(), Target("TLS", "127.0.0.1", port, server_name="anything"))
    assert (await inbox.get())[0] == request()
