"""Precompiled Core statements run on a session's own DBAPI connection.

A decorated step writes a run, its audit events and its OpenLineage outbox rows in one transaction
of about twenty statements.  Through the ORM each costs 100-300 us of SQLAlchemy bookkeeping (about
10 us for the driver itself), which alone would exceed the capture budget.  A :class:`Statement` is
compiled once per dialect by SQLAlchemy and then executed on the raw connection of the caller's
session and transaction, with SQLAlchemy's own bind and result processors per column (JSON,
datetimes), so rows read and written are exactly what the ORM would read and write.  Pending ORM
objects of the session are flushed first.  Rows come back as named tuples.

The lineage writer, the audit chain and the OpenLineage event builder share this one module.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import Session

__all__ = ["RawConnection", "Statement", "insert_statement", "update_statement"]


class _Compiled:
    """One statement compiled for one dialect, with its parameter order and column processors."""

    def __init__(self, stmt: sa.ClauseElement, dialect: Dialect, bind_types: Mapping[str, Any]) -> None:
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect))
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ()) if self.positional else ()
        # literal values the statement carries itself (LIMIT 1, CASE ... THEN 1): bound like any other
        self.defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        self.binds: dict[str, Callable[[Any], Any]] = {}
        for name, type_ in bind_types.items():
            processor = type_.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.binds[name] = processor
        self.results: list[tuple[int, Callable[[Any], Any]]] = []
        returning = getattr(stmt, "_returning", ()) or ()
        columns = list(stmt.selected_columns) if isinstance(stmt, sa.Select) else list(returning)
        self.row: Any = namedtuple("Row", [c.key for c in columns], rename=True) if columns else tuple  # type: ignore[misc]
        for index, column in enumerate(columns):
            processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if processor is not None:
                self.results.append((index, processor))

    def params(self, params: Mapping[str, Any]) -> Any:
        binds = self.binds
        if self.defaults:
            params = {**self.defaults, **params}
        if self.positional:
            return tuple(binds[name](params[name]) if name in binds else params[name] for name in self.names)
        return {k: (binds[k](v) if k in binds else v) for k, v in params.items()}

    def rows(self, raw: list[Any], *, plain: bool = False) -> list[Any]:
        make = tuple if plain or self.row is tuple else self.row._make
        if not self.results:
            return [make(r) for r in raw]
        out = []
        for row in raw:
            values = list(row)
            for index, processor in self.results:
                values[index] = processor(values[index])
            out.append(make(values))
        return out


class RawConnection:
    """The DBAPI connection of a session's transaction (looked up once), for :class:`Statement`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect: Dialect = session.get_bind().dialect
        self.key = f"{self.dialect.name}+{self.dialect.driver}"
        self.dbapi = session.connection().connection
        self.errors: type[Exception] = self.dialect.loaded_dbapi.Error

    def wrap(self, statement: str, exc: Exception) -> sa.exc.StatementError:
        """A driver error as SQLAlchemy's (``IntegrityError``, ``OperationalError``...), as
        ``Connection.execute`` would raise it, whichever path wrote."""
        return sa.exc.DBAPIError.instance(statement, None, exc, self.errors, dialect=self.dialect)

    def cursor(self) -> Any:
        session = self.session
        if session.new or session.dirty or session.deleted:  # pending ORM rows must be visible
            session.flush()
        return self.dbapi.cursor()


class Statement:
    """A statement and its per-dialect compilations (a cache behind a small object)."""

    def __init__(self, stmt: sa.ClauseElement, bind_types: Mapping[str, Any] | None = None) -> None:
        self.stmt = stmt
        self.bind_types = dict(bind_types or {})
        self._lock = threading.Lock()
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, conn: RawConnection) -> _Compiled:
        found = self._by_dialect.get(conn.key)
        if found is None:
            with self._lock:
                found = self._by_dialect.get(conn.key)
                if found is None:
                    found = self._by_dialect[conn.key] = _Compiled(self.stmt, conn.dialect, self.bind_types)
        return found

    def all(self, conn: RawConnection, *, plain: bool = False, **params: Any) -> list[Any]:
        """Rows of a SELECT (or of an INSERT ... RETURNING) as named tuples (``plain``: tuples, for
        scans of many rows)."""
        compiled = self._compiled(conn)
        cursor = conn.cursor()
        try:
            cursor.execute(compiled.sql, compiled.params(params))
            raw = cursor.fetchall()
        except conn.errors as exc:
            raise conn.wrap(compiled.sql, exc) from exc
        finally:
            cursor.close()
        return compiled.rows(raw, plain=plain)

    def first(self, conn: RawConnection, **params: Any) -> Any:
        rows = self.all(conn, **params)
        return rows[0] if rows else None

    def execute(self, conn: RawConnection, **params: Any) -> None:
        compiled = self._compiled(conn)
        cursor = conn.cursor()
        try:
            cursor.execute(compiled.sql, compiled.params(params))
        except conn.errors as exc:
            raise conn.wrap(compiled.sql, exc) from exc
        finally:
            cursor.close()

    def executemany(self, conn: RawConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        compiled = self._compiled(conn)
        cursor = conn.cursor()
        try:
            cursor.executemany(compiled.sql, [compiled.params(r) for r in rows])
        except conn.errors as exc:
            raise conn.wrap(compiled.sql, exc) from exc
        finally:
            cursor.close()


def insert_statement(table: sa.Table, columns: Sequence[str], *, returning_id: bool = False) -> Statement:
    """``INSERT INTO table (columns) VALUES (...)`` [``RETURNING id``] with each column's bind type."""
    stmt: Any = sa.insert(table).values({name: sa.bindparam(name) for name in columns})
    if returning_id:
        stmt = stmt.returning(table.c.id)
    return Statement(stmt, {name: table.c[name].type for name in columns})


def update_statement(table: sa.Table, columns: Sequence[str]) -> Statement:
    """``UPDATE table SET columns WHERE id = :row_id``."""
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("row_id"))
        .values({name: sa.bindparam(name) for name in columns})
    )
    return Statement(stmt, {name: table.c[name].type for name in columns})
