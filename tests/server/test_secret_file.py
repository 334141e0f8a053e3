"""The server's secret survives a restart (server/secret_file.py): a challenge issued
before it is still answered after it, with no fresh challenge. Nodes starting at once
on one database end up with one secret, and with a whole self-signed TLS pair."""

from __future__ import annotations

import concurrent.futures
import ssl
import stat
import threading
from pathlib import Path

from server_helpers import DOMAIN, USERS, configured, server_target
from sipua import TestUA

from sipline.server.config import parse_listen
from sipline.server.secret_file import SECRET_BYTES, secret_path, server_secret
from sipline.server.sip_server import SipServer
from sipline.server.startup import TlsSection, tls_context


def test_the_secret_is_made_once_kept_private_and_reread(tmp_path: Path) -> None:
    db = tmp_path / "sipline.db"
    first = server_secret(db)
    path = secret_path(db)
    assert path is not None and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == SECRET_BYTES
    assert server_secret(db) == first


def test_a_damaged_secret_file_gives_way_to_a_new_secret(tmp_path: Path) -> None:
    db = tmp_path / "sipline.db"
    path = secret_path(db)
    assert path is not None
    path.write_text("not hex\n", encoding="ascii")
    secret = server_secret(db)
    assert len(secret) == SECRET_BYTES
    assert server_secret(db) == secret


def test_a_database_in_memory_has_no_secret_file() -> None:
    assert secret_path(Path(":memory:")) is None
    assert server_secret(Path(":memory:")) != server_secret(Path(":memory:"))


async def _serve(db: Path, udp_port: int = 0) -> SipServer:
    cfg = configured(
        listen=[parse_listen(f"udp:127.0.0.1:{udp_port}"), parse_listen("tcp:127.0.0.1:0")],
        domains=[DOMAIN],
        database=db,
        # The same node before and after (its name is not made from a port that moves).
        node="kept",
    )
    server = SipServer(cfg)
    await server.start()
    return server


async def test_a_challenge_from_before_a_restart_is_answered_after_it(tmp_path: Path) -> None:
    db = tmp_path / "kept.db"
    server = await _serve(db)
    assert server.store is not None
    await server.store.write(server.store.store.add_user, "alice", DOMAIN, USERS["alice"])
    port = server.endpoint.local_address("UDP").port
    ua = await TestUA.start(server_target(server), "UDP")
    try:
        aor = f"alice@{DOMAIN}"
        contact = f"sip:alice@127.0.0.1:{ua.port}"
        register = ua.build("REGISTER", f"sip:{DOMAIN}", from_=aor, contact=contact)
        challenged = await ua.send(register)
        assert challenged.final.status == 401
        await server.stop()
        server = await _serve(db, port)
        answered = await ua.send(ua.answer(register, challenged.final, "alice", USERS["alice"]))
        assert answered.final.status == 200, (answered.final.status, answered.final.reason)
    finally:
        await ua.close()
        await server.stop()


def test_nodes_starting_at_once_end_up_with_one_secret(tmp_path: Path) -> None:
    """Several nodes creating the file at the same moment all use the one that won."""
    db = tmp_path / "shared.db"
    start = threading.Barrier(8)

    def make() -> bytes:
        start.wait()
        return server_secret(db)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        secrets = list(pool.map(lambda _: make(), range(8)))
    assert len(set(secrets)) == 1 and server_secret(db) == secrets[0]
    assert [p.name for p in tmp_path.iterdir()] == ["shared.db.secret"]  # no leftovers


def test_nodes_starting_at_once_make_one_self_signed_pair(tmp_path: Path) -> None:
    """Several nodes sharing the database's directory, none with a certificate
    configured: each loads a matching pair, and one pair is left there."""
    db = tmp_path / "shared.db"
    start = threading.Barrier(4)

    def load() -> ssl.SSLContext:
        start.wait()
        return tls_context(TlsSection(), db)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        contexts = list(pool.map(lambda _: load(), range(4)))
    assert len(contexts) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sipline-tls"]
    assert sorted(p.name for p in (tmp_path / "sipline-tls").iterdir()) == ["cert.pem", "key.pem"]
    tls_context(TlsSection(), db)  # and it loads again


def test_a_secret_file_named_in_the_configuration_is_used(tmp_path: Path) -> None:
    """`[server] secret_file`: nodes on several machines each name a copy of one file."""
    db, copy = tmp_path / "sipline.db", tmp_path / "etc" / "sipline.secret"
    copy.parent.mkdir()
    copy.write_text("ab" * SECRET_BYTES + "\n", encoding="ascii")
    assert secret_path(db, copy) == copy
    assert server_secret(db, copy) == bytes.fromhex("ab" * SECRET_BYTES)
    beside = secret_path(db)
    assert beside is not None and not beside.exists()  # nothing made beside the database
