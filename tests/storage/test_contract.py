"""One contract for every store backend: accounts and bindings behave the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sipline.core.auth import ha1
from sipline.storage import (
    HA1_ALGORITHMS,
    Binding,
    DuplicateError,
    NotFoundError,
    SqliteStore,
    Store,
    StoreError,
)


@pytest.fixture(params=["sqlite-file", "sqlite-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "sipline.db" if request.param == "sqlite-file" else ":memory:"
    s = SqliteStore(path)
    yield s
    s.close()


def binding(contact: str = "sip:alice@192.0.2.1:5060", **kw: object) -> Binding:
    fields: dict[str, object] = {
        "aor": "alice@example.com",
        "contact": contact,
        "expires_at": 1000.0,
        "call_id": "c1",
        "cseq": 1,
        "updated_at": 10.0,
    }
    fields.update(kw)
    return Binding(**fields)  # type: ignore[arg-type]


# --- domains ----------------------------------------------------------------------------


def test_domains_add_list_remove(store: Store) -> None:
    assert store.list_domains() == []
    store.add_domain("Example.COM")
    store.add_domain("b.example")
    assert store.list_domains() == ["b.example", "example.com"]
    assert store.has_domain("EXAMPLE.com")
    with pytest.raises(DuplicateError, match=r"example\.com"):
        store.add_domain("example.com")
    store.remove_domain("b.example")
    assert store.list_domains() == ["example.com"]
    with pytest.raises(NotFoundError):
        store.remove_domain("b.example")


def test_domain_with_users_cannot_be_removed(store: Store) -> None:
    store.add_domain("example.com")
    store.add_user("alice", "example.com", "pw")
    with pytest.raises(StoreError, match="still has users"):
        store.remove_domain("example.com")
    store.remove_user("alice", "example.com")
    store.remove_domain("example.com")


# --- users ------------------------------------------------------------------------------


def test_user_stores_ha1_per_algorithm_never_the_password(store: Store) -> None:
    store.add_domain("example.com")
    user = store.add_user("alice", "Example.com", "s3cret-pass")
    assert user.address == "alice@example.com"
    assert set(user.ha1) == set(HA1_ALGORITHMS) >= {"MD5", "SHA-256"}
    for algo in HA1_ALGORITHMS:
        expected = ha1("alice", "example.com", "s3cret-pass", algo)
        assert store.lookup_ha1("alice", "example.com", algo) == expected
        assert user.ha1[algo] == expected
    assert store.lookup_ha1("alice", "example.com", "sha-256") == user.ha1["SHA-256"]
    assert store.get_user("alice", "EXAMPLE.com") == user
    if isinstance(store, SqliteStore) and store.path != ":memory:":
        assert b"s3cret-pass" not in Path(store.path).read_bytes()


def test_user_errors(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no domain"):
        store.add_user("alice", "example.com", "pw")
    store.add_domain("example.com")
    store.add_user("alice", "example.com", "pw")
    with pytest.raises(DuplicateError, match=r"alice@example\.com"):
        store.add_user("alice", "example.com", "other")
    with pytest.raises(NotFoundError):
        store.set_password("bob", "example.com", "pw")
    with pytest.raises(NotFoundError):
        store.remove_user("bob", "example.com")
    assert store.get_user("bob", "example.com") is None
    assert store.lookup_ha1("bob", "example.com", "MD5") is None
    assert store.lookup_ha1("alice", "example.com", "SHA-1") is None


def test_user_names_are_case_sensitive(store: Store) -> None:
    store.add_domain("example.com")
    store.add_user("alice", "example.com", "a")
    store.add_user("Alice", "example.com", "b")
    assert [u.username for u in store.list_users()] == ["Alice", "alice"]


def test_set_password_replaces_every_ha1(store: Store) -> None:
    store.add_domain("example.com")
    before = store.add_user("alice", "example.com", "old")
    store.set_password("alice", "example.com", "new")
    after = store.get_user("alice", "example.com")
    assert after is not None
    for algo in HA1_ALGORITHMS:
        assert after.ha1[algo] == ha1("alice", "example.com", "new", algo) != before.ha1[algo]


def test_list_and_remove_users(store: Store) -> None:
    for d in ("a.example", "b.example"):
        store.add_domain(d)
    store.add_user("zoe", "a.example", "pw")
    store.add_user("bob", "b.example", "pw")
    store.add_user("amy", "a.example", "pw")
    assert [u.address for u in store.list_users()] == [
        "amy@a.example",
        "zoe@a.example",
        "bob@b.example",
    ]
    assert [u.address for u in store.list_users("B.example")] == ["bob@b.example"]
    assert store.count_users() == 3
    store.remove_user("zoe", "a.example")
    assert store.count_users() == 2
    assert store.get_user("zoe", "a.example") is None
    assert store.lookup_ha1("zoe", "a.example", "MD5") is None
    store.add_user("zoe", "a.example", "again")  # credentials went with the user


# --- bindings ---------------------------------------------------------------------------


def test_binding_round_trip_keeps_every_field(store: Store) -> None:
    b = binding(
        "sip:alice@192.0.2.1:5060;transport=tcp?Route=%3Csip:p.example%3E",
        q=0.7,
        path=("<sip:edge1.example;lr>", "<sip:edge2.example;lr;ob>"),
        instance='"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
        reg_id=1,
        received="udp:203.0.113.5:40312",
        user_agent="Phone/1.0",
        params=';+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1',
        flow="sip:AQEBE8R_AAABc2lnbmF0dXJl@198.51.100.1:5060;transport=tcp;lr",
    )
    store.upsert_binding(b)
    assert store.list_bindings("alice@example.com") == [b]
    assert store.all_bindings() == [b]


def test_binding_upsert_replaces_and_keeps_order(store: Store) -> None:
    store.upsert_binding(binding("sip:a@h1"))
    store.upsert_binding(binding("sip:a@h2"))
    store.upsert_binding(binding("sip:a@h1", cseq=2, expires_at=2000.0))
    got = store.list_bindings("alice@example.com")
    assert [(b.contact, b.cseq, b.expires_at) for b in got] == [
        ("sip:a@h1", 2, 2000.0),
        ("sip:a@h2", 1, 1000.0),
    ]


def test_bindings_per_aor(store: Store) -> None:
    store.upsert_binding(binding("sip:a@h1"))
    store.upsert_binding(binding("sip:b@h1", aor="bob@example.com"))
    assert [b.aor for b in store.all_bindings()] == ["alice@example.com", "bob@example.com"]
    assert store.list_bindings("carol@example.com") == []
    assert store.remove_bindings("alice@example.com") == 1
    assert store.remove_bindings("alice@example.com") == 0
    assert [b.aor for b in store.all_bindings()] == ["bob@example.com"]


def test_iter_bindings_reads_every_binding_page_by_page(store: Store) -> None:
    for i in range(7):
        store.upsert_binding(binding(f"sip:a@h{i}", aor=f"u{i % 3}@example.com"))
    store.upsert_binding(binding("sip:a@h0", aor="u0@example.com", cseq=5))  # refreshed
    for page in (1, 2, 3, 1000):
        got = list(store.iter_bindings(page))
        assert sorted(got, key=lambda b: (b.aor, b.contact)) == sorted(
            store.all_bindings(), key=lambda b: (b.aor, b.contact)
        )
        # Within an AOR, in the order list_bindings gives.
        for aor in ("u0@example.com", "u1@example.com", "u2@example.com"):
            assert [b for b in got if b.aor == aor] == store.list_bindings(aor)
    assert list(SqliteStore(":memory:").iter_bindings()) == []


def test_remove_one_binding(store: Store) -> None:
    store.upsert_binding(binding("sip:a@h1"))
    store.upsert_binding(binding("sip:a@h2"))
    assert store.remove_binding("alice@example.com", "sip:a@h1")
    assert not store.remove_binding("alice@example.com", "sip:a@h1")
    assert [b.contact for b in store.list_bindings("alice@example.com")] == ["sip:a@h2"]


def test_update_bindings_is_atomic(store: Store) -> None:
    store.upsert_binding(binding("sip:a@h1"))
    store.update_bindings("alice@example.com", upsert=[binding("sip:a@h2")], remove=["sip:a@h1"])
    assert [b.contact for b in store.list_bindings("alice@example.com")] == ["sip:a@h2"]
    with pytest.raises(ValueError, match="aor"):
        store.update_bindings(
            "alice@example.com",
            upsert=[binding("sip:a@h3"), binding("sip:x@h", aor="bob@example.com")],
            remove=["sip:a@h2"],
        )
    assert [b.contact for b in store.list_bindings("alice@example.com")] == ["sip:a@h2"]


def test_transaction_rolls_back_everything_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_binding(binding("sip:a@h1"))
        store.add_domain("example.com")
        raise RuntimeError
    assert store.all_bindings() == []
    assert store.list_domains() == []


def test_failing_call_inside_a_transaction_fails_alone(store: Store) -> None:
    store.add_domain("example.com")
    with store.transaction():
        store.upsert_binding(binding("sip:a@h1"))
        with pytest.raises(DuplicateError):
            store.add_domain("example.com")
        store.upsert_binding(binding("sip:a@h2"))
    assert len(store.all_bindings()) == 2


def test_purge_expired(store: Store) -> None:
    store.upsert_binding(binding("sip:a@h1", expires_at=100.0))
    store.upsert_binding(binding("sip:a@h2", expires_at=200.0))
    store.upsert_binding(binding("sip:b@h1", aor="bob@example.com", expires_at=150.0))
    assert store.purge_expired(99.0) == 0
    assert store.expired_bindings(99.0) == []
    assert sorted(store.expired_bindings(150.0)) == [
        ("alice@example.com", "sip:a@h1"),
        ("bob@example.com", "sip:b@h1"),
    ]
    assert store.purge_expired(150.0) == 2
    assert store.expired_bindings(150.0) == []
    assert [b.contact for b in store.all_bindings()] == ["sip:a@h2"]


def test_unusual_characters_survive(store: Store) -> None:
    # RFC 4475 §3.1.1.11 'escnull': an AOR whose user part holds NUL once unescaped.
    b = binding("sip:%00@host5.example.com", aor="null-\x00-null@example.com")
    store.upsert_binding(b)
    assert store.list_bindings("null-\x00-null@example.com") == [b]
    store.add_domain("example.com")
    store.add_user("jöhn", "example.com", "pässwörd")
    assert store.lookup_ha1("jöhn", "example.com", "MD5") == ha1(
        "jöhn", "example.com", "pässwörd", "MD5"
    )


def test_remaining_seconds() -> None:
    b = binding(expires_at=1000.0)
    assert b.remaining_s(400.2) == 600
    assert b.remaining_s(2000.0) == 0
