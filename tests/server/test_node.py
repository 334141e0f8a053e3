"""A node's name among several sharing one store (server/node.py), and the owner and
nonce issuer ids of its processes."""

from __future__ import annotations

import socket

import pytest

from sipline.core.auth_server import MAX_ISSUER
from sipline.server.config import ConfigError, load_config
from sipline.server.node import issuer_id, process_id


def node_of(server: dict[str, object]) -> str:
    return load_config({"server": server}).server.node_name


def test_the_name_is_the_first_listeners_address_unless_configured() -> None:
    assert node_of({"listen": ["udp:127.0.0.2:5070", "tcp:127.0.0.2:5070"]}) == "127.0.0.2:5070"
    assert node_of({"listen": ["udp:[::1]:5060"]}) == "[::1]:5060"
    listen = ["udp:0.0.0.0:5060"]
    # A wildcard address names no node: the machine's name does; and not the advertised
    # name, which every node may share (one DNS name for them all).
    assert node_of({"listen": listen}) == f"{socket.gethostname()}:5060"
    assert node_of({"listen": listen, "advertise": "sip.example.com"}) == node_of(
        {"listen": listen}
    )
    assert node_of({"listen": listen, "node": "paris-1"}) == "paris-1"


@pytest.mark.parametrize("bad", ["", "a/b", "two words", "x" * 101, 7])
def test_a_bad_node_name_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"server\.node"):
        load_config({"server": {"node": bad}})


def test_processes_of_two_nodes_never_share_an_owner_or_an_issuer() -> None:
    a, b = "127.0.0.1:5060", "127.0.0.2:5060"
    assert process_id(a, 0) == "127.0.0.1:5060/0" != process_id(b, 0)
    ids = {issuer_id(node, worker) for node in (a, b) for worker in range(4)}
    assert len(ids) == 8 and all(0 <= i <= MAX_ISSUER for i in ids)
    assert issuer_id(a, 1) == issuer_id(a, 1)  # stable: a restarted node is the same one
    assert issuer_id(a, 1) & 0xFFFF == 1
