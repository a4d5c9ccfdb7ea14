"""Named cross-process try-locks on a catalog, for background work that one process should do at a time.

* SQLite file: ``flock`` on ``<database>.<name>-lock`` (locks of separate opens exclude each other,
  in one process as across processes; the kernel releases them when a process dies);
* PostgreSQL: a session-level ``pg_try_advisory_lock`` on a connection held for the block (released
  with ``pg_advisory_unlock``, or by the server when the session ends);
* in-memory SQLite (one process by definition): a lock object per catalog and name.

:func:`try_lock` never waits: it yields False when someone else holds the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: in-process exclusion only
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from governance.catalog._engine import Catalog

__all__ = ["FlockWaiter", "LocalLocks", "try_lock"]


class LocalLocks:
    """In-process locks by name, one set per catalog (for in-memory SQLite and platforms without
    ``flock``)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())


class _Turn:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.taken = threading.Event()
        self.guard = threading.Lock()
        self.abandoned = False


class FlockWaiter:
    """Blocking ``flock`` with a bound, for one catalog's lock files.

    A blocking ``flock`` hands the lock over the moment its holder lets go (polling would add a sleep
    to every hand-over), but it cannot time out.  So a waiter asks this object: one daemon thread per
    catalog, started on first need, takes the locks in the order asked and signals each asker, who
    waits at most its bound.  An asker that gave up leaves its descriptor to the thread, which closes
    it (passing the turn on) as soon as it gets the lock, or never, if the holder never lets go: one
    parked thread per catalog, never a hung caller.  One thread instead of one per wait keeps the
    hand-over cheap under contention.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Turn] = queue.SimpleQueue()
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None

    def acquire(self, fd: int, timeout: float) -> bool:
        """Take an exclusive ``flock`` on ``fd`` within ``timeout`` seconds.  False: the time ran out
        and ``fd`` now belongs to the waiter thread (the caller must not close or use it)."""
        turn = _Turn(fd)
        self._ensure_thread()
        self._queue.put(turn)
        if turn.taken.wait(timeout):
            return True
        with turn.guard:
            if turn.taken.is_set():
                return True
            turn.abandoned = True
        return False

    def _ensure_thread(self) -> None:
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="governance-flock-waiter", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            turn = self._queue.get()
            with contextlib.suppress(OSError):  # the descriptor is open until this thread or its asker closes it
                fcntl.flock(turn.fd, fcntl.LOCK_EX)
            with turn.guard:
                if turn.abandoned:
                    os.close(turn.fd)  # the asker gave up: let the turn pass on at once
                else:
                    turn.taken.set()


@contextmanager
def _local(lock: threading.Lock) -> Iterator[bool]:
    taken = lock.acquire(blocking=False)
    try:
        yield taken
    finally:
        if taken:
            lock.release()


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (namespaced, so it cannot meet the audit or migration keys)."""
    digest = hashlib.sha256(f"governance-lock\n{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def try_lock(catalog: Catalog, name: str) -> Iterator[bool]:
    """Hold the catalog's lock ``name`` for the block if it is free; yields whether it was taken."""
    if catalog.backend == "postgresql":
        key = _advisory_key(name)
        with catalog.engine.connect() as conn:
            taken = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        return
    path = catalog.sqlite_path
    fd = -1
    if path is not None and fcntl is not None:
        try:
            fd = os.open(f"{path}.{name}-lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError:  # a read-only directory: in-process exclusion only
            fd = -1
    if fd < 0:
        with _local(catalog.local_locks.get(name)) as taken:
            yield taken
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            taken = True
        except OSError:
            taken = False
        yield taken
    finally:
        os.close(fd)  # releases the lock
