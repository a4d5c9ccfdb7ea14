"""The audited write API: every mutation of the catalog goes through :func:`audited`.

    with audited(catalog, actor="alice") as tx:
        tx.session.add(model_version)
        tx.session.flush()
        tx.record("model_version.register", f"model:{name}@{version}", {"artifact_hash": ...})

The change and its audit events commit in one transaction: both land or neither does.  A transaction
that changed rows but recorded no event is refused at commit, so no write can skip the trail.

Appends serialise per chain: the write session starts with ``BEGIN IMMEDIATE`` on SQLite, and on
PostgreSQL the transaction takes ``pg_advisory_xact_lock`` before anything else (released at commit
or rollback); ``seq`` is the primary key, so even a writer that bypassed the lock could not fork
the chain, it would fail on the duplicate ``seq``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's own locking only
    fcntl = None  # type: ignore[assignment]

from governance.audit._chain import AuditLink, ChainHead, chain_head, insert_events, lock_chain, new_event
from governance.audit._state import collect_state, forget_touch_log, install_touch_log
from governance.catalog import AuditEvent, Catalog, CatalogSession, RawConnection, lock_wait_ms, utcnow
from governance.errors import CatalogError, GovernanceError

__all__ = ["AuditedTransaction", "PendingEvent", "audited"]


@dataclass(slots=True)
class PendingEvent:
    """An event recorded in an open transaction: its seq is fixed, its link is written at commit
    (then ``link`` is the :class:`AuditLink` as written, and its fields read through this object)."""

    seq: int
    actor: str
    action: str
    subject: str
    data: dict[str, Any]
    link: AuditLink | None = None

    def __getattr__(self, name: str) -> Any:
        if name in AuditLink.__slots__:
            link = object.__getattribute__(self, "link")
            if link is None:
                raise AttributeError(f"audit event seq {self.seq} is written when its transaction ends")
            return getattr(link, name)
        raise AttributeError(name)


class AuditedTransaction:
    """A write session plus :meth:`record`; use through :func:`audited`.

    Events are numbered when recorded and written when the transaction ends, after its last write: the
    last event then carries the transaction's state map (the digest of every state row it wrote, see
    :mod:`governance.audit._state`), so the log binds exactly what was committed with it.
    """

    def __init__(self, session: Session, actor: str) -> None:
        self.session = session
        self.actor = actor
        self.events: list[PendingEvent] = []
        self.links: list[AuditLink] = []
        self._head: ChainHead | None = None
        self._time: datetime | None = None
        self._raw: RawConnection | None = None
        self.mutated = False
        self._locked = False
        #: rows this transaction binds without writing them (``gov audit adopt``): ``{table: {id: digest}}``
        self.extra_state: dict[str, dict[str, str]] = {}

    @property
    def raw(self) -> RawConnection:
        """The transaction's driver connection, for precompiled statements (see :mod:`governance.catalog`)."""
        if self._raw is None:
            self._raw = RawConnection(self.session)
        return self._raw

    @property
    def time(self) -> datetime:
        """One timestamp for the whole transaction (events and rows agree)."""
        if self._time is None:
            self._time = utcnow()
        return self._time

    def record(self, action: str, subject: str, data: dict[str, Any] | None = None, *,
               actor: str | None = None) -> PendingEvent:
        """Record an audit event in this transaction (its seq is known at once; written at commit)."""
        if self._head is None:
            if not self._locked:
                self._head = lock_chain(self.session)
                self._locked = True
            if self._head is None:
                self._head = chain_head(self.raw)
        seq = self._head.seq + len(self.events) + 1
        entry = PendingEvent(seq, actor or self.actor, action, subject, data or {})
        self.events.append(entry)
        return entry

    def finish(self) -> list[AuditLink]:
        """Write the recorded events, the last one with the state map of every row written (once)."""
        self.session.flush()
        state = collect_state(self.session)
        for table, rows in self.extra_state.items():
            state.setdefault(table, {}).update(rows)
        if (state or self.mutated) and not self.events:
            raise GovernanceError("internal: a catalog write was not recorded in the audit trail")
        if not self.events:
            return []
        head = self._head or chain_head(self.raw)
        links = []
        last = len(self.events) - 1
        for index, pending in enumerate(self.events):
            link = new_event(head, actor=pending.actor, action=pending.action, subject=pending.subject,
                             data=pending.data, time=self.time, state=state if index == last else None)
            links.append(link)
            pending.link = link
            head = ChainHead(link.seq, link.hash)
        insert_events(self.raw, links)
        self.links = links
        self.events = []
        self._head = head
        return links


_TX_KEY = "governance.audited"


class _FlushGuard:
    """One ``before_flush`` listener on :class:`~governance.catalog.CatalogSession` (the class of the
    catalog's own sessions, never a host application's), registered on first use, that
    marks the :class:`AuditedTransaction` stored in ``session.info`` as mutated when the flush writes
    anything but audit events (per-transaction ``event.listen``/``remove`` costs more than the write it
    guards).  Sessions without an audited transaction return at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        with self._lock:
            if not self._installed:
                event.listen(CatalogSession, "before_flush", _before_flush)
                self._installed = True


def _before_flush(sess: OrmSession, _ctx: Any, _instances: Any) -> None:
    tx = sess.info.get(_TX_KEY)
    if tx is None or tx.mutated:
        return
    if any(not isinstance(obj, AuditEvent) for obj in (*sess.new, *sess.dirty, *sess.deleted)):
        tx.mutated = True


_GUARD = _FlushGuard()

_HELD: ContextVar[frozenset[str]] = ContextVar("governance_audit_file_locks", default=frozenset())


@contextmanager
def _append_queue(catalog: Catalog) -> Iterator[None]:
    """On a SQLite file, queue writers on an OS file lock (``<db>.audit-lock``) before
    ``BEGIN IMMEDIATE``.  SQLite's busy handler polls with sleeps of up to 100 ms, so 8 contending
    processes spend most of their time asleep with the database free; a blocking ``flock`` hands
    the turn over at once.  Correctness never depends on it (``BEGIN IMMEDIATE`` still serialises);
    it is skipped where ``fcntl`` is missing and for a nested transaction in the same context.

    The wait is bounded (:func:`_take_turn`): a holder that hangs (stopped, or slow) makes this
    writer fail with :class:`CatalogError` after the catalog's busy timeout, or sooner inside
    :func:`governance.catalog.bounded_lock_wait` (capture's bound), never wait forever; the turn
    still passes at once when the holder lets go (a blocking ``flock``, on a helper thread).
    """
    database = catalog.sqlite_path
    if fcntl is None or database is None:
        yield
        return
    path = f"{database}.audit-lock"
    held = _HELD.get()
    if path in held:
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)  # minus the umask
    except OSError:  # a read-only directory: fall back to SQLite's own locking
        yield
        return
    token = _HELD.set(held | {path})
    owned = True
    try:
        if not _take_turn(fd, catalog):
            owned = False  # the thread still waiting for the turn closes it
            raise CatalogError(f"catalog {catalog.display_url}: another writer has held its lock ({path}) for "
                               f"longer than this write may wait")
        yield
    finally:
        _HELD.reset(token)
        if owned:
            os.close(fd)  # releases the lock


def _take_turn(fd: int, catalog: Catalog) -> bool:
    """``flock`` the queue: at once when free; else a blocking ``flock`` through the catalog's
    :class:`~governance.catalog.FlockWaiter`, so the turn is handed over the moment the holder lets go,
    for at most the bound.  False when the bound ran out (``fd`` then belongs to the waiter)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    bounded = lock_wait_ms()
    wait = catalog.busy_timeout if bounded is None else min(bounded / 1000, catalog.busy_timeout)
    return catalog.flock_waiter.acquire(fd, wait)


@contextmanager
def audited(catalog: Catalog, actor: str) -> Iterator[AuditedTransaction]:
    """Open a write transaction whose changes must be recorded with :meth:`AuditedTransaction.record`."""
    installed: dict[str, Any] | None = None
    try:
        with _append_queue(catalog), catalog.write() as session:
            installed = install_touch_log(session)
            with _audited_session(session, actor) as tx:
                yield tx
    except BaseException:
        if installed is not None:  # the TEMP triggers were created in the rolled-back transaction
            forget_touch_log(installed)
        raise


@contextmanager
def _audited_session(session: Session, actor: str) -> Iterator[AuditedTransaction]:
    # Take the chain lock first, before any row lock the body may take: every audited transaction
    # acquires locks in the same order, so two writers cannot deadlock on PostgreSQL.
    # On PostgreSQL the head comes back with the lock, in the same round trip.
    head = lock_chain(session)
    tx = AuditedTransaction(session, actor)
    tx._head, tx._locked = head, True
    _GUARD.install()
    session.info[_TX_KEY] = tx
    try:
        yield tx
        tx.finish()
    finally:
        session.info.pop(_TX_KEY, None)
