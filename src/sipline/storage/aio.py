"""The store seen from the event loop: one worker thread, group commit, a binding cache.

Every call into the synchronous store runs on one dedicated thread, so the event
loop never blocks on SQLite. Writes queued while the thread was busy are committed
together: the thread takes everything waiting, runs consecutive writes inside one
transaction (each in its own savepoint, so one failing call does not undo its
neighbours) and commits once; only then are their futures resolved. A burst of
REGISTERs therefore costs one commit per batch, and a caller that awaits a write
knows it is durable (see `sqlite.py` for what durable means).

Reads run on the same thread in queue order, so a read issued after a write sees
it. Bindings are also kept in memory (loaded by `start`, updated after each
commit) for the location lookups a proxy makes on every request. When several
processes share the store (`shared`), each one also follows the store's binding
change feed (`poll_binding_changes`, called every few milliseconds by the server):
a binding written by another process, or by the CLI, shows in this cache once the
next poll reloaded its AOR; one written by this process is never reloaded (the feed
names each change's origin, and the store leaves out its own).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sipline.storage.base import Binding, Store, StoreBusyError, StoreError, User
from sipline.storage.cache import BindingCache

__all__ = ["AsyncStore"]

T = TypeVar("T")


@dataclass(slots=True)
class _Job:
    fn: Callable[[], Any]
    write: bool
    future: asyncio.Future[Any]
    # Runs on the event loop once the write committed, before the caller resumes.
    on_commit: Callable[[Any], None] | None = None


_STOP = object()
HA1_CACHE_SIZE = 20_000  # HA1s kept in memory (about 200 bytes each)
# Store methods that change credentials: after one, the HA1 cache is reloaded at once.
_CREDENTIAL_WRITES = frozenset({"add_user", "set_password", "remove_user", "remove_domain"})


class AsyncStore:
    """An asyncio front for a synchronous `Store`.

    `factory` opens the store; it runs on the worker thread, as does every later
    call. Use `await AsyncStore.open(path)` for a SQLite file or a PostgreSQL URL.
    """

    def __init__(
        self,
        factory: Callable[[], Store],
        *,
        max_batch: int = 256,
        max_queue: int | None = None,
        load_bindings: bool = True,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be positive")
        if max_queue is not None and max_queue < 1:
            raise ValueError("max_queue must be positive")
        self._factory = factory
        self._max_batch = max_batch
        # False: no binding cache (for a process that only administers the store).
        self._load_bindings = load_bindings
        # Calls waiting for the worker beyond this are refused with StoreBusyError: under
        # overload the queue (and the memory it holds) stays bounded.
        self.max_queue = max_queue
        self.refused = 0  # calls refused because the queue was full
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Every binding, for the lookups a proxy makes on each request (see cache.py).
        self._cache = BindingCache()
        # (username, realm, algorithm) -> HA1, valid while the store's credentials
        # version is `_ha1_version` (see `lookup_ha1`).
        self._ha1: dict[tuple[str, str, str], str] = {}
        self._ha1_version = -1
        # True while `_ha1` holds every HA1 of the store (loaded whole when there are at
        # most HA1_CACHE_SIZE): then a name not in it is unknown, answered from memory
        # at the same cost as a known one (no store read an attacker could time).
        self._ha1_complete = False
        self.commits = 0  # transactions committed for batches of writes (for tests, metrics)
        # Several processes write the store: follow its change feed, re-read before
        # read-modify-write (see the module docstring).
        self.shared = False
        self._feed_seq = 0
        # AORs reloaded because the feed named them (another process wrote them; never
        # this one, whose writes are in its cache already): for the status line, tests.
        self.feed_reloads = 0
        # Told of the (AOR, contact) pairs this process purged as expired (the
        # operator's log and events, server/ops/service.py).
        self.on_expired: Callable[[list[tuple[str, str]]], None] | None = None

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        max_batch: int = 256,
        max_queue: int | None = None,
        load_bindings: bool = True,
    ) -> AsyncStore:
        """The store at `path`: a SQLite file, or a postgresql:// URL (`location.py`)."""
        from sipline.storage.location import database_location, open_store  # noqa: PLC0415

        location = database_location(path)
        store = cls(
            lambda: open_store(location),
            max_batch=max_batch,
            max_queue=max_queue,
            load_bindings=load_bindings,
        )
        await store.start()
        return store

    @property
    def backlog(self) -> int:
        """Calls queued and not yet taken by the worker thread."""
        return self._queue.qsize()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise StoreError("the store is not started")
        return self._store

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store on the worker thread and load the binding cache (unless
        `load_bindings` is False)."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        opened: asyncio.Future[Store] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(opened,), name="sipline-store", daemon=True
        )
        self._thread.start()
        try:
            self._store = await opened
        except BaseException:
            self._thread.join()
            self._thread = None
            raise
        self._ha1_version = await self.call(self.store.credentials_version)
        if self._load_bindings:
            await self._load_all()
            await self._load_credentials(self._ha1_version)

    async def _load_all(self) -> None:
        # The feed head is read first: a change made meanwhile is seen again (harmless).
        self._feed_seq = await self.call(self.store.binding_feed_head)
        # Built on the store thread from the rows read a page at a time: never a list
        # of every binding, and the event loop is not held up meanwhile.
        self._cache = await self.call(lambda: BindingCache(self.store.iter_bindings()))

    async def close(self) -> None:
        """Finish queued work, close the store and stop the thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(thread.join)
        self._thread = None

    async def __aenter__(self) -> AsyncStore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the worker -----------------------------------------------------------------------

    def _run(self, opened: asyncio.Future[Store]) -> None:
        loop = self._loop
        assert loop is not None  # set by start() before the thread runs
        try:
            store = self._factory()
        except BaseException as e:  # handed to the awaiting start()
            loop.call_soon_threadsafe(_settle, opened, None, e, None)
            return
        loop.call_soon_threadsafe(_settle, opened, store, None, None)
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(item)
                    if item is _STOP:
                        break
                stop = batch[-1] is _STOP
                jobs = [j for j in batch if isinstance(j, _Job)]
                self._process(store, loop, jobs)
                if stop:
                    return
        finally:
            store.close()

    def _process(self, store: Store, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        i = 0
        while i < len(jobs):
            if not jobs[i].write:
                job = jobs[i]
                try:
                    result = job.fn()
                except Exception as e:
                    loop.call_soon_threadsafe(_settle, job.future, None, e, None)
                else:
                    loop.call_soon_threadsafe(_settle, job.future, result, None, None)
                i += 1
                continue
            run = []
            while i < len(jobs) and jobs[i].write:
                run.append(jobs[i])
                i += 1
            self._commit_run(store, loop, run)

    def _commit_run(self, store: Store, loop: asyncio.AbstractEventLoop, run: list[_Job]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            with store.transaction():
                for job in run:
                    try:
                        with store.transaction():  # a savepoint: fails alone
                            outcomes.append((job.fn(), None))
                    except Exception as e:
                        outcomes.append((None, e))
        except (sqlite3.Error, StoreError) as e:
            # The commit itself failed: nothing in this run is durable.
            error = e if isinstance(e, StoreError) else StoreError(f"commit failed: {e}")
            for job in run:
                loop.call_soon_threadsafe(_settle, job.future, None, error, None)
            return
        self.commits += 1
        for job, (result, exc) in zip(run, outcomes, strict=True):
            hook = job.on_commit if exc is None else None
            loop.call_soon_threadsafe(_settle, job.future, result, exc, hook)

    # --- calls ----------------------------------------------------------------------------

    def _submit(
        self, fn: Callable[[], T], *, write: bool, on_commit: Callable[[T], None] | None = None
    ) -> asyncio.Future[T]:
        if self._thread is None or self._loop is None:
            raise StoreError("the store is not started")
        if self.max_queue is not None and self._queue.qsize() >= self.max_queue:
            self.refused += 1
            raise StoreBusyError(f"the store is busy ({self.max_queue} calls queued)")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put(_Job(fn, write, future, on_commit))
        return future

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read on the worker thread."""
        return await self._submit(lambda: fn(*args), write=False)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a write on the worker thread; returns once its batch has committed."""
        result = await self._submit(lambda: fn(*args), write=True)
        if self._ha1_complete and getattr(fn, "__name__", "") in _CREDENTIAL_WRITES:
            await self.poll_credentials()  # our own change shows at once, not at the next poll
        return result

    # accounts

    async def has_domain(self, name: str) -> bool:
        return await self.call(self.store.has_domain, name)

    async def list_domains(self) -> list[str]:
        return await self.call(self.store.list_domains)

    async def get_user(self, username: str, domain: str) -> User | None:
        return await self.call(self.store.get_user, username, domain)

    async def lookup_ha1(self, username: str, realm: str, algorithm: str) -> str | None:
        """From the HA1 cache, else from the store (and then cached). The cache is
        dropped whenever the store's credentials version moves (`poll_credentials`,
        whoever changed an HA1, this process included). While it holds every HA1
        (`_ha1_complete`), an unknown name is answered from memory too: the same cost
        as a known one, so response times do not tell which users exist."""
        key = (username, realm.lower(), algorithm.upper())  # as the store compares them
        found = self._ha1.get(key)
        if found is not None or self._ha1_complete:
            return found
        version = self._ha1_version
        found = await self.call(self.store.lookup_ha1, username, realm, algorithm)
        if found is not None and version == self._ha1_version:
            if len(self._ha1) >= HA1_CACHE_SIZE:
                del self._ha1[next(iter(self._ha1))]  # the oldest entry
            self._ha1[key] = found
        return found

    async def poll_credentials(self) -> bool:
        """Reload (or drop) the HA1 cache if any HA1 changed in the store since the last
        poll (by any process: the CLI, another worker); True when it did."""
        version = await self.call(self.store.credentials_version)
        if version == self._ha1_version:
            return False
        self.forget_credentials(version)
        if self._load_bindings:
            await self._load_credentials(version)
        return True

    async def _load_credentials(self, version: int) -> None:
        """Every HA1 into the cache when they fit (see `_ha1_complete`)."""

        def read() -> dict[tuple[str, str, str], str] | None:
            if self.store.count_users() > HA1_CACHE_SIZE:
                return None
            return {
                (u.username, u.domain, algorithm): ha1
                for u in self.store.list_users()
                for algorithm, ha1 in u.ha1.items()
            }

        loaded = await self.call(read)
        if loaded is not None and version == self._ha1_version:
            self._ha1 = loaded
            self._ha1_complete = True

    def forget_credentials(self, version: int | None = None) -> None:
        self._ha1.clear()
        self._ha1_complete = False
        self._ha1_version = version if version is not None else self._ha1_version + 1

    # bindings

    async def update_bindings(
        self, aor: str, *, upsert: Sequence[Binding] = (), remove: Sequence[str] = ()
    ) -> None:
        """Apply the changes atomically; returns after the commit (then the cache shows them)."""
        upsert, remove = tuple(upsert), tuple(remove)

        def apply(_: None) -> None:
            for contact in remove:
                self._cache.drop(aor, contact)
            for b in upsert:
                self._cache.put(b)

        await self._submit(
            lambda: self.store.update_bindings(aor, upsert=upsert, remove=remove),
            write=True,
            on_commit=apply,
        )

    async def remove_bindings(self, aor: str) -> int:
        def apply(_: int) -> None:
            self._cache.replace(aor, ())

        return await self._submit(
            lambda: self.store.remove_bindings(aor), write=True, on_commit=apply
        )

    async def purge_expired(self, now: float) -> int:
        # The cache drops what the store removed, read in the same transaction: a scan
        # of the whole cache every few seconds held the event loop up for 0.1 s with
        # 100,000 bindings. (A binding another process purged first leaves through the
        # change feed; lookups skip expired bindings meanwhile.)
        def purge() -> list[tuple[str, str]]:
            gone = self.store.expired_bindings(now)
            self.store.purge_expired(now)
            return gone

        def apply(gone: list[tuple[str, str]]) -> None:
            for aor, contact in gone:
                self._cache.drop(aor, contact)
            if self.on_expired is not None and gone:
                self.on_expired(gone)

        gone: list[tuple[str, str]] = await self._submit(purge, write=True, on_commit=apply)
        return len(gone)

    async def reload_bindings(self, aor: str) -> list[Binding]:
        """Read the bindings of `aor` from the store into the cache; returns them."""
        found = await self.call(self.store.list_bindings, aor)
        self._cache.replace(aor, found)
        return found

    async def poll_binding_changes(self) -> int:
        """Reload the AORs whose bindings another process (a worker, the CLI) changed in
        the store since the last poll; returns how many were reloaded. This process's
        own changes are left out by the store (their origin is its own): they are in
        the cache since their commit. One indexed read when nothing changed (SQLite),
        a non-blocking look at the LISTEN socket (PostgreSQL)."""
        after = self._feed_seq

        def read() -> tuple[int, list[str] | None, dict[str, list[Binding]]]:
            head, aors = self.store.binding_changes(after)
            if not aors:
                return head, aors, {}
            return head, aors, {aor: self.store.list_bindings(aor) for aor in aors}

        head, aors, found = await self.call(read)
        if aors is None:
            await self._load_all()
            return len(self._cache)
        self._feed_seq = max(self._feed_seq, head)
        for aor, bindings in found.items():
            self._cache.replace(aor, bindings)
        self.feed_reloads += len(found)
        return len(found)

    def bindings(self, aor: str, *, now: float | None = None) -> list[Binding]:
        """The cached bindings of `aor` (unexpired at `now` when given); no I/O."""
        return self._cache.bindings(aor, now=now)

    def cached_binding_count(self) -> int:
        """Bindings in the cache (expired ones go at the next purge); no I/O."""
        return len(self._cache)

    def all_cached_bindings(self) -> list[Binding]:
        return list(self._cache)

    def binding_for_contact(self, contact: str, *, now: float) -> Binding | None:
        """A cached, unexpired binding whose Contact is `contact` (any AOR); no I/O."""
        return self._cache.for_contact(contact, now=now)


def _settle(
    future: asyncio.Future[Any],
    result: Any,
    exc: BaseException | None,
    on_commit: Callable[[Any], None] | None,
) -> None:
    # The cache hook runs even if the caller gave up waiting: the write did commit.
    if on_commit is not None:
        on_commit(result)
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
