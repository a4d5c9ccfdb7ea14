"""Engine, sessions and schema upgrades for the catalog (SQLite or PostgreSQL).

SQLite runs in WAL mode with a busy timeout and ``synchronous=NORMAL``; checkpoints run on a
background thread (:mod:`governance.catalog._wal`).  pysqlite's own implicit
transaction handling is switched off so that SQLAlchemy's ``BEGIN`` is the real one, and write
transactions start with ``BEGIN IMMEDIATE``: a read-then-write under plain ``BEGIN`` fails with
"database is locked" under concurrency even with a timeout.

Schema changes go through alembic.  :meth:`Catalog.ensure_schema` upgrades to head under a lock
(``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL), so several
processes opening a new catalog at once cannot race.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DatabaseError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from governance.catalog._locks import FlockWaiter, LocalLocks, try_lock
from governance.catalog._wal import BACKSTOP_PAGES, WalCheckpointer
from governance.config import Settings, load_settings
from governance.errors import CatalogError

__all__ = [
    "Catalog",
    "CatalogSession",
    "active_catalog",
    "bounded_lock_wait",
    "clear_catalog_cache",
    "lock_wait_ms",
    "open_catalog",
    "use_catalog",
]

_MIGRATE_LOCK_KEY = 0x676F76_6D6967  # "gov" "mig": advisory lock id for schema upgrades
_IMMEDIATE = "governance_immediate"
_BUSY_MS = "governance_busy_ms"
_DEADLINE: ContextVar[float | None] = ContextVar("governance_lock_deadline", default=None)


@contextmanager
def bounded_lock_wait(seconds: float) -> Iterator[None]:
    """Bound, in all, how long the catalog writes in this block (this thread or task) may wait for
    locks: the audit queue's file lock, SQLite's ``BEGIN IMMEDIATE`` and PostgreSQL's advisory lock.
    Past it the write fails with :class:`~governance.errors.CatalogError` (or the driver's lock
    timeout), which capture turns into a spooled run.  Nested blocks keep the earlier deadline."""
    deadline = time.monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def lock_wait_ms() -> int | None:
    """Milliseconds left to wait for a lock under :func:`bounded_lock_wait` (at least 1), else None."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    return max(1, int((deadline - time.monotonic()) * 1000))


SCHEMA_HEAD = "0006"
"""The newest migration's revision.  Comparing a catalog with this constant keeps alembic (and its
migration scripts) out of every command that finds the schema current; a test keeps it equal to the
head alembic computes from ``migrations/versions``, so a new migration cannot forget it."""


def _script_head() -> str:
    return SCHEMA_HEAD


@cache
def alembic_head() -> str:
    """The head revision as alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(_migrations_dir())).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise CatalogError("no catalog migrations found in the installed package")
    return head


def _migrations_dir() -> Path:
    return Path(__file__).with_name("migrations")


def _install_sqlite_hooks(engine: Engine, busy_timeout: float, *, read_only: bool = False) -> None:
    default_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN be the real one
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {default_ms:d}")
        record.info[_BUSY_MS] = default_ms
        cursor.execute("PRAGMA foreign_keys = ON")
        # statement journals and temporary tables in memory: every audited INSERT fires the TEMP touch
        # trigger and so keeps a statement journal, which SQLite moves to a file under /var/tmp once one
        # statement of a transaction journals 64 KiB (two pwrite calls per page from then on: about a
        # fifth of a 100k-event import's CPU was in the kernel).  Set here because changing it later
        # drops the connection's TEMP triggers.
        cursor.execute("PRAGMA temp_store = MEMORY")
        if engine.url.database not in (None, "", ":memory:") and not read_only:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            # checkpoints run in the background (see _wal); a connection checkpoints by itself only
            # when the log has grown past this many pages
            cursor.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES:d}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        if immediate:
            bounded = lock_wait_ms()
            want = default_ms if bounded is None else min(bounded, default_ms)
            info = conn.connection.info
            if info.get(_BUSY_MS) != want:
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {want:d}")
                info[_BUSY_MS] = want
        # on the driver connection: this runs for every transaction, and SQLAlchemy's statement
        # machinery costs several times the BEGIN itself (a failure still surfaces as SQLAlchemy's)
        statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        driver = conn.connection.driver_connection
        try:
            driver.execute(statement)  # type: ignore[union-attr]
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(statement, None, exc, conn.dialect.loaded_dbapi.Error,
                                      dialect=conn.dialect) from exc


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only used to build an error message
        return "<unparseable URL>"


class CatalogSession(Session):
    """The class of every session the project opens (:meth:`Catalog.read`, :meth:`Catalog.write`).

    The audit guard listens on this class only, so a host application's own SQLAlchemy sessions, on
    its own engines, never run governance code."""


class Catalog:
    """A catalog database: an engine plus read and write sessions.

    Use :func:`open_catalog` to get the shared instance for the configured URL; construct directly in
    tests.  ``write()`` sessions are the only way to mutate; higher layers wrap them with the audited
    write API (:mod:`governance.audit`).
    """

    def __init__(self, url: str, *, busy_timeout: float = 10.0, upgrade: bool = True,
                 read_only: bool = False) -> None:
        self.url = url
        #: opened for reading only (``gov audit verify``): nothing is created, upgraded or written
        self.read_only = read_only
        #: seconds a write waits for another writer's lock (SQLite busy timeout, audit queue)
        self.busy_timeout = busy_timeout
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        #: the SQLite database file, absolute (None for PostgreSQL and in-memory SQLite)
        self.sqlite_path: Path | None = None
        kwargs: dict[str, Any] = {}
        if self.backend == "sqlite":
            database = parsed.database
            if database not in (None, "", ":memory:") and not str(database).startswith("file:"):
                self.sqlite_path = Path(database).resolve()
            if database in (None, "", ":memory:"):
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
            elif read_only and self.sqlite_path is not None:
                kwargs.update(creator=_read_only_connector(self.sqlite_path, busy_timeout))
            else:
                try:
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise CatalogError(
                        f"catalog {_safe_url(url)}: cannot create directory {Path(database).parent}: "
                        f"{exc.strerror}"
                    ) from exc
                kwargs.update(connect_args={"check_same_thread": False, "timeout": busy_timeout})
        elif self.backend == "postgresql":
            kwargs.update(pool_pre_ping=True, connect_args={"connect_timeout": max(1, int(busy_timeout))})
        self.engine: Engine = sa.create_engine(url, **kwargs)
        if self.backend == "sqlite":
            _install_sqlite_hooks(self.engine, busy_timeout, read_only=read_only)
        self._write_engine = self.engine.execution_options(**{_IMMEDIATE: True})
        self.local_locks = LocalLocks()
        #: bounded blocking waits on this catalog's lock files (see :class:`FlockWaiter`)
        self.flock_waiter = FlockWaiter()
        self._wal: WalCheckpointer | None = None
        if self.sqlite_path is not None and not read_only:
            # mode=rw: a checkpoint must never create a database where the catalog's file has gone
            uri, timeout = f"{self.sqlite_path.as_uri()}?mode=rw", busy_timeout
            self._wal = WalCheckpointer(
                lambda: sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
            )
        self._schema_checked = False
        self._schema_lock = threading.Lock()
        if upgrade:
            self.ensure_schema()

    def __repr__(self) -> str:
        return f"Catalog({_safe_url(self.url)!r})"

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return _safe_url(self.url)

    # ------------------------------------------------------------------------------------ sessions
    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (a deferred transaction on SQLite)."""
        with self._errors(), CatalogSession(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write session: ``BEGIN IMMEDIATE`` on SQLite; commits on success, rolls back on error."""
        if self.read_only:
            raise CatalogError(f"catalog {self.display_url} is open read-only")
        with self._errors(), CatalogSession(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session
        if self._wal is not None:
            self._wal.committed()

    @contextmanager
    def write_connection(self, prepare: Callable[[Connection], object] | None = None,
                         turn: AbstractContextManager[object] | None = None) -> Iterator[Connection]:
        """A write transaction on a Core connection (``BEGIN IMMEDIATE`` on SQLite): committed when the
        block ends, rolled back on error.  The audited write path runs on it; an ORM session is bound
        to it only when a writer asks for one (an ORM session's own bookkeeping costs more than a
        decorated step's whole write).

        ``prepare(conn)`` runs on the checked-out connection before anything is locked, and ``turn``
        (the audit queue) is held from just before ``BEGIN`` until just after ``COMMIT``: the pool's
        checkout and check-in happen outside it, so the serialised part of a write is the
        transaction alone."""
        if self.read_only:
            raise CatalogError(f"catalog {self.display_url} is open read-only")
        with self._errors(), self._write_engine.connect() as conn:
            if prepare is not None:
                prepare(conn)
            with turn if turn is not None else nullcontext(), conn.begin():
                yield conn
        if self._wal is not None:
            self._wal.committed()

    def try_lock(self, name: str) -> AbstractContextManager[bool]:
        """A named lock across processes, taken only if free: ``with catalog.try_lock("ship") as
        taken: ...`` (see :mod:`governance.catalog._locks`)."""
        return try_lock(self, name)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Failures of the database itself (unreachable, locked, corrupted: SQLite's "database disk image
        is malformed") as one :class:`CatalogError` line; constraint and programming errors pass as they are."""
        try:
            yield
        except (OperationalError, DatabaseError) as exc:
            # OperationalError, or the driver's bare DatabaseError (a corrupted file); a constraint,
            # data or programming error is not the database's fault and passes as it is
            if not isinstance(exc, OperationalError) and type(exc) is not DatabaseError:
                raise
            raise CatalogError(f"catalog {self.display_url}: {_first_line(exc.orig)}") from exc

    # ------------------------------------------------------------------------------------- schema
    def current_revision(self) -> str | None:
        """The alembic revision the database is at, or None for an empty database."""
        try:
            with self._errors(), self.engine.connect() as conn:
                return _revision(conn)
        except DBAPIError as exc:  # e.g. SQLite's "file is not a database"
            raise CatalogError(f"catalog {self.display_url}: {_first_line(exc.orig)}") from exc

    def ensure_schema(self) -> None:
        """Upgrade the schema to head if needed, under a cross-process lock."""
        if self._schema_checked:
            return
        with self._schema_lock:
            if self._schema_checked:
                return
            try:
                current = self.current_revision()
                if current != _script_head() and self.read_only:
                    raise CatalogError(f"catalog {self.display_url} is at schema {current or 'empty'}, not "
                                       f"{_script_head()}; it cannot be upgraded while open read-only (run gov db "
                                       "upgrade where it is writable)")
                if current != _script_head():
                    self.upgrade()
            except CatalogError:
                raise
            except DBAPIError as exc:
                raise CatalogError(f"catalog {self.display_url}: {_first_line(exc.orig)}") from exc
            self._schema_checked = True

    def upgrade(self, revision: str = "head") -> None:
        """Run alembic migrations up to ``revision`` while holding the migration lock."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_migrations_dir()))
        try:
            with self._write_engine.connect() as conn, conn.begin():
                if self.backend == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK_KEY})
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
        except OperationalError as exc:
            raise CatalogError(f"catalog {self.display_url}: {_first_line(exc.orig)}") from exc

    def dispose(self) -> None:
        """Stop the background checkpoints and close pooled connections."""
        if self._wal is not None:
            self._wal.close()
        self.engine.dispose()


def _read_only_connector(path: Path, busy_timeout: float) -> Any:
    """Connections that never write: ``mode=ro``; on read-only media (no ``-shm`` can be made next to a
    WAL database) ``immutable=1``, which is only sound when no write-ahead log holds newer pages."""
    if not path.is_file():
        raise CatalogError(f"catalog {path}: no such file; nothing to read (is --catalog / GOVERNANCE_CATALOG_URL "
                           "the right catalog?)")
    wal = path.with_name(path.name + "-wal")
    writable_dir = os.access(path.parent, os.W_OK)
    if not writable_dir and wal.is_file() and wal.stat().st_size > 0:
        raise CatalogError(f"catalog {path}: read-only media with an uncheckpointed write-ahead log ({wal.name}); "
                           "copy the files somewhere writable to read it")
    flags = "mode=ro" if writable_dir else "mode=ro&immutable=1"
    uri = f"{path.as_uri()}?{flags}"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False)

    return connect


def _revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else "unknown database error"
    return text.splitlines()[0] if text else type(exc).__name__


class _CatalogCache:
    """Per-process cache of open catalogs keyed by URL (an engine pool per database)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, float, bool], Catalog] = {}

    def get(self, url: str, busy_timeout: float, read_only: bool = False) -> Catalog:
        key = (url, busy_timeout, read_only)
        with self._lock:
            catalog = self._items.get(key)
            if catalog is None:
                catalog = Catalog(url, busy_timeout=busy_timeout, read_only=read_only)
                self._items[key] = catalog
            return catalog

    def clear(self) -> None:
        with self._lock:
            for catalog in self._items.values():
                catalog.dispose()
            self._items.clear()


_CACHE = _CatalogCache()
_ACTIVE: ContextVar[Catalog | None] = ContextVar("governance_active_catalog", default=None)


@contextmanager
def use_catalog(catalog: Catalog) -> Iterator[Catalog]:
    """Make ``catalog`` the one :func:`open_catalog` returns, and the one capture records to, in this
    context (thread or asyncio task) until the block ends; explicit ``url=`` arguments still win.

    This is the one answer to "which catalog?" (:func:`active_catalog`).  A thread started inside the
    block begins with an empty context, as :mod:`contextvars` threads do: enter the block in the thread
    too, or run the thread's target in :func:`contextvars.copy_context`."""
    token = _ACTIVE.set(catalog)
    try:
        yield catalog
    finally:
        _ACTIVE.reset(token)


def active_catalog() -> Catalog | None:
    """The catalog of the innermost :func:`use_catalog` block of this context (None: the configured one)."""
    return _ACTIVE.get()


def open_catalog(settings: Settings | None = None, *, url: str | None = None, read_only: bool = False) -> Catalog:
    """The catalog for ``url``, else the one made active by :func:`use_catalog`, else the configured
    one (``settings`` or :func:`~governance.config.load_settings`), created and upgraded on first use.
    ``read_only``: open an existing catalog without creating, upgrading or writing anything."""
    if url is None:
        active = _ACTIVE.get()
        if active is not None:
            return active
        resolved = settings if settings is not None else load_settings()
        url, timeout = resolved.catalog_url, resolved.busy_timeout
    else:
        timeout = settings.busy_timeout if settings is not None else 10.0
    return _CACHE.get(url, timeout, read_only)


def clear_catalog_cache() -> None:
    """Dispose every cached catalog (tests, and processes that fork)."""
    _CACHE.clear()
