"""The one writer of the lineage graph: capture (:func:`governance.lineage.write_run`) and OpenLineage
ingest (:func:`~governance.openlineage.ingest_openlineage`) write jobs, runs, datasets, dataset
versions, fields, run edges and column lineage only through :class:`GraphWriter`.

* **Audited by construction.**  A :class:`GraphWriter` is made from an open
  :class:`~governance.audit.AuditedTransaction` (it refuses anything else) and its statements are
  private to this module, so no path writes the graph outside :func:`~governance.audit.audited`.
  The rows it inserts are handed to the audit layer with the values written
  (:func:`~governance.audit.supply_rows`), which digests them without reading them back (capture's
  few rows per step; ingest's bulk batches read back their dense id ranges as cheaply).
* **One rule for the version an input consumed** (:meth:`GraphWriter.current_version`): without an
  exact identity (a content hash, a ``datasetVersion``), a run read the version of the table current
  when it started, other than one it wrote itself, and never a made-up ``unknown`` placeholder.
* **One shape for a version's schema** (:func:`schema_fields`): ``{"name", "type"}``, the spelling of
  OpenLineage's schema facet, plus ``"hash"``, the column's content hash, when capture knows it
  (:func:`schema_of` also reads the ``dtype`` spelling older catalogs hold).

It lives in the lower of the two layers that write (``openlineage`` under ``lineage``) so both reach
it through a public face.  Statements are precompiled Core (:mod:`governance.catalog`): capture's
write is on a decorated step's critical path, ingest writes a thousand events per transaction.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

import sqlalchemy as sa

from governance.audit import AuditedTransaction, supply_rows
from governance.catalog import (
    ColumnLineage,
    Dataset,
    DatasetField,
    DatasetVersion,
    Job,
    RawConnection,
    Run,
    RunIO,
    Statement,
    insert_statement,
    update_statement,
)
from governance.errors import GovernanceError

__all__ = ["UNKNOWN", "GraphWriter", "chunks", "schema_fields", "schema_of"]

#: coverage of the placeholder version an input binds to when no version of the table is known
UNKNOWN = "unknown"


def _table(model: Any) -> sa.Table:
    return cast(sa.Table, sa.inspect(model).local_table)


_r, _j, _d, _dv, _f, _io, _cl = (
    _table(m) for m in (Run, Job, Dataset, DatasetVersion, DatasetField, RunIO, ColumnLineage)
)
_TIME = _dv.c.created_at.type
_IN_CHUNK = 400


def schema_fields(fields: Iterable[tuple[str, str | None, str | None]]) -> list[dict[str, Any]] | None:
    """A version's ``schema_fields`` from ``(name, type, content hash)`` per column (None: no schema):
    ``{"name", "type"}``, plus ``"hash"`` when the column's content hash is known (capture)."""
    out = [{"name": name, "type": dtype, "hash": digest} if digest is not None else {"name": name, "type": dtype}
           for name, dtype, digest in fields]
    return out or None


def schema_of(stored: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, str | None]] | None:
    """``(name, type)`` per column of a stored ``schema_fields`` (either spelling of the type)."""
    if stored is None:
        return None
    return [(str(f.get("name")), f.get("type") if f.get("type") is not None else f.get("dtype")) for f in stored]


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """``items`` in slices small enough for an ``IN (...)`` list."""
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start:start + _IN_CHUNK]


class _BulkInsert:
    """Many rows into one table: one statement executed per row (``executemany``), the rows' values
    converted once, by column, with the columns' own bind processors (SQLAlchemy's, as
    :class:`~governance.catalog.Statement` uses them), instead of value by value through the generic
    parameter conversion.  Rows are inserted, and the audit layer's touch trigger fires, in the order
    given.  (Multi-row ``INSERT ... VALUES (...), (...)`` statements measured slower on SQLite: with
    the touch trigger every such statement goes through a temporary table.)  A dialect whose
    compilation is not positional, and a single row, take ``fallback``.
    """

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        if len(columns) < 2:
            raise GovernanceError(f"internal: a bulk insert into {table.name} needs two columns or more")
        self.table = table
        self.columns = tuple(columns)
        self.fallback = insert_statement(table, columns)
        self.get = operator.itemgetter(*self.columns)
        self._lock = threading.Lock()
        self._compiled: dict[str, tuple[str, tuple[tuple[int, Any], ...]] | None] = {}

    def _sql(self, raw: RawConnection) -> tuple[str, tuple[tuple[int, Any], ...]] | None:
        """The statement's SQL for ``raw``'s dialect and ``(column index, bind processor)`` per column
        that has one (None: not positional in column order, run the fallback)."""
        if raw.key not in self._compiled:
            dialect = raw.dialect
            stmt = sa.insert(self.table).values({c: sa.bindparam(c) for c in self.columns})
            compiled = stmt.compile(dialect=dialect)
            processors = tuple((i, p) for i, c in enumerate(self.columns)
                               if (p := self.table.c[c].type.dialect_impl(dialect).bind_processor(dialect)))
            found = (compiled.string, processors) \
                if compiled.positional and tuple(compiled.positiontup or ()) == self.columns else None
            with self._lock:
                self._compiled[raw.key] = found
        return self._compiled[raw.key]

    def insert(self, raw: RawConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (mappings with every column) in order."""
        found = self._sql(raw) if len(rows) > 1 else None
        if found is None:
            if len(rows) == 1:
                self.fallback.execute(raw, **rows[0])
            else:
                self.fallback.executemany(raw, rows)
            return
        sql, processors = found
        params: Any = list(map(self.get, rows))
        if processors:
            columns = [list(c) for c in zip(*params, strict=True)]
            for index, processor in processors:
                columns[index] = list(map(processor, columns[index]))
            params = zip(*columns, strict=True)
        cursor = raw.cursor()
        try:
            cursor.executemany(sql, params)
        except raw.errors as exc:
            raise raw.wrap(sql, exc) from exc
        finally:
            cursor.close()


# ------------------------------------------------------------------------------------- statements
_RUN_COLUMNS = (
    "run_uuid", "job_id", "parent_run_id", "status", "started_at", "ended_at", "params", "environment", "user",
    "host", "code_hash", "source_file", "git_commit", "git_dirty", "error_type", "error_message",
    "error_traceback", "producer",
)  # fmt: skip
_INSERT_RUN = insert_statement(_r, _RUN_COLUMNS, returning_id=True)
_INSERT_RUNS = _BulkInsert(_r, _RUN_COLUMNS)
_RUN_BY_UUID = Statement(sa.select(_r.c.id, _r.c.status).where(_r.c.run_uuid == sa.bindparam("run_uuid")))
_JOB_ID = Statement(
    sa.select(_j.c.id).where(_j.c.namespace == sa.bindparam("namespace"), _j.c.name == sa.bindparam("name"))
)
_JOB_COLUMNS = ("namespace", "name", "kind", "source_file", "created_at")
_INSERT_JOB = insert_statement(_j, _JOB_COLUMNS, returning_id=True)
_INSERT_JOBS = _BulkInsert(_j, _JOB_COLUMNS)
_DATASET_ID = Statement(
    sa.select(_d.c.id).where(_d.c.namespace == sa.bindparam("namespace"), _d.c.name == sa.bindparam("name"))
)
_DATASET_COLUMNS = ("namespace", "name", "kind", "uri", "tags", "created_at")
_INSERT_DATASET = insert_statement(_d, _DATASET_COLUMNS, returning_id=True)
_INSERT_DATASETS = _BulkInsert(_d, _DATASET_COLUMNS)
_VERSION_COLUMNS = (
    "dataset_id", "version", "content_hash", "hash_algo", "coverage", "schema_hash", "schema_fields", "row_count",
    "byte_size", "stats", "uri", "produced_by_run_id", "created_at",
)  # fmt: skip
_INSERT_VERSION = insert_statement(_dv, _VERSION_COLUMNS, returning_id=True)
_LATEST_NUMBER = Statement(sa.select(sa.func.max(_dv.c.version)).where(_dv.c.dataset_id == sa.bindparam("dataset_id")))
_FIELD_COLUMNS = ("dataset_version_id", "name", "dtype", "position", "tags")
_INSERT_FIELD = _BulkInsert(_f, _FIELD_COLUMNS)
_EDGE_COLUMNS = ("run_id", "artifact_kind", "artifact_id", "direction", "role", "binding", "created_at")
_INSERT_EDGE = _BulkInsert(_io, _EDGE_COLUMNS)
_MOVE_EDGE = Statement(
    sa.update(_io).where(_io.c.run_id == sa.bindparam("run_id"), _io.c.direction == sa.bindparam("direction"),
                         _io.c.artifact_kind == sa.literal_column("'dataset'"),
                         _io.c.artifact_id == sa.bindparam("old_id"))
    .values(artifact_id=sa.bindparam("new_id"), binding=sa.bindparam("binding")))
_LINEAGE_COLUMNS = ("run_id", "output_field_id", "output_version_id", "input_field_id", "transformation", "subtype",
                    "description", "masking")
_INSERT_LINEAGE = _BulkInsert(_cl, _LINEAGE_COLUMNS)
_SET_LINEAGE_INPUT = update_statement(_cl, ("input_field_id",))
_SET_FIELD_TAGS = update_statement(_f, ("tags",))
_VERSION_CHANGES = ("byte_size", "created_at", "produced_by_run_id", "row_count", "schema_fields")  # sorted
_UPDATES: Mapping[tuple[str, tuple[str, ...]], Statement] = MappingProxyType({
    (t.name, columns): update_statement(t, columns)
    for t, columns in (
        (_r, ("status", "ended_at", "params", "environment", "user", "host", "code_hash", "source_file", "git_commit",
              "git_dirty", "error_type", "error_message", "error_traceback")),
        (_r, ("started_at", "status", "ended_at", "error_message", "error_traceback", "parent_run_id")),
        (_dv, ("created_at",)), (_dv, ("produced_by_run_id", "created_at")), (_dv, ("content_hash", "hash_algo")),
        (_dv, ("schema_fields",)), (_dv, ("row_count",)), (_dv, ("byte_size",)), (_dv, ("row_count", "byte_size")),
        (_d, ("description",)), (_j, ("description",)),
    )
} | {  # an ingested output's changes to a version in one statement (keys in sorted order)
    (_dv.name, columns): update_statement(_dv, columns)
    for size in range(2, 6) for columns in itertools.combinations(_VERSION_CHANGES, size)
})  # fmt: skip

# the version current at a time: walks the (dataset_id, created_at) index backwards to the first row that
# qualifies (not an unknown placeholder, not written by the reading run itself)
_NOT_OWN = sa.or_(_dv.c.produced_by_run_id.is_(None), _dv.c.produced_by_run_id != sa.bindparam("run_id"))
_latest = sa.alias(_dv, "latest")
_LATEST_TIME = (
    sa.select(_latest.c.created_at)
    .where(_latest.c.dataset_id == sa.bindparam("dataset_id"), _latest.c.created_at <= sa.bindparam("when"),
           _latest.c.coverage != sa.literal_column(f"'{UNKNOWN}'"),
           sa.or_(_latest.c.produced_by_run_id.is_(None), _latest.c.produced_by_run_id != sa.bindparam("run_id")))
    .order_by(_latest.c.created_at.desc()).limit(1).scalar_subquery()
)
_VERSION_ROW = (_dv.c.id, _dv.c.dataset_id, _dv.c.version, _dv.c.created_at, _dv.c.produced_by_run_id, _dv.c.coverage,
               _dv.c.schema_fields, _dv.c.content_hash, _dv.c.hash_algo)
_CURRENT = Statement(
    sa.select(*_VERSION_ROW)
    .where(_dv.c.dataset_id == sa.bindparam("dataset_id"), _dv.c.created_at == _LATEST_TIME,
           _dv.c.coverage != sa.literal_column(f"'{UNKNOWN}'"), _NOT_OWN)
    # at equal times, a version some run wrote is newer than one a reader named
    .order_by(_dv.c.produced_by_run_id.is_(None), _dv.c.id.desc()).limit(1),
    {"when": _TIME})


def _full(columns: Sequence[str], values: Mapping[str, Any]) -> Mapping[str, Any]:
    """``values`` with every column of an insert (None for those not given)."""
    if len(values) == len(columns):  # all given (a missing one would fail the insert loudly)
        return values
    return {name: values.get(name) for name in columns}


class GraphWriter:
    """The writes of the lineage graph in one audited transaction (see the module docstring)."""

    def __init__(self, tx: AuditedTransaction, *, supply: bool = True, buffered: bool = False) -> None:
        """``supply``: hand the rows inserted to the audit layer (a few rows per transaction: saves
        reading them back; a bulk import's dense ranges read back as cheaply, so it need not).
        ``buffered``: hold run edges and column lineage rows (whose ids nobody needs) until
        :meth:`flush`, and insert them with one statement per table; the caller flushes before it
        reads those tables and before its transaction ends (a bulk import: one statement per batch
        instead of one per event).  The writer's own reads and changes of them flush first."""
        if not isinstance(tx, AuditedTransaction):
            raise GovernanceError("internal: the lineage graph is written only inside governance.audit.audited()")
        self.tx = tx
        self.raw: RawConnection = tx.raw
        self.supply = supply
        self.buffered = buffered
        self._pending: dict[str, list[Mapping[str, Any]]] = {_io.name: [], _cl.name: []}
        self._numbers: dict[int, int] = {}  # dataset id -> latest version number, as this writer numbered it

    def _supply(self, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
        if self.supply:
            supply_rows(self.tx.scope, table.name, rows)  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------------ jobs
    def job_id(self, namespace: str, name: str, kind: str, source_file: str | None) -> int:
        """The job's id, inserted when new."""
        row = _JOB_ID.first(self.raw, namespace=namespace, name=name)
        if row is not None:
            return int(row[0])
        values: dict[str, Any] = {"namespace": namespace, "name": name, "kind": kind, "source_file": source_file,
                  "created_at": self.tx.time}
        return self._insert_one(_INSERT_JOB, _j, values)

    def dataset_id(self, namespace: str, name: str, kind: str, uri: str | None) -> int:
        """The dataset's id, inserted when new."""
        row = _DATASET_ID.first(self.raw, namespace=namespace, name=name)
        if row is not None:
            return int(row[0])
        values: dict[str, Any] = {"namespace": namespace, "name": name, "kind": kind, "uri": uri, "tags": [],
                  "created_at": self.tx.time}
        return self._insert_one(_INSERT_DATASET, _d, values)

    def ensure_named(self, kind: str, wanted: set[tuple[str, str]], into: dict[tuple[str, str], int],
                     values: Any) -> None:
        """Ids of many jobs or datasets (``kind``) by ``(namespace, name)`` into ``into``, inserting the
        missing ones with ``values(namespace, name)``."""
        table, statement, columns = (_j, _INSERT_JOBS, _JOB_COLUMNS) if kind == "job" else \
            (_d, _INSERT_DATASETS, _DATASET_COLUMNS)

        def load(keys: list[tuple[str, str]]) -> None:
            scope = self.tx.scope
            for chunk in chunks(keys):
                rows = scope.execute(sa.select(table.c.id, table.c.namespace, table.c.name)
                                    .where(sa.tuple_(table.c.namespace, table.c.name).in_(chunk)))
                into.update({(str(ns), str(name)): int(i) for i, ns, name in rows})

        load(sorted(wanted - into.keys()))
        missing = sorted(wanted - into.keys())
        if missing:
            self._insert_many(statement, [_full(columns, values(ns, name)) for ns, name in missing])
            load(missing)

    # ------------------------------------------------------------------------------------ runs
    def run_by_uuid(self, run_uuid: str) -> tuple[int, str] | None:
        row = _RUN_BY_UUID.first(self.raw, run_uuid=run_uuid)
        return None if row is None else (int(row[0]), str(row[1]))

    def insert_run(self, values: Mapping[str, Any]) -> int:
        return self._insert_one(_INSERT_RUN, _r, _full(_RUN_COLUMNS, values))

    def insert_runs(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._insert_many(_INSERT_RUNS, [_full(_RUN_COLUMNS, r) for r in rows])

    def update(self, table: str, row_id: int, **values: Any) -> None:
        """Set columns of one run, dataset version, dataset or job (one of the precompiled sets, in their
        order or sorted)."""
        statement = _UPDATES.get((table, tuple(values))) or _UPDATES[(table, tuple(sorted(values)))]
        statement.execute(self.raw, row_id=row_id, **values)

    def update_many(self, table: str, columns: tuple[str, ...], rows: Sequence[Mapping[str, Any]]) -> None:
        _UPDATES[(table, columns)].executemany(self.raw, rows)

    # -------------------------------------------------------------------------------- versions
    def current_version(self, dataset_id: int, when: datetime, run_id: int | None) -> Any:
        """The version of ``dataset_id`` a run started at ``when`` consumed when it names no exact version:
        the one current then, other than one the run wrote itself, never an ``unknown`` placeholder
        (None: no version was known then).  The one rule of capture and ingest alike."""
        return _CURRENT.first(self.raw, dataset_id=dataset_id, when=when, run_id=run_id)

    def insert_version(self, dataset_id: int, **values: Any) -> tuple[int, int]:
        """A new version of ``dataset_id``, numbered after its latest: ``(id, version number)``."""
        number = self._numbers.get(dataset_id)
        if number is None:
            latest = _LATEST_NUMBER.first(self.raw, dataset_id=dataset_id)
            number = int((latest[0] if latest else None) or 0)
        number += 1
        row = _full(_VERSION_COLUMNS, {**values, "dataset_id": dataset_id, "version": number})
        version_id = self._insert_one(_INSERT_VERSION, _dv, row)
        self._numbers[dataset_id] = number  # this transaction holds the write lock: nobody else numbers
        return version_id, number

    def delete_version(self, version_id: int) -> None:
        """Remove a version nothing refers to, with its fields (an ingest placeholder no longer needed)."""
        self.flush()
        self._numbers.clear()
        self.tx.scope.execute(sa.delete(_f).where(_f.c.dataset_version_id == version_id))
        self.tx.scope.execute(sa.delete(_dv).where(_dv.c.id == version_id))

    def insert_fields(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._insert_many(_INSERT_FIELD, [_full(_FIELD_COLUMNS, r) for r in rows])

    def set_field_tags(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """``{"row_id": field id, "tags": [...]}`` per field whose tags changed."""
        _SET_FIELD_TAGS.executemany(self.raw, rows)

    # ----------------------------------------------------------------------------------- edges
    def insert_edges(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """``run_io`` rows: ``run_id``, ``artifact_kind``, ``artifact_id``, ``direction``, ``role``,
        ``binding`` (``time``: bound by :meth:`current_version`, may move), ``created_at``."""
        if self.buffered:
            self._pending[_io.name] += rows
        else:
            self._insert_many(_INSERT_EDGE, [_full(_EDGE_COLUMNS, r) for r in rows])

    def move_edge(self, run_id: int, direction: str, old_id: int, new_id: int, binding: str | None) -> None:
        self.flush()
        _MOVE_EDGE.execute(self.raw, run_id=run_id, direction=direction, old_id=old_id, new_id=new_id,
                           binding=binding)

    def insert_lineage(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """``column_lineage`` rows (an output field, or an output version for a dataset-level link)."""
        if self.buffered:
            self._pending[_cl.name] += rows
        else:
            self._insert_many(_INSERT_LINEAGE, [_full(_LINEAGE_COLUMNS, r) for r in rows])

    def flush(self) -> None:
        """Insert the edges and column lineage rows held back (``buffered``), in the order given."""
        edges, lineage = self._pending[_io.name], self._pending[_cl.name]
        if edges:
            self._pending[_io.name] = []
            self._insert_many(_INSERT_EDGE, [_full(_EDGE_COLUMNS, r) for r in edges])
        if lineage:
            self._pending[_cl.name] = []
            self._insert_many(_INSERT_LINEAGE, [_full(_LINEAGE_COLUMNS, r) for r in lineage])

    def set_lineage_input(self, row_id: int, input_field_id: int) -> None:
        self.flush()
        _SET_LINEAGE_INPUT.execute(self.raw, row_id=row_id, input_field_id=input_field_id)

    # ---------------------------------------------------------------------------------- inserts
    def _insert_one(self, statement: Statement, table: sa.Table, values: Mapping[str, Any]) -> int:
        row = statement.first(self.raw, **values)
        if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
            raise GovernanceError(f"internal: inserting into {table.name} returned no id")
        row_id = int(row[0])
        self._supply(table, [{**values, "id": row_id}])
        return row_id

    def _insert_many(self, bulk: _BulkInsert, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            bulk.insert(self.raw, rows)
            self._supply(bulk.table, rows)
