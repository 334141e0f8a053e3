"""Names from the hosts file resolve as getaddrinfo would (RFC 3263 §4.2 falls back to
A/AAAA), without asking DNS: `localhost` and the names an operator put in /etc/hosts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipline.core.routing import Destination, Target, Transport
from sipline.transport.hosts import HostsFile, parse_hosts
from sipline.transport.resolver import ResolutionError, Resolver


class _Silent(asyncio.DatagramProtocol):
    """A DNS server that counts questions and never answers."""

    def __init__(self) -> None:
        self.questions = 0

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.questions += 1


@pytest.fixture
async def silent_dns() -> AsyncIterator[tuple[int, _Silent]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Silent, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1], proto
    finally:
        transport.close()


def _resolver(port: int, hosts_file: Path | str | None) -> Resolver:
    return Resolver(
        nameservers=["127.0.0.1"], port=port, timeout_s=0.3, configure=False,
        hosts_file=hosts_file, transports=(Transport.UDP,), choose=lambda n: 0,
    )  # fmt: skip


async def test_a_name_in_the_hosts_file_never_asks_dns(
    silent_dns: tuple[int, _Silent], tmp_path: Path
) -> None:
    port, dns = silent_dns
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\n127.0.0.7 pbx.test pbx  # the PBX\n::1 pbx.test\n")
    resolver = _resolver(port, hosts)
    async with asyncio.timeout(5):
        targets = await resolver.resolve(Destination("PBX.test", port=5070))
    assert targets == [
        Target(Transport.UDP, "127.0.0.7", 5070, "pbx.test"),
        Target(Transport.UDP, "::1", 5070, "pbx.test"),
    ]
    assert dns.questions == 0
    # Without a port: no NAPTR/SRV asked either (files before dns), port 5060.
    async with asyncio.timeout(5):
        targets = await resolver.resolve(Destination("pbx"))
    assert [(t.host, t.port) for t in targets] == [("127.0.0.7", 5060)]
    assert dns.questions == 0
    # The file is read again when it changes.
    hosts.write_text("127.0.0.9 pbx.test\n")
    async with asyncio.timeout(5):
        targets = await resolver.resolve(Destination("pbx.test", port=5070))
    assert [t.host for t in targets] == ["127.0.0.9"]


async def test_localhost_resolves_as_getaddrinfo_does(silent_dns: tuple[int, _Silent]) -> None:
    port, dns = silent_dns
    expected = {
        info[4][0]
        for info in socket.getaddrinfo("localhost", 5060, type=socket.SOCK_DGRAM)
        if info[0] in (socket.AF_INET, socket.AF_INET6)
    }
    async with asyncio.timeout(5):
        targets = await _resolver(port, "/etc/hosts").resolve(Destination("localhost"))
    assert {t.host for t in targets} == expected
    assert dns.questions == 0


async def test_without_a_hosts_file_the_name_goes_to_dns(
    silent_dns: tuple[int, _Silent], tmp_path: Path
) -> None:
    port, dns = silent_dns
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.7 pbx.test\n")
    async with asyncio.timeout(5):
        with pytest.raises(ResolutionError) as info:
            await _resolver(port, None).resolve(Destination("pbx.test", port=5060))
    assert info.value.temporary and dns.questions > 0


def test_parse_hosts_skips_bad_lines() -> None:
    table = parse_hosts("garbage\n300.1.1.1 bad\nfe80::1%eth0 link\n10.0.0.1 A. a\n")
    assert table == {"link": ([], ["fe80::1"]), "a": (["10.0.0.1"], [])}
    assert HostsFile("/nonexistent/hosts").addresses("localhost", 4) is None
