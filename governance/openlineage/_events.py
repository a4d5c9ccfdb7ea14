"""Catalog run -> OpenLineage ``RunEvent`` documents, through the outbox.

:func:`enqueue_run_events` runs inside the decorated step's write transaction and only adds the
outbox rows (run, event type, event time) in that transaction, so they commit or roll back with the
run.  :func:`outbox_documents` builds the document from the run's catalog rows when the shipper (or
``gov sync``) first handles the row, and the shipper stores it on the row with that round's
bookkeeping, so a retry after a recorded failure sends the same document.  Building reads a round's
runs 100 at a time with four precompiled statements (runs+jobs+parents; I/O edges with their dataset
or model versions; the fields of those dataset versions; the column lineage of the runs) into plain
dictionaries, and builds a dataset version's own facets, a dataset entry with its column lineage, a
job's entry and run facets with the same content once for the runs that share them
(``tests/test_openlineage_batch_build.py`` holds the documents equal to the one-run-at-a-time
builder's).  The documents of one build share those parts: they are read-only (a caller that changes
one copies it first), and the shipper serialises each shared part once (:func:`serialised`).

A finished run's rows do not change, so its documents say the same whenever they are built, with
three exceptions, all of them "later knows more": field tags can grow (a later capture of the same
content may add one); the ``START`` of an enclosing run queued by a nested step while the enclosing
run is still going is built from that run's row as it is when built (its parameters, code and host
are written when it ends); and ``processing_engine`` and ``_producer`` name the version of this
library that builds the document.

``START`` carries the job and run facets (job type, source location, parent, parameters, engine)
with run status ``RUNNING`` whenever it is built; ``COMPLETE``/``FAIL``/``ABORT`` carry those plus
the inputs and outputs with their schema, version, type, tags, column lineage and output statistics
facets, and the model versions a run produced or read (``governance_modelVersion``).  Consumers
accumulate facets across a run's events, as the spec's event model intends, so the I/O is stated
once, when it is final.

"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session

from governance.catalog import (
    ColumnLineage,
    Dataset,
    DatasetField,
    DatasetVersion,
    Job,
    Model,
    ModelVersion,
    OutboxEvent,
    RawConnection,
    Run,
    RunIO,
    Statement,
    utcnow,
)
from governance.domain import as_utc
from governance.errors import InputError, NotFoundError
from governance.openlineage._facets import (
    Transformation,
    column_lineage_facet,
    data_source_facet,
    dataset_type_facet,
    dataset_version_facet,
    error_message_facet,
    execution_parameters_facet,
    job_type_facet,
    model_version_facet,
    output_statistics_facet,
    parent_facet,
    processing_engine_facet,
    run_facet,
    schema_facet,
    source_code_location_facet,
    tags_dataset_facet,
)
from governance.openlineage._naming import PRODUCER, RUN_EVENT_SCHEMA_URL, model_dataset

__all__ = [
    "EVENT_TYPES",
    "build_run_event",
    "build_run_events",
    "dumps_document",
    "enqueue_events",
    "enqueue_run_event",
    "enqueue_run_events",
    "outbox_documents",
    "serialised",
    "wire_time",
]

EVENT_TYPES = ("START", "COMPLETE", "FAIL", "ABORT")

_r = sa.inspect(Run).local_table
_j = sa.inspect(Job).local_table
_io = sa.inspect(RunIO).local_table
_dv = sa.inspect(DatasetVersion).local_table
_d = sa.inspect(Dataset).local_table
_mv = sa.inspect(ModelVersion).local_table
_m = sa.inspect(Model).local_table
_f = sa.inspect(DatasetField).local_table
_cl = sa.inspect(ColumnLineage).local_table
_pr = _r.alias("parent_run")
_pj = _j.alias("parent_job")
_fo = _f.alias("out_field")
_fi = _f.alias("in_field")
_dvi = _dv.alias("in_version")
_di = _d.alias("in_dataset")

_DATASET: sa.ColumnElement[str] = sa.literal_column("'dataset'")
_MODEL: sa.ColumnElement[str] = sa.literal_column("'model'")

_RUN_COLUMNS = (
    _r.c.id, _r.c.run_uuid, _r.c.status, _r.c.started_at, _r.c.ended_at, _r.c.params, _r.c.user, _r.c.host,
    _r.c.code_hash, _r.c.source_file, _r.c.git_commit, _r.c.git_dirty, _r.c.error_type,
    _r.c.error_message, _r.c.error_traceback,
    _j.c.namespace, _j.c.name, _j.c.kind, _j.c.source_file.label("job_source_file"),
    _pr.c.run_uuid.label("parent_uuid"), _pr.c.parent_run_id.label("grandparent_id"),
    _pj.c.namespace.label("parent_ns"), _pj.c.name.label("parent_name"),
)
_RUNS_FROM = (_r.join(_j, _j.c.id == _r.c.job_id)
              .outerjoin(_pr, _pr.c.id == _r.c.parent_run_id)
              .outerjoin(_pj, _pj.c.id == _pr.c.job_id))

_IO_COLUMNS = (
    _io.c.run_id, _io.c.direction, _io.c.artifact_kind,
    _dv.c.id.label("dv_id"), _dv.c.version.label("dv_version"), _dv.c.content_hash, _dv.c.row_count,
    _dv.c.byte_size, _d.c.namespace.label("ds_ns"), _d.c.name.label("ds_name"),
    _d.c.kind.label("ds_kind"),
    _mv.c.version.label("mv_version"), _mv.c.artifact_hash, _mv.c.hash_algo.label("mv_algo"),
    _mv.c.artifact_uri, _mv.c.flavor, _m.c.name.label("model_name"),
)
_IO_FROM = (
    _io.outerjoin(_dv, sa.and_(_io.c.artifact_kind == _DATASET, _dv.c.id == _io.c.artifact_id))
    .outerjoin(_d, _d.c.id == _dv.c.dataset_id)
    .outerjoin(_mv, sa.and_(_io.c.artifact_kind == _MODEL, _mv.c.id == _io.c.artifact_id))
    .outerjoin(_m, _m.c.id == _mv.c.model_id)
)
_LINEAGE_COLUMNS = (
    _cl.c.run_id, sa.func.coalesce(_fo.c.dataset_version_id, _cl.c.output_version_id).label("dataset_version_id"),
    _fo.c.name.label("out_field"), _di.c.namespace, _di.c.name,
    _fi.c.name.label("in_field"), _cl.c.transformation, _cl.c.subtype, _cl.c.description, _cl.c.masking,
)
_LINEAGE_FROM = (_cl.outerjoin(_fo, _fo.c.id == _cl.c.output_field_id)
                 .join(_fi, _fi.c.id == _cl.c.input_field_id)
                 .join(_dvi, _dvi.c.id == _fi.c.dataset_version_id)
                 .join(_di, _di.c.id == _dvi.c.dataset_id))


class _InList:
    """``SELECT ... WHERE column IN (:k0, ..., :kN)`` precompiled (:class:`Statement`) for a few list
    sizes (powers of two); a list is padded to the next size with its last key (``IN`` is a set).
    SQLAlchemy's expanding parameters compile the list into the statement on every execution and
    build a ``Row`` per result row, several times the cost of the reads a shipping round makes."""

    SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

    def __init__(self, build: Callable[[list[sa.BindParameter[Any]]], sa.Select[Any]]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._by_size: dict[int, Statement] = {}

    def all(self, raw: RawConnection, keys: Sequence[Any]) -> list[Any]:
        """The rows for ``keys`` (at most :attr:`SIZES`' largest per call), in the statement's order."""
        if not keys:
            return []
        size = next(n for n in self.SIZES if n >= len(keys))
        found = self._by_size.get(size)
        if found is None:
            with self._lock:
                found = self._by_size.get(size)
                if found is None:
                    found = self._by_size[size] = Statement(self._build(
                        [sa.bindparam(f"k{i}") for i in range(size)]))
        padded = [*keys, *[keys[-1]] * (size - len(keys))]
        return found.all(raw, **{f"k{i}": key for i, key in enumerate(padded)})


_RUNS_BY: dict[str, _InList] = {
    "id": _InList(lambda keys: sa.select(*_RUN_COLUMNS).select_from(_RUNS_FROM).where(_r.c.id.in_(keys))),
    "run_uuid": _InList(lambda keys: sa.select(*_RUN_COLUMNS).select_from(_RUNS_FROM)
                        .where(_r.c.run_uuid.in_(keys))),
}
_IO_QUERY = _InList(lambda keys: sa.select(*_IO_COLUMNS).select_from(_IO_FROM).where(_io.c.run_id.in_(keys))
                    .order_by(_io.c.run_id, _io.c.id))
_FIELDS_QUERY = _InList(lambda keys: sa.select(_f.c.dataset_version_id, _f.c.name, _f.c.dtype, _f.c.position,
                                               _f.c.tags)
                        .where(_f.c.dataset_version_id.in_(keys))
                        .order_by(_f.c.dataset_version_id, _f.c.position, _f.c.id))
_COLUMN_LINEAGE_QUERY = _InList(lambda keys: sa.select(*_LINEAGE_COLUMNS).select_from(_LINEAGE_FROM)
                                .where(_cl.c.run_id.in_(keys)).order_by(_cl.c.id))

_ANCESTOR = Statement(
    sa.select(_r.c.run_uuid, _r.c.parent_run_id, _j.c.namespace, _j.c.name)
    .select_from(_r.join(_j, _j.c.id == _r.c.job_id)).where(_r.c.id == sa.bindparam("run_id"))
)
_MAX_DEPTH = 1000  # a cycle in parent links (a damaged catalog) must not loop forever
_CHUNK = 100  # runs per read (see _Rows): a shipping round's 200 events in one read
_MAX_IDS = 500  # dataset versions per read: well inside every backend's limit on bound parameters

_RUN_TIMES = Statement(
    sa.select(_r.c.run_uuid, _r.c.started_at, _r.c.ended_at).where(_r.c.id == sa.bindparam("run_id"))
)

_o = cast(sa.Table, sa.inspect(OutboxEvent).local_table)
_OUTBOX_COLUMNS = ("run_uuid", "event_type", "event_time", "payload", "attempts", "next_attempt_at",
                   "created_at")
_INSERT_OUTBOX = Statement(
    sa.insert(_o).values({name: sa.bindparam(name) for name in _OUTBOX_COLUMNS}),
    {name: _o.c[name].type for name in _OUTBOX_COLUMNS},
)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode

_DATASET_TYPES = {"file": "FILE", "table": "TABLE", "frame": "TABLE", "model": "MODEL"}


def wire_time(value: datetime) -> str:
    """ISO 8601 with an explicit UTC offset (SQLite hands back naive UTC datetimes)."""
    return as_utc(value).isoformat().replace("+00:00", "Z")


def build_run_event(session: Session, run_id: int, event_type: str) -> dict[str, Any]:
    """The ``RunEvent`` of ``event_type`` for run ``run_id`` as a JSON-ready dictionary."""
    return build_run_events(session, run_id, (event_type,))[0]


def build_run_events(session: Session, run_id: int, event_types: Sequence[str]) -> list[dict[str, Any]]:
    """The ``RunEvent``s of ``event_types`` for run ``run_id``, in that order, from one read of its rows
    (the run and job facets are built once and shared by the documents)."""
    _check_types(event_types)  # before reading anything
    (built,) = _build(session, "id", [(run_id, event_types)])
    if isinstance(built, Exception):
        raise built
    return built


def _check_types(event_types: Sequence[str]) -> None:
    for event_type in event_types:
        if event_type not in EVENT_TYPES:
            raise InputError(f"event_type: expected one of {', '.join(EVENT_TYPES)}, got {event_type!r}")


class _Rows:
    """The catalog rows behind the documents of a few runs (at most ``_CHUNK``), read with one query
    per kind of row (runs with job and parent; I/O edges; fields; column lineage), grouped by run.
    At most ``_CHUNK`` runs at a time (a shipping round's): a batch's rows stay small, and 50 runs
    per read cost ~10% less CPU per event than 16 did (garbage collections included)."""

    def __init__(self, session: Session, key: str, keys: list[Any], with_io: set[Any], shared: _Shared) -> None:
        self.session = session
        self.shared = shared
        raw = self._raw = RawConnection(session)
        self.runs: dict[Any, Any] = {(row.id if key == "id" else row.run_uuid): row
                                     for row in _RUNS_BY[key].all(raw, keys)}
        run_ids = sorted({int(self.runs[k].id) for k in with_io if k in self.runs})
        self.edges: dict[int, list[Any]] = defaultdict(list)
        self.fields: dict[int, list[Any]] = defaultdict(list)
        self.lineage: dict[int, dict[int, dict[str | None, list[Transformation]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list)))
        edges = _IO_QUERY.all(raw, run_ids)
        for edge in edges:
            self.edges[edge.run_id].append(edge)
        version_ids = sorted({e.dv_id for e in edges if e.dv_id is not None})
        for ids in (version_ids[i:i + _MAX_IDS] for i in range(0, len(version_ids), _MAX_IDS)):
            for field in _FIELDS_QUERY.all(raw, ids):
                self.fields[field.dataset_version_id].append(field)
        if any(e.direction == "output" and e.dv_id is not None for e in edges):
            for item in _COLUMN_LINEAGE_QUERY.all(raw, run_ids):
                self.lineage[item.run_id][item.dataset_version_id][item.out_field].append(Transformation(
                    item.namespace, item.name, item.in_field, item.transformation, item.subtype,
                    item.description, item.masking))
        self._versions: dict[int, dict[str, Any]] = {}
        self._sources: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.datasets: dict[tuple[Any, ...], dict[str, Any]] = {}  # see _dataset_doc

    def version_facets(self, edge: Any) -> dict[str, Any]:
        """A dataset version's own facets, built once per batch (documents share them: never mutated)."""
        found = self._versions.get(edge.dv_id)
        if found is None:
            found = self._versions[edge.dv_id] = _version_facets(edge, self.fields.get(edge.dv_id, []))
        return found

    def source_location(self, source_file: str, git_commit: str | None) -> dict[str, Any]:
        key = (source_file, git_commit)
        found = self._sources.get(key)
        if found is None:
            found = self._sources[key] = source_code_location_facet(source_file, git_commit)
        return found

    def ancestor(self, run_id: int) -> Any:
        return _ANCESTOR.first(self._raw, run_id=run_id)


_SCALARS = (str, int, float, bool, type(None))


class _Shared:
    """The parts of documents that runs of one build have in common, built once and shared (documents
    are never mutated): the processing engine, each job's entry, the ``governance_run`` facets by content,
    the parameters facet by parameters, and the run facets made of those.  Shared parts are also
    serialised once per round (see :func:`serialised`)."""

    def __init__(self) -> None:
        self.engine = processing_engine_facet()
        self._jobs: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._facets: dict[tuple[Any, ...], dict[str, Any]] = {}

    def job(self, rows: _Rows, run: Any) -> dict[str, Any]:
        source_file = run.source_file or run.job_source_file
        key = (run.namespace, run.name, run.kind, source_file, run.git_commit if source_file else None)
        found = self._jobs.get(key)
        if found is None:
            job_facets: dict[str, Any] = {"jobType": job_type_facet(run.kind)}
            if source_file:
                job_facets["sourceCodeLocation"] = rows.source_location(source_file, run.git_commit)
            found = self._jobs[key] = {"namespace": run.namespace, "name": run.name, "facets": job_facets}
        return found

    def run_facets(self, run: Any, status: str) -> dict[str, Any]:
        """The run facets of ``run`` reporting ``status``, apart from its parent and error."""
        params = run.params or None
        params_key: tuple[Any, ...] | None = ()
        if params is not None:
            params_key = (tuple((k, type(v), repr(v)) for k, v in params.items())
                          if all(type(v) in _SCALARS for v in params.values()) else None)
        if params_key is None:  # parameters holding lists or mappings: not shared
            return self._new_run_facets(run, status, params)
        key = (status, run.code_hash, run.git_dirty, run.user, run.host, params_key)
        found = self._facets.get(key)
        if found is None:
            found = self._facets[key] = self._new_run_facets(run, status, params)
        return found

    def _new_run_facets(self, run: Any, status: str, params: dict[str, Any] | None) -> dict[str, Any]:
        facets: dict[str, Any] = {
            "processing_engine": self.engine,
            "governance_run": run_facet(status=status, code_hash=run.code_hash, git_dirty=run.git_dirty,
                                        user=run.user, host=run.host),
        }
        if params:
            facets["executionParameters"] = execution_parameters_facet(params)
        return facets


def _build(session: Session, key: str, requests: Sequence[tuple[Any, Sequence[str]]],
           ) -> list[list[dict[str, Any]] | Exception]:
    """The documents of each ``(run id or run uuid, event types)`` request, in order, or the exception
    that stopped building that request's run (one run's failure does not stop the others).  The runs
    are read ``_CHUNK`` at a time."""
    if session.new or session.dirty or session.deleted:  # pending ORM rows must be visible
        session.flush()
    positions: dict[Any, list[int]] = defaultdict(list)
    for i, (k, _) in enumerate(requests):
        positions[k].append(i)
    keys = list(positions)
    with_io = {k for k, types in requests if any(t != "START" for t in types)}
    shared = _Shared()
    out: list[list[dict[str, Any]] | Exception | None] = [None] * len(requests)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        rows = _Rows(session, key, chunk, with_io.intersection(chunk), shared)
        for i in (i for k in chunk for i in positions[k]):
            k, types = requests[i]
            run = rows.runs.get(k)
            if run is None:
                out[i] = NotFoundError(f"run id {k}: no such run in the catalog" if key == "id"
                                       else f"run {k}: no such run in the catalog")
                continue
            try:
                _check_types(types)
                out[i] = _run_documents(rows, run, types)
            except Exception as exc:  # noqa: BLE001 - reported per run by the caller, never dropped
                out[i] = exc
    return cast(list[list[dict[str, Any]] | Exception], out)


def _run_documents(rows: _Rows, run: Any, event_types: Sequence[str]) -> list[dict[str, Any]]:
    shared = rows.shared
    job = shared.job(rows, run)
    run_facets = shared.run_facets(run, run.status)
    started_facets = shared.run_facets(run, "RUNNING")
    if run.parent_uuid is not None:
        root = (run.parent_uuid, run.parent_ns, run.parent_name)
        ancestor, hops = run.grandparent_id, 0
        while ancestor is not None and hops < _MAX_DEPTH:  # the outermost run, however deep the nesting
            up = rows.ancestor(ancestor)
            if up is None:
                break
            root, ancestor, hops = (up.run_uuid, up.namespace, up.name), up.parent_run_id, hops + 1
        parent = parent_facet(run.parent_uuid, run.parent_ns, run.parent_name, root)
        run_facets = {**run_facets, "parent": parent}
        started_facets = {**started_facets, "parent": parent}

    io: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
    docs: list[dict[str, Any]] = []
    for event_type in event_types:
        facets = run_facets
        if event_type == "FAIL" and (run.error_message or run.error_type):
            message = f"{run.error_type}: {run.error_message}" if run.error_type else str(run.error_message)
            facets = {**run_facets, "errorMessage": error_message_facet(message, run.error_traceback)}
        if event_type == "START":
            facets = started_facets  # RUNNING, whenever the document is built
            inputs: list[dict[str, Any]] = []
            outputs: list[dict[str, Any]] = []
        else:
            if io is None:
                io = _datasets(rows, int(run.id), run.namespace)
            inputs, outputs = io
        when = run.started_at if event_type == "START" else (run.ended_at or utcnow())
        docs.append({
            "eventType": event_type,
            "eventTime": wire_time(when),
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT_SCHEMA_URL,
            "run": {"runId": run.run_uuid, "facets": facets},
            "job": job,
            "inputs": inputs,
            "outputs": outputs,
        })
    return docs


def _datasets(rows: _Rows, run_id: int, job_namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    edges = rows.edges.get(run_id)
    if not edges:
        return [], []
    lineage = rows.lineage.get(run_id, {})
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for edge in edges:
        if edge.dv_id is not None:
            doc = _dataset_doc(rows, edge, lineage.get(edge.dv_id) if edge.direction == "output" else None)
        elif edge.model_name is not None:
            doc = _model_doc(edge, job_namespace)
        else:
            continue  # an edge to a row that no longer exists: nothing truthful to say
        key = (edge.direction, doc["namespace"], doc["name"], doc["facets"]["version"]["datasetVersion"])
        if key in seen:
            continue
        seen.add(key)
        (outputs if edge.direction == "output" else inputs).append(doc)
    return inputs, outputs


def _dataset_doc(rows: _Rows, edge: Any, lineage: dict[str | None, list[Transformation]] | None,
                 ) -> dict[str, Any]:
    """A dataset's entry in a document; the runs of a batch that read (or wrote) the same version with
    the same column lineage share one (documents are never mutated; serialising them reuses its text)."""
    key = (edge.dv_id, edge.direction, tuple((k, tuple(v)) for k, v in lineage.items()) if lineage else None)
    found = rows.datasets.get(key)
    if found is None:
        found = rows.datasets[key] = _new_dataset_doc(rows, edge, lineage)
    return found


def _new_dataset_doc(rows: _Rows, edge: Any, lineage: dict[str | None, list[Transformation]] | None,
                     ) -> dict[str, Any]:
    facets = rows.version_facets(edge)
    if lineage:
        facets = {**facets, "columnLineage": column_lineage_facet(lineage)}
    doc: dict[str, Any] = {"namespace": edge.ds_ns, "name": edge.ds_name, "facets": facets}
    if edge.direction == "output" and (edge.row_count is not None or edge.byte_size is not None):
        doc["outputFacets"] = {"outputStatistics": output_statistics_facet(edge.row_count, edge.byte_size)}
    return doc


def _version_facets(edge: Any, fields: list[Any]) -> dict[str, Any]:
    """The facets of a dataset version that do not depend on the run (shared by the runs of a batch)."""
    facets: dict[str, Any] = {
        "version": dataset_version_facet(edge.content_hash or str(edge.dv_version)),
        "datasetType": dataset_type_facet(_DATASET_TYPES.get(edge.ds_kind, "TABLE")),
        "dataSource": data_source_facet(edge.ds_ns),
    }
    if fields:
        facets["schema"] = schema_facet((f.name, f.dtype, f.position) for f in fields)
        tags = [(tag, f.name) for f in fields for tag in (f.tags or ())]
        if tags:
            facets["tags"] = tags_dataset_facet(tags)
    return facets


def _model_doc(edge: Any, job_namespace: str) -> dict[str, Any]:
    namespace, name = model_dataset(job_namespace, edge.model_name)
    facets = {
        "version": dataset_version_facet(str(edge.mv_version)),
        "datasetType": dataset_type_facet("MODEL"),
        "dataSource": data_source_facet(namespace),
        "governance_modelVersion": model_version_facet(
            name=edge.model_name, version=edge.mv_version, artifact_hash=edge.artifact_hash,
            hash_algo=edge.mv_algo, flavor=edge.flavor, artifact_uri=edge.artifact_uri),
    }
    return {"namespace": namespace, "name": name, "facets": facets}


def enqueue_run_event(session: Session, run_id: int, event_type: str) -> None:
    """Add the ``event_type`` event of run ``run_id`` to the outbox in ``session``'s transaction.

    Call it inside the audited write that records the run (``START`` when the run row is written,
    ``COMPLETE``/``FAIL`` when it ends): the row commits or rolls back with the run, and the event is
    built and delivered later by the shipper (:func:`kick_shipper`) or ``gov sync``.
    """
    enqueue_run_events(session, run_id, (event_type,))


def enqueue_run_events(session: Session, run_id: int, event_types: Sequence[str]) -> None:
    """:func:`enqueue_run_event` for several event types of one run (e.g. ``START`` and ``COMPLETE``
    of a run written once it finished); the rows are added in the order given, so delivery keeps
    that order.  ``START`` is timed at the run's start, the others at its end."""
    raw = RawConnection(session)
    found = _RUN_TIMES.first(raw, run_id=run_id)
    if found is None:
        raise NotFoundError(f"run id {run_id}: no such run in the catalog")
    now = utcnow()
    enqueue_events(session, found.run_uuid, [
        (event_type, found.started_at if event_type == "START" else (found.ended_at or now))
        for event_type in event_types
    ])


def enqueue_events(session: Session, run_uuid: str, events: Sequence[tuple[str, datetime]]) -> None:
    """Add outbox rows ``(event type, event time)`` of run ``run_uuid`` in ``session``'s transaction,
    in the order given, for a caller that already knows the run (the step's writer): no read."""
    for event_type, _ in events:
        if event_type not in EVENT_TYPES:
            raise InputError(f"event_type: expected one of {', '.join(EVENT_TYPES)}, got {event_type!r}")
    now = utcnow()
    _INSERT_OUTBOX.executemany(RawConnection(session), [
        {
            "run_uuid": run_uuid,
            "event_type": event_type,
            "event_time": when,
            "payload": None,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event_type, when in events
    ])


def outbox_documents(session: Session, rows: Sequence[Any]) -> list[dict[str, Any] | Exception]:
    """The event documents of outbox rows (objects with ``run_uuid``, ``event_type`` and
    ``payload``), in order: the stored payload when there is one, else built from the run's catalog
    rows (consecutive rows of one run from one read, all the runs from one read of each kind of row).
    A row whose document cannot be built gets the exception in its place, for the caller to record
    on the row; it is never skipped."""
    out: list[dict[str, Any] | Exception | None] = []
    groups: list[tuple[int, str, list[str]]] = []  # (first index in out, run uuid, event types)
    i = 0
    while i < len(rows):
        row = rows[i]
        if row.payload is not None:
            try:
                out.append(json.loads(row.payload))
            except ValueError as exc:  # a damaged stored document: a failed attempt on that row
                out.append(exc)
            i += 1
            continue
        j = i
        while j < len(rows) and rows[j].payload is None and rows[j].run_uuid == row.run_uuid:
            j += 1
        groups.append((len(out), row.run_uuid, [r.event_type for r in rows[i:j]]))
        out.extend([None] * (j - i))
        i = j
    if groups:
        try:
            built = _build(session, "run_uuid", [(run_uuid, types) for _, run_uuid, types in groups])
        except Exception as exc:  # noqa: BLE001 - reported per row by the caller, never dropped
            built = [exc] * len(groups)
        for (at, _, types), docs in zip(groups, built, strict=True):
            out[at:at + len(types)] = [docs] * len(types) if isinstance(docs, Exception) else docs
    return cast(list[dict[str, Any] | Exception], out)


def serialised(doc: dict[str, Any], memo: dict[int, tuple[Any, str]] | None = None) -> str:
    """``doc`` as openlineage-python's ``Serde.to_json`` writes it (keys sorted, default separators).

    Our documents hold no nulls, enums or empty objects in lists, which is all ``Serde.to_dict``
    removes, so this is the same text without its recursive walk (a test compares the two).

    With ``memo`` (one per batch of documents, dropped with it), what documents share (a job's entry,
    run facets, dataset entries: see :class:`_Shared`) is encoded once: the document, its ``run`` and
    its ``inputs``/``outputs`` lists are written piece by piece as ``json.dumps`` writes them, and the
    objects in them are encoded once per batch, looked up by identity."""
    if memo is None or not all(type(k) is str for k in doc):
        return json.dumps(doc, sort_keys=True)
    pieces = []
    for key, value in sorted(doc.items()):
        if key == "run" and type(value) is dict and all(type(k) is str for k in value):
            text = "{" + ", ".join([f"{_text(k)}: {_shared(v, memo)}" for k, v in sorted(value.items())]) + "}"
        elif key in ("inputs", "outputs") and type(value) is list:
            text = "[" + ", ".join([_shared(item, memo) for item in value]) + "]"
        else:
            text = _shared(value, memo)
        pieces.append(f"{_text(key)}: {text}")
    return "{" + ", ".join(pieces) + "}"


_text = json.encoder.encode_basestring_ascii  # how json.dumps writes a string (ensure_ascii)


def _shared(value: Any, memo: dict[int, tuple[Any, str]]) -> str:
    """``json.dumps(value, sort_keys=True)``; a dictionary or list once per ``memo``."""
    if type(value) is str:
        return _text(value)
    if type(value) is not dict and type(value) is not list:
        return json.dumps(value, sort_keys=True)
    found = memo.get(id(value))
    if found is None or found[0] is not value:
        found = memo[id(value)] = (value, json.dumps(value, sort_keys=True))  # holding it keeps its id
    return found[1]


def dumps_document(doc: dict[str, Any]) -> str:
    """The stored form of an event document (compact JSON, UTF-8 text)."""
    return _dumps(doc)
