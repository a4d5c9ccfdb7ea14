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
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
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


class TransactionScope:
    """The transaction's Core connection, with the few ``Session`` methods the audit layer and
    :class:`~governance.catalog.RawConnection` use (``connection``, ``get_bind``, ``flush``, ``info``,
    pending objects), so an audited write that needs no ORM never builds a session.  Once a writer
    asks for :attr:`AuditedTransaction.session`, pending ORM objects are flushed before raw statements."""

    __slots__ = ("conn", "info", "orm")

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.info: dict[str, Any] = {}
        self.orm: Session | None = None

    def connection(self) -> sa.Connection:
        return self.conn

    def get_bind(self) -> sa.Connection:
        return self.conn

    def in_transaction(self) -> bool:
        return self.conn.in_transaction()

    def execute(self, statement: Any, params: Any = None) -> Any:
        """A Core statement on the transaction (through the ORM session once there is one)."""
        target = self.orm if self.orm is not None else self.conn
        return target.execute(statement) if params is None else target.execute(statement, params)

    @property
    def new(self) -> Any:
        return self.orm.new if self.orm is not None else ()

    @property
    def dirty(self) -> Any:
        return self.orm.dirty if self.orm is not None else ()

    @property
    def deleted(self) -> Any:
        return self.orm.deleted if self.orm is not None else ()

    def flush(self) -> None:
        if self.orm is not None:
            self.orm.flush()


class AuditedTransaction:
    """The audited write's connection (:attr:`raw`, :attr:`scope`), an ORM :attr:`session` on demand,
    and :meth:`record`; use through :func:`audited`.

    Events are numbered when recorded and written when the transaction ends, after its last write: the
    last event then carries the transaction's state map (the digest of every state row it wrote, see
    :mod:`governance.audit._state`), so the log binds exactly what was committed with it.
    """

    def __init__(self, scope: TransactionScope | Session, actor: str) -> None:
        self.scope = scope
        self.actor = actor
        self.events: list[PendingEvent] = []
        self.links: list[AuditLink] = []
        self._head: ChainHead | None = None
        self._time: datetime | None = None
        self._raw: RawConnection | None = None
        self._session: Session | None = scope if isinstance(scope, Session) else None
        self.mutated = False
        self._locked = False
        #: rows this transaction binds without writing them (``gov audit adopt``): ``{table: {id: digest}}``
        self.extra_state: dict[str, dict[str, str]] = {}

    @property
    def session(self) -> Session:
        """An ORM session on this transaction (made on first use; it never commits by itself: the
        transaction commits when the ``audited`` block ends)."""
        if self._session is None:
            scope = self.scope
            if not isinstance(scope, TransactionScope):  # pragma: no cover - set in __init__
                raise GovernanceError("internal: an audited transaction without a connection")
            session = CatalogSession(bind=scope.conn, expire_on_commit=False, join_transaction_mode="rollback_only")
            session.info[_TX_KEY] = self
            scope.orm = session
            self._session = session
            _GUARD.install()
        return self._session

    @property
    def raw(self) -> RawConnection:
        """The transaction's driver connection, for precompiled statements (see :mod:`governance.catalog`)."""
        if self._raw is None:
            self._raw = RawConnection(self.scope)  # type: ignore[arg-type]
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
                self._head = lock_chain(self.scope)  # type: ignore[arg-type]
                self._locked = True
            if self._head is None:
                self._head = chain_head(self.raw)
        seq = self._head.seq + len(self.events) + 1
        entry = PendingEvent(seq, actor or self.actor, action, subject, data or {})
        self.events.append(entry)
        return entry

    def finish(self) -> list[AuditLink]:
        """Write the recorded events, the last one with the state map of every row written (once)."""
        self.scope.flush()
        state = collect_state(self.scope)  # type: ignore[arg-type]
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
    still passes at once when the holder lets go (a blocking ``flock`` under a one-shot alarm in the main
    thread, on a helper thread elsewhere).
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
        turn = _take_turn(fd, catalog)
        if turn != _TAKEN:
            owned = turn == _EXPIRED_OWN  # else the thread still waiting for the turn closes it
            raise CatalogError(f"catalog {catalog.display_url}: another writer has held its lock ({path}) for "
                               f"longer than this write may wait")
        yield
    finally:
        _HELD.reset(token)
        if owned:
            os.close(fd)  # releases the lock


_TAKEN, _EXPIRED_OWN, _EXPIRED_GIVEN = "taken", "expired", "given away"


class _Expired(Exception):
    """Raised by the SIGALRM handler of :func:`_flock_in_main_thread` when the bound runs out."""


def _raise_expired(_signum: int, _frame: Any) -> None:
    raise _Expired


def _flock_in_main_thread(fd: int, wait: float) -> str | None:
    """A blocking ``flock`` bounded by a one-shot ``ITIMER_REAL`` alarm, in the main thread only and only
    while the process uses neither ``SIGALRM`` nor that timer (else None: the caller uses the waiter
    thread).  Waiting in this thread saves two thread hand-overs per turn, which is most of the cost
    of a turn when eight writers queue on two cores."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL or signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0):
        return None
    previous = signal.signal(signal.SIGALRM, _raise_expired)
    try:
        return _alarmed_flock(fd, wait)
    finally:
        # disarmed whatever ended the wait (an interrupt, an error): a SIGALRM after the default
        # disposition is back would end the process; one still pending is dropped by the interpreter
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _alarmed_flock(fd: int, wait: float) -> str:
    try:
        signal.setitimer(signal.ITIMER_REAL, max(wait, 0.001))
        fcntl.flock(fd, fcntl.LOCK_EX)
        signal.setitimer(signal.ITIMER_REAL, 0)
        return _TAKEN
    except _Expired:  # one-shot: no second alarm can follow
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:  # the alarm may have come just after the lock was granted: a flock we hold is granted again
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return _TAKEN
    except BlockingIOError:
        return _EXPIRED_OWN


def _take_turn(fd: int, catalog: Catalog) -> str:
    """``flock`` the queue: at once when free; else a blocking ``flock`` bounded by the catalog's busy
    timeout (or capture's bound), so the turn is handed over the moment the holder lets go: in the main
    thread under a one-shot alarm (:func:`_flock_in_main_thread`), elsewhere through the catalog's
    :class:`~governance.catalog.FlockWaiter` thread.  Says whether the turn was taken, or the bound ran
    out with ``fd`` still this caller's or given to the waiter thread."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return _TAKEN
    except BlockingIOError:
        pass
    bounded = lock_wait_ms()
    wait = catalog.busy_timeout if bounded is None else min(bounded / 1000, catalog.busy_timeout)
    direct = _flock_in_main_thread(fd, wait)
    if direct is not None:
        return direct
    return _TAKEN if catalog.flock_waiter.acquire(fd, wait) else _EXPIRED_GIVEN


@contextmanager
def audited(catalog: Catalog, actor: str) -> Iterator[AuditedTransaction]:
    """Open a write transaction whose changes must be recorded with :meth:`AuditedTransaction.record`."""
    installed: dict[str, Any] | None = None
    tx: AuditedTransaction | None = None

    def prepare(conn: sa.Connection) -> None:
        # before the queue and BEGIN: only this connection's TEMP touch log is written (emptied)
        nonlocal installed
        installed = install_touch_log(TransactionScope(conn))  # type: ignore[arg-type]

    try:
        with catalog.write_connection(prepare, _append_queue(catalog)) as conn:
            scope = TransactionScope(conn)
            # Take the chain lock first, before any row lock the body may take: every audited transaction
            # acquires locks in the same order, so two writers cannot deadlock on PostgreSQL.
            # On PostgreSQL the head comes back with the lock, in the same round trip.
            tx = AuditedTransaction(scope, actor)
            tx._head, tx._locked = lock_chain(scope), True  # type: ignore[arg-type]
            yield tx
            tx.finish()
            _close_session(tx)
    except BaseException:
        if tx is not None:
            _close_session(tx)
        if installed is not None:  # the TEMP triggers were created in the rolled-back transaction
            forget_touch_log(installed)
        raise


def _close_session(tx: AuditedTransaction) -> None:
    session = tx._session
    if session is not None:
        session.info.pop(_TX_KEY, None)
        session.close()
        tx._session = None
