"""Precompiled statements executed on the session's own DBAPI connection.

Building an event runs inside every decorated step, where SQLAlchemy's per-execution overhead
(~90 us a statement, against ~10 us for the driver itself) would dominate the step's budget.  A
:class:`Compiled` statement is compiled once per dialect by SQLAlchemy, then executed on the raw
connection of the same session and transaction, with SQLAlchemy's own bind and result processors
for each column (so SQLite's stored datetimes and JSON text come back exactly as the ORM returns
them).  The session is flushed first, so pending ORM rows of the caller are visible.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import Session

__all__ = ["Compiled", "Statement"]


class Compiled:
    """One statement compiled for one dialect, with its parameter order and column processors."""

    def __init__(self, stmt: sa.ClauseElement, dialect: Dialect, bind_types: Mapping[str, Any]) -> None:
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect))
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ()) if self.positional else ()
        self.binds: dict[str, Callable[[Any], Any]] = {}
        for name, type_ in bind_types.items():
            processor = type_.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.binds[name] = processor
        self.row: Any = None
        self.results: list[tuple[int, Callable[[Any], Any]]] = []
        if isinstance(stmt, sa.Select):
            columns = list(stmt.selected_columns)
            self.row = namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]
            for index, column in enumerate(columns):
                processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
                if processor is not None:
                    self.results.append((index, processor))

    def _params(self, params: Mapping[str, Any]) -> Any:
        values = {k: (self.binds[k](v) if k in self.binds else v) for k, v in params.items()}
        if self.positional:
            return tuple(values[name] for name in self.names)
        return values

    def all(self, session: Session, params: Mapping[str, Any]) -> list[Any]:
        cursor = _cursor(session)
        try:
            cursor.execute(self.sql, self._params(params))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        out = []
        for raw in rows:
            values = list(raw)
            for index, processor in self.results:
                values[index] = processor(values[index])
            out.append(self.row._make(values))
        return out

    def execute(self, session: Session, params: Mapping[str, Any]) -> None:
        cursor = _cursor(session)
        try:
            cursor.execute(self.sql, self._params(params))
        finally:
            cursor.close()

    def executemany(self, session: Session, rows: list[Mapping[str, Any]]) -> None:
        if not rows:
            return
        cursor = _cursor(session)
        try:
            cursor.executemany(self.sql, [self._params(params) for params in rows])
        finally:
            cursor.close()


def _cursor(session: Session) -> Any:
    session.flush()
    return session.connection().connection.cursor()


class Statement:
    """A statement and its per-dialect compilations (a cache behind a small object)."""

    def __init__(self, stmt: sa.ClauseElement, bind_types: Mapping[str, Any] | None = None) -> None:
        self.stmt = stmt
        self.bind_types = dict(bind_types or {})
        self._lock = threading.Lock()
        self._by_dialect: dict[str, Compiled] = {}

    def compiled(self, session: Session) -> Compiled:
        bind = session.get_bind()
        dialect = bind.dialect
        key = f"{dialect.name}+{dialect.driver}"
        found = self._by_dialect.get(key)
        if found is None:
            with self._lock:
                found = self._by_dialect.get(key)
                if found is None:
                    found = self._by_dialect[key] = Compiled(self.stmt, dialect, self.bind_types)
        return found

    def all(self, session: Session, **params: Any) -> list[Any]:
        return self.compiled(session).all(session, params)

    def execute(self, session: Session, **params: Any) -> None:
        self.compiled(session).execute(session, params)

    def executemany(self, session: Session, rows: list[Mapping[str, Any]]) -> None:
        self.compiled(session).executemany(session, rows)
