"""The asyncio front: work off the loop, group commit, the binding cache."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from sipline.storage import AsyncStore, Binding, DuplicateError, SqliteStore, StoreError


def b(contact: str, aor: str = "alice@example.com", expires_at: float = 100.0) -> Binding:
    return Binding(aor, contact, expires_at, "c", 1)


async def test_calls_run_on_one_worker_thread(tmp_path: Path) -> None:
    async with await AsyncStore.open(tmp_path / "t.db") as store:
        names = {await store.call(lambda: threading.current_thread().name) for _ in range(3)}
        assert names == {"sipline-store"}
        await store.write(store.store.add_domain, "example.com")
        assert await store.has_domain("example.com")
        assert await store.list_domains() == ["example.com"]


async def occupy(store: AsyncStore, gate: threading.Event) -> asyncio.Future[None]:
    """Hold the store's thread until `gate` is set; returns once it is held."""
    held = threading.Event()

    def hold() -> None:
        held.set()
        gate.wait()

    blocker = asyncio.ensure_future(store.call(hold))
    assert await asyncio.to_thread(held.wait, 5)
    return blocker


async def test_burst_of_writes_is_committed_in_few_transactions(tmp_path: Path) -> None:
    async with await AsyncStore.open(tmp_path / "t.db") as store:
        gate = threading.Event()
        blocker = await occupy(store, gate)
        writes = [
            asyncio.ensure_future(
                store.update_bindings("alice@example.com", upsert=[b(f"sip:{i}@h")])
            )
            for i in range(100)
        ]
        for _ in range(10):  # every write reaches the queue
            await asyncio.sleep(0)
        assert not any(w.done() for w in writes)  # nothing acknowledged before the commit
        gate.set()
        await asyncio.gather(blocker, *writes)
        assert store.commits <= 2
        assert len(store.bindings("alice@example.com")) == 100
        assert len(await store.call(store.store.list_bindings, "alice@example.com")) == 100


async def test_one_failing_write_does_not_undo_its_batch(tmp_path: Path) -> None:
    async with await AsyncStore.open(tmp_path / "t.db") as store:
        await store.write(store.store.add_domain, "example.com")
        gate = threading.Event()
        blocker = asyncio.ensure_future(store.call(gate.wait))
        await asyncio.sleep(0)
        ok1 = asyncio.ensure_future(
            store.update_bindings("alice@example.com", upsert=[b("sip:1@h")])
        )
        bad = asyncio.ensure_future(store.write(store.store.add_domain, "example.com"))
        ok2 = asyncio.ensure_future(
            store.update_bindings("alice@example.com", upsert=[b("sip:2@h")])
        )
        gate.set()
        await asyncio.gather(blocker, ok1, ok2)
        with pytest.raises(DuplicateError):
            await bad
        assert [x.contact for x in store.bindings("alice@example.com")] == ["sip:1@h", "sip:2@h"]


async def test_cache_is_loaded_at_start_and_follows_writes(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    sync = SqliteStore(path)
    sync.upsert_binding(b("sip:old@h", expires_at=50.0))
    sync.close()
    async with await AsyncStore.open(path) as store:
        assert [x.contact for x in store.bindings("alice@example.com")] == ["sip:old@h"]
        await store.update_bindings(
            "alice@example.com", upsert=[b("sip:new@h", expires_at=500.0)], remove=["sip:old@h"]
        )
        await store.update_bindings("bob@example.com", upsert=[b("sip:bob@h", "bob@example.com")])
        assert [x.contact for x in store.bindings("alice@example.com")] == ["sip:new@h"]
        assert store.bindings("alice@example.com", now=600.0) == []
        assert await store.purge_expired(200.0) == 1
        assert store.bindings("bob@example.com") == []
        assert len(store.all_cached_bindings()) == 1
        assert await store.remove_bindings("alice@example.com") == 1
        assert store.all_cached_bindings() == []


async def test_open_failure_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open database"):
        await AsyncStore.open(tmp_path / "missing" / "t.db")


async def test_not_started_is_an_error() -> None:
    store = AsyncStore(lambda: SqliteStore(":memory:"))
    with pytest.raises(StoreError, match="not started"):
        await store.has_domain("x")
    await store.close()  # harmless


async def test_accounts_through_the_front(tmp_path: Path) -> None:
    async with await AsyncStore.open(tmp_path / "t.db") as store:
        await store.write(store.store.add_domain, "example.com")
        await store.write(store.store.add_user, "alice", "example.com", "pw")
        user = await store.get_user("alice", "example.com")
        assert user is not None
        assert await store.lookup_ha1("alice", "example.com", "MD5") == user.ha1["MD5"]


async def test_contact_index_follows_every_change(tmp_path: Path) -> None:
    """The proxy finds in-dialog targets by Contact in memory; the index must track
    upserts, removals, purges and restarts."""
    contact = "sip:a@192.0.2.1"
    async with await AsyncStore.open(tmp_path / "t.db") as store:
        assert store.binding_for_contact(contact, now=0) is None
        await store.update_bindings("alice@example.com", upsert=[b(contact, expires_at=50)])
        await store.update_bindings("bob@example.com", upsert=[b(contact, "bob@example.com")])
        found = store.binding_for_contact(contact, now=10)
        assert found is not None and found.contact == contact
        assert store.binding_for_contact(contact, now=60) == b(contact, "bob@example.com")
        await store.update_bindings("bob@example.com", remove=[contact])
        assert store.binding_for_contact(contact, now=60) is None
        await store.purge_expired(60)
        assert store.binding_for_contact(contact, now=10) is None
        await store.update_bindings("carol@example.com", upsert=[b(contact, "carol@example.com")])
    async with await AsyncStore.open(tmp_path / "t.db") as store:  # loaded at start
        assert store.binding_for_contact(contact, now=10) == b(contact, "carol@example.com")
        await store.remove_bindings("carol@example.com")
        assert store.binding_for_contact(contact, now=10) is None


async def test_ha1s_are_cached_until_the_credentials_version_moves(tmp_path: Path) -> None:
    """A found HA1 is answered from memory (no store round trip); a change by another
    connection to the file (the CLI) moves the version, and the next poll drops it."""
    path = tmp_path / "t.db"
    async with await AsyncStore.open(path) as store:
        await store.write(store.store.add_domain, "example.com")
        await store.write(store.store.add_user, "alice", "example.com", "old-pw")
        # Our own add_user reloaded the cache at once: nothing left for the poll.
        assert not await store.poll_credentials()
        first = await store.lookup_ha1("alice", "example.com", "MD5")
        assert first is not None
        assert await store.lookup_ha1("nobody", "example.com", "MD5") is None
        gate = threading.Event()
        blocker = await occupy(store, gate)  # the store thread is busy
        try:
            cached = await asyncio.wait_for(store.lookup_ha1("alice", "example.com", "MD5"), 1)
            assert cached == first
            # An unknown user is answered from memory too (every HA1 is loaded): the same
            # cost as a known one, so timing does not tell who exists.
            missing = store.lookup_ha1("nobody", "example.com", "MD5")
            assert await asyncio.wait_for(missing, 1) is None
        finally:
            gate.set()
            await blocker
        assert not await store.poll_credentials()  # nothing changed: kept
        cli = SqliteStore(path)
        try:
            cli.set_password("alice", "example.com", "new-pw")
        finally:
            cli.close()
        assert await store.lookup_ha1("alice", "example.com", "MD5") == first  # until...
        assert await store.poll_credentials()
        changed = await store.lookup_ha1("alice", "example.com", "MD5")
        assert changed is not None and changed != first
        cli = SqliteStore(path)
        try:
            cli.remove_user("alice", "example.com")
        finally:
            cli.close()
        assert await store.poll_credentials()
        assert await store.lookup_ha1("alice", "example.com", "MD5") is None
