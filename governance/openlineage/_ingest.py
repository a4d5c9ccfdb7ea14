"""Import OpenLineage events of other producers (Spark, Flink, Hive, Airflow, dbt, Marquez...).

:func:`ingest_openlineage` reads what :mod:`governance.openlineage._ingest_read` accepts (NDJSON, a
JSON array, one or more documents, a directory, or parsed events) and imports the valid events in
batches of :data:`BATCH_SIZE`, each one audited transaction with one ``openlineage.ingest`` audit
event that lists the key (runId or dataset/job, eventType, eventTime) and location of every event it
imported.  Idempotent on ``(runId, eventType, eventTime)``.  Invalid events are reported with their
location and the JSON path of the problem; the valid ones are imported.

What an event becomes:

* RunEvent: a ``Job`` (namespace, name) and a ``Run`` keyed by ``runId`` (a UUID).  A runId that
  already belongs to another job is refused with the event's location, never merged.  The run's
  start is the earliest event time seen, its status that of the latest terminal event (a terminal
  status is never regressed by a ``START`` that arrives late); ``errorMessage`` -> error; ``parent``
  -> the parent run (created from the facet's job and runId when its own events have not arrived).
* DatasetEvent: the dataset's metadata (type, description; the version with its schema when the event
  names one).  JobEvent: the job and its datasets.
* Datasets by ``(namespace, name)`` (OpenLineage naming, the same row a decorated step uses for that
  table, see :func:`~governance.openlineage.dataset_identity`), with a well-formed ``uri``.
* Dataset versions.  The ``version`` facet (``datasetVersion``) is the identity (matched against
  ``content_hash``, so a producer reporting our fingerprint meets our version).  An output without it
  is one version per producing run.  A version becomes current at the time of its producing run's
  latest event naming it (a version only read so far: the earliest time it was read).
  An input without a version facet is bound by time: to the version current when its run started,
  excluding versions the run itself wrote (a job that reads and writes a table reads the version
  before its own output), and re-bound when an earlier version, or an earlier start of the run,
  arrives later: the graph does not depend on the order events arrive in.  When that version's schema
  differs from the one the event reports, the event saw a version nobody reported writing: an
  *observed* version with that schema.  When no version is known before the run started, it reads an
  *unknown* earlier state of the table (one per dataset, removed once nothing refers to it).
* ``schema`` -> fields (nested fields flattened as ``a.b``), added to the version, never removed.
* ``columnLineage`` -> one row per (output field, input field, transformation) with type, subtype,
  description and masking; the facet's dataset-level entries with no output field.  A source dataset
  that is not among the event's inputs is an input of the run (it read it), bound by time; a field
  that is not in a version's schema is added to it.  Entries that cannot be linked (malformed) are
  counted per reason in :attr:`IngestReport.unlinked`.

Rows are written through the one writer of the lineage graph (:class:`~governance.openlineage.GraphWriter`),
which capture uses too.  Event contents are data: parsed with ``json`` and stored through bound
parameters, never interpreted.
"""

from __future__ import annotations

import gc
import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa

from governance.audit import AuditedTransaction, audited
from governance.catalog import (
    Catalog,
    ColumnLineage,
    Dataset,
    DatasetField,
    DatasetVersion,
    IngestedEvent,
    Job,
    Model,
    ModelVersion,
    RawConnection,
    Run,
    RunIO,
    Statement,
    utcnow,
)
from governance.errors import GovernanceError, InputError
from governance.openlineage._graph import UNKNOWN, GraphWriter, chunks, schema_fields, schema_of
from governance.openlineage._ingest_read import (
    MAX_EVENT_BYTES,
    EventSource,
    ParsedEvent,
    read_source,
    validate,
)
from governance.openlineage._naming import dataset_uri

__all__ = ["BATCH_SIZE", "MAX_EVENT_BYTES", "IngestReport", "ingest_openlineage"]

BATCH_SIZE = 1000
#: SQLite page cache of an importing process's connection (``pause_gc``), in KiB; SQLite's default is 2 MiB
IMPORT_CACHE_KIB = 64 * 1024
_CACHE_SIZE = "PRAGMA cache_size"
_SET_CACHE_SIZE = "PRAGMA cache_size = -65536"  # IMPORT_CACHE_KIB
_STATUS = {"START": "RUNNING", "RUNNING": "RUNNING", "COMPLETE": "COMPLETED", "FAIL": "FAILED",
           "ABORT": "ABORTED"}
_TERMINAL = {"COMPLETE", "FAIL", "ABORT"}
_TRANSFORMATION_TYPES = ("DIRECT", "INDIRECT")
_RUN_UPDATE = ("started_at", "status", "ended_at", "error_message", "error_traceback", "parent_run_id")
#: coverage of versions that ingest made up and may remove again once nothing refers to them
OBSERVED = "observed"  # and UNKNOWN, the placeholder the graph's one input rule never binds to

_r = cast(sa.Table, sa.inspect(Run).local_table)
_j = cast(sa.Table, sa.inspect(Job).local_table)
_d = cast(sa.Table, sa.inspect(Dataset).local_table)
_dv = cast(sa.Table, sa.inspect(DatasetVersion).local_table)
_f = cast(sa.Table, sa.inspect(DatasetField).local_table)
_io = cast(sa.Table, sa.inspect(RunIO).local_table)
_cl = cast(sa.Table, sa.inspect(ColumnLineage).local_table)
_ie = cast(sa.Table, sa.inspect(IngestedEvent).local_table)
_m = cast(sa.Table, sa.inspect(Model).local_table)
_mv = cast(sa.Table, sa.inspect(ModelVersion).local_table)
MODEL_FACET = "governance_modelVersion"

_TIME = _dv.c.created_at.type
_VERSION_COLUMNS = (_dv.c.id, _dv.c.dataset_id, _dv.c.created_at, _dv.c.produced_by_run_id, _dv.c.coverage,
                    _dv.c.schema_fields, _dv.c.content_hash)
# "+ 0": ordering by the bare column makes SQLite walk the (dataset_id, version) index over every version
# of the dataset instead of seeking (dataset_id, content_hash) or produced_by_run_id
_BY_IDENTITY = Statement(sa.select(*_VERSION_COLUMNS).where(
    _dv.c.dataset_id == sa.bindparam("dataset_id"), _dv.c.content_hash == sa.bindparam("identity"))
    .order_by(_dv.c.version + 0).limit(1))
_BY_PRODUCER = Statement(sa.select(*_VERSION_COLUMNS).where(
    _dv.c.dataset_id == sa.bindparam("dataset_id"), _dv.c.produced_by_run_id == sa.bindparam("run_id"))
    .order_by(_dv.c.version + 0).limit(1))
_UNKNOWN_VERSION = Statement(sa.select(*_VERSION_COLUMNS).where(
    _dv.c.dataset_id == sa.bindparam("dataset_id"), _dv.c.coverage == sa.literal_column("'unknown'")).limit(1))
_NOT_OWN = sa.or_(_dv.c.produced_by_run_id.is_(None), _dv.c.produced_by_run_id != sa.bindparam("run_id"))
_BEFORE = Statement(  # the version current at a version's time, other than itself
    sa.select(*_VERSION_COLUMNS)
    .where(_dv.c.dataset_id == sa.bindparam("dataset_id"), _dv.c.created_at <= sa.bindparam("when"),
           _dv.c.id != sa.bindparam("exclude"), _dv.c.coverage != sa.literal_column("'unknown'"), _NOT_OWN)
    .order_by(_dv.c.created_at.desc(), _dv.c.produced_by_run_id.is_(None), _dv.c.id.desc()).limit(1),
    {"when": _TIME})
_NEXT = Statement(
    sa.select(*_VERSION_COLUMNS)
    .where(_dv.c.dataset_id == sa.bindparam("dataset_id"), _dv.c.created_at > sa.bindparam("when"),
           _dv.c.coverage != sa.literal_column("'unknown'"), _NOT_OWN)
    .order_by(_dv.c.created_at, _dv.c.id).limit(1), {"when": _TIME})
_FIELDS = Statement(sa.select(_f.c.id, _f.c.name).where(_f.c.dataset_version_id == sa.bindparam("version_id")))
_FLOATING = (sa.select(_io.c.id, _io.c.run_id, _dv.c.dataset_id, _io.c.artifact_id, _r.c.started_at)
             .join(_dv, _dv.c.id == _io.c.artifact_id).join(_r, _r.c.id == _io.c.run_id)
             .where(_io.c.artifact_kind == sa.literal_column("'dataset'"),
                    _io.c.direction == sa.literal_column("'input'"),
                    _io.c.binding == sa.literal_column("'time'")))
_RUNS_SINCE = Statement(sa.select(_r.c.id).where(_r.c.started_at >= sa.bindparam("since")), {"since": _TIME})


@dataclass
class IngestReport:
    """What one import did.  ``invalid`` holds ``(location, reason)`` per refused event; ``unlinked``
    counts what could not be linked, per reason; ``kinds`` counts imported events per kind."""

    read: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)
    runs: set[str] = field(default_factory=set)
    datasets: set[tuple[str, str]] = field(default_factory=set)
    kinds: Counter[str] = field(default_factory=Counter)
    unlinked: Counter[str] = field(default_factory=Counter)
    column_lineage: int = 0
    inferred_inputs: int = 0
    rebound: int = 0

    @property
    def ok(self) -> bool:
        return not self.invalid

    def to_json(self) -> dict[str, Any]:
        return {
            "read": self.read, "imported": self.imported, "duplicates": self.duplicates,
            "invalid": [{"location": loc, "reason": why} for loc, why in self.invalid],
            "events": dict(sorted(self.kinds.items())), "runs": len(self.runs), "datasets": len(self.datasets),
            "column_lineage": self.column_lineage, "inferred_inputs": self.inferred_inputs,
            "rebound": self.rebound, "unlinked": dict(sorted(self.unlinked.items())),
        }


def ingest_openlineage(catalog: Catalog, source: EventSource, actor: str, *,
                       batch_size: int = BATCH_SIZE, pause_gc: bool = False) -> IngestReport:
    """Import the OpenLineage events of ``source`` into ``catalog`` as ``actor``.

    ``source`` is a path (NDJSON file, JSON array file, a file of one or more documents, or a directory
    of ``.json``/``.ndjson``/``.jsonl`` files) or events already parsed (one mapping, or an iterable of
    mappings).  Safe to call from several threads or processes at once: every batch is one audited
    write transaction, and those are serialised by the catalog.  A path with no events at all is an
    :class:`~governance.errors.InputError`.

    ``pause_gc``: for a process that is only importing (``gov ingest openlineage``, the server's
    importer process), never inside a host application: Python's cyclic garbage collector is
    switched off while the events are read and imported (a batch's thousands of parsed events and
    rows would otherwise be scanned again and again), and the young generations are collected after
    each batch, so garbage cycles do not pile up.  The collector's state is restored at the end.  On a
    SQLite file the connection's page cache is raised to :data:`IMPORT_CACHE_KIB` (and kept: the
    process is an importer): a batch writes into indexes spread over the whole file, and with SQLite's
    default of 2 MiB a 100k-event import spent a fifth of its CPU time re-reading pages from the OS.
    """
    report = IngestReport()
    batch: list[ParsedEvent] = []
    paused = pause_gc and gc.isenabled()
    if paused:
        gc.disable()
    try:
        for location, doc, problem in read_source(source):
            report.read += 1
            try:
                if problem is not None:
                    raise ValueError(problem)
                batch.append(validate(location, doc))
            except ValueError as exc:
                report.invalid.append((location, str(exc)))
            if len(batch) >= batch_size:
                _import(catalog, actor, batch, report, pause_gc)
                batch = []
                if paused:
                    gc.collect(1)
        if batch:
            _import(catalog, actor, batch, report, pause_gc)
    finally:
        if paused:
            gc.enable()
    if report.read == 0 and not isinstance(source, dict):
        raise InputError(f"{source}: no events (empty); expected OpenLineage events as NDJSON, a JSON array "
                         "or JSON documents")
    return report


def _import(catalog: Catalog, actor: str, events: list[ParsedEvent], report: IngestReport, importer: bool) -> None:
    with audited(catalog, actor) as tx:
        if importer and tx.raw.dialect.name == "sqlite":
            _raise_cache(tx.raw)
        _Batch(tx, report).run(events)


def _raise_cache(raw: RawConnection) -> None:
    """Give the connection a page cache of :data:`IMPORT_CACHE_KIB` unless it has one as large."""
    cursor: Any = raw.dbapi.cursor()
    try:
        pages = int(cursor.execute(_CACHE_SIZE).fetchone()[0])
        # positive: a number of pages; negative: KiB
        kib = pages * int(cursor.execute("PRAGMA page_size").fetchone()[0]) // 1024 if pages >= 0 else -pages
        if kib < IMPORT_CACHE_KIB:
            cursor.execute(_SET_CACHE_SIZE)
    finally:
        cursor.close()


def _key(event: ParsedEvent) -> tuple[str, str, str]:
    if event.run_id is not None:
        return event.run_id, event.event_type, event.raw_time
    target = event.doc["dataset"] if event.kind == "dataset" else event.doc["job"]
    digest = hashlib.sha256(f"{target['namespace']}\x00{target['name']}".encode()).hexdigest()[:40]
    return f"{event.kind}:{digest}", event.event_type, event.raw_time


def _run_uuid(event: ParsedEvent) -> str:
    """The runId of a RunEvent (validated as a UUID on reading)."""
    if event.run_id is None:  # pragma: no cover - validate() gives every RunEvent its runId
        raise GovernanceError(f"internal: {event.location}: a RunEvent without a runId reached the import")
    return event.run_id


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _facets(item: Any) -> dict[str, Any]:
    facets = item.get("facets") if isinstance(item, dict) else None
    return facets if isinstance(facets, dict) else {}


def _model_facet(item: dict[str, Any]) -> dict[str, Any] | None:
    """The ``governance_modelVersion`` facet of a dataset that is a model version (ours, or another
    ml-governance installation's), when it names the model and a version number."""
    found = _facets(item).get(MODEL_FACET)
    if isinstance(found, dict) and isinstance(found.get("name"), str) and found["name"] and \
            isinstance(found.get("version"), int) and not isinstance(found.get("version"), bool):
        return found
    return None


def _identity(item: dict[str, Any]) -> str | None:
    version = _facets(item).get("version")
    value = version.get("datasetVersion") if isinstance(version, dict) else None
    return value if isinstance(value, str) and value else None


def _output_sizes(item: dict[str, Any]) -> dict[str, int]:
    """``row_count`` and ``byte_size`` from an output's ``outputStatistics`` facet (those it gives)."""
    stats = (item.get("outputFacets") or {}).get("outputStatistics") if isinstance(item, dict) else None
    if not isinstance(stats, dict):
        return {}
    return {column: value for key, column in (("rowCount", "row_count"), ("size", "byte_size"))
            if isinstance(value := stats.get(key), int) and not isinstance(value, bool)}


def _schema(item: dict[str, Any]) -> list[tuple[str, str | None]] | None:
    schema = _facets(item).get("schema")
    if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
        return None
    return list(_flatten(schema["fields"]))


def _flatten(fields: list[Any], prefix: str = "") -> Any:
    for item in fields:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = f"{prefix}{item['name']}"
        dtype = item.get("type") if isinstance(item.get("type"), str) else None
        yield name, dtype
        if isinstance(item.get("fields"), list):
            yield from _flatten(item["fields"], f"{name}.")


def _same_schema(stored: list[dict[str, Any]] | None, seen: list[tuple[str, str | None]]) -> bool:
    if stored is None:
        return False
    have = dict(schema_of(stored) or [])
    if set(have) != {name for name, _ in seen}:
        return False
    return all(have[name] is None or dtype is None or have[name] == dtype for name, dtype in seen)


@dataclass
class _RunState:
    id: int
    job_id: int
    started_at: datetime
    status: str
    ended_at: datetime | None
    error_message: str | None = None
    error_traceback: str | None = None
    parent_run_id: int | None = None
    existed: bool = True
    start_moved: bool = False
    changed: bool = False

    def values(self) -> tuple[Any, ...]:
        """The columns an event changes (:data:`_RUN_UPDATE`)."""
        return (self.started_at, self.status, self.ended_at, self.error_message, self.error_traceback,
                self.parent_run_id)


def _apply(state: _RunState, event: ParsedEvent) -> None:
    """What one RunEvent says about its run's start, status, end and error (events in any order give
    the same run: the earliest start, the latest terminal status, which a late ``START`` never regresses)."""
    when = _naive(event.event_time)
    if when < state.started_at:
        state.started_at = when
        state.start_moved = state.existed
        state.changed = True
    if event.event_type in _TERMINAL and (state.ended_at is None or when >= state.ended_at):
        state.ended_at = when
        state.status = _STATUS[event.event_type]
        state.changed = True
    facets = event.doc["run"].get("facets") or {}
    error = facets.get("errorMessage")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        trace = error.get("stackTrace")
        state.error_message, state.error_traceback = error["message"], trace if isinstance(trace, str) else None
        state.changed = True


@dataclass
class _Version:
    id: int
    dataset_id: int
    created_at: datetime
    produced_by: int | None
    coverage: str
    schema: list[dict[str, Any]] | None
    identity: str | None = None


class _Batch:
    """One batch in one audited transaction: bulk lookups, then outputs, inputs, column lineage and
    the re-binding of inputs whose version may have changed."""

    def __init__(self, tx: AuditedTransaction, report: IngestReport) -> None:
        self.tx = tx
        # a batch's dense id ranges read back as cheaply; edges and column lineage inserted in bulk
        self.graph = GraphWriter(tx, supply=False, buffered=True)
        self.raw: RawConnection = tx.raw
        self.report = report
        self.jobs: dict[tuple[str, str], int] = {}
        self.datasets: dict[tuple[str, str], int] = {}
        self.runs: dict[str, _RunState] = {}
        self.fields: dict[int, dict[str, int]] = {}  # version id -> field name -> id (0: not inserted yet)
        # fields added but not inserted yet, and their versions: inserted together when an id is needed
        self.pending_fields: list[dict[str, Any]] = []
        self.pending_versions: set[int] = set()
        # one object per version row read or written in the batch (every change of a version goes
        # through it), and the first version each run wrote per dataset, as _BY_PRODUCER finds it
        self.versions: dict[int, _Version] = {}
        self.produced: dict[tuple[int, int], _Version] = {}
        self.edges: dict[tuple[int, str], dict[int, tuple[int, str | None]]] = {}  # (run, dir) -> dataset
        self.lineage: set[tuple[Any, ...]] = set()
        self.moved: dict[int, datetime] = {}  # dataset id -> earliest time a version appeared or moved
        self.binding = False  # in the inputs phase: moves from now on may affect inputs bound in this batch
        self.moved_late: set[int] = set()
        self.bound_here: set[tuple[int, int]] = set()  # (run id, dataset id) of inputs bound in this batch
        self.emptied: set[int] = set()  # versions an edge moved away from: removed at the end if made up
        self.models: set[str] = set()
        self.keys: list[list[str]] = []
        self.removed = 0

    def execute(self, stmt: Any, params: Any = None) -> Any:
        """A Core statement on the batch's transaction, after the fields, edges and lineage rows held back."""
        self._insert_fields()
        self.graph.flush()
        return self.tx.scope.execute(stmt, params)

    # ------------------------------------------------------------------------------------- phases
    def run(self, events: list[ParsedEvent]) -> None:
        fresh = self._fresh(events)
        if not fresh:
            return
        self._load_jobs(fresh)
        accepted = self._load_runs(fresh)
        self._load_datasets(accepted)
        run_events = [e for e in accepted if e.kind == "run"]
        self._load_edges(run_events)
        for event in accepted:
            if event.kind == "dataset":
                self._dataset_event(event)
            elif event.kind == "job":
                self._job_event(event)
        self._link(run_events)
        self._insert_fields()
        self._rebind()
        self._record(accepted)
        self.graph.flush()

    def _link(self, run_events: list[ParsedEvent]) -> None:
        """Model versions, then outputs (so inputs bind knowing every version of the batch), inputs and
        column lineage of the batch's RunEvents."""
        for event in run_events:
            for side in ("inputs", "outputs"):
                for item in event.doc.get(side) or []:
                    model = _model_facet(item)
                    if model is not None:
                        self._model_version(event, model, side[:-1])
        outputs: dict[tuple[int, int], int] = {}  # (event, output index) -> version id
        for event in run_events:
            for index, item in enumerate(event.doc.get("outputs") or []):
                if _model_facet(item) is None:
                    outputs[(id(event), index)] = self._output(event, item)
        self.binding = True
        for event in run_events:
            for item in event.doc.get("inputs") or []:
                if _model_facet(item) is None:
                    self._input(event, item)
        for event in run_events:
            for index, item in enumerate(event.doc.get("outputs") or []):
                if (id(event), index) in outputs:
                    self._column_lineage(event, index, item, outputs[(id(event), index)])

    def _fresh(self, events: list[ParsedEvent]) -> list[ParsedEvent]:
        keys = {_key(e): e for e in events}
        known: set[tuple[str, str, str]] = set()
        ids = sorted({k[0] for k in keys})
        for chunk in chunks(ids):
            rows = self.execute(sa.select(_ie.c.run_uuid, _ie.c.event_type, _ie.c.event_time)
                                .where(_ie.c.run_uuid.in_(chunk)))
            known.update((str(a), str(b), str(c)) for a, b, c in rows)
        fresh: list[ParsedEvent] = []
        seen: set[tuple[str, str, str]] = set()
        for event in events:
            key = _key(event)
            if key in known or key in seen:
                self.report.duplicates += 1
                continue
            seen.add(key)
            fresh.append(event)
        return fresh

    # -------------------------------------------------------------------------------------- jobs
    def _load_jobs(self, events: list[ParsedEvent]) -> None:
        wanted: set[tuple[str, str]] = set()
        for event in events:
            if event.kind in ("run", "job"):
                wanted.add((event.doc["job"]["namespace"], event.doc["job"]["name"]))
            parent = self._parent(event)
            if parent is not None:
                wanted.add((parent[1], parent[2]))
        self.graph.ensure_named("job", wanted, self.jobs, lambda ns, name: {
            "namespace": ns, "name": name, "kind": "other", "created_at": self.tx.time})

    @staticmethod
    def _parent(event: ParsedEvent) -> tuple[str, str, str] | None:
        if event.kind != "run":
            return None
        parent = (event.doc["run"].get("facets") or {}).get("parent")
        if not isinstance(parent, dict):
            return None
        run_id = str(uuid.UUID(parent["run"]["runId"]))
        if run_id == event.run_id:
            return None  # a run is not its own parent
        return run_id, parent["job"]["namespace"], parent["job"]["name"]

    # -------------------------------------------------------------------------------------- runs
    def _load_runs(self, events: list[ParsedEvent]) -> list[ParsedEvent]:
        """The runs of the batch's events (inserted when new, updated from the events); returns the events
        accepted: a RunEvent whose runId belongs to another job is refused."""
        uuids = {e.run_id for e in events if e.run_id is not None}
        uuids |= {p[0] for e in events if (p := self._parent(e)) is not None}
        for chunk in chunks(sorted(uuids)):
            rows = self.execute(sa.select(_r.c.id, _r.c.run_uuid, _r.c.job_id, _r.c.started_at, _r.c.status,
                                          _r.c.ended_at, _r.c.error_message, _r.c.error_traceback,
                                          _r.c.parent_run_id).where(_r.c.run_uuid.in_(chunk)))
            for row in rows:
                self.runs[str(row.run_uuid)] = _RunState(
                    int(row.id), int(row.job_id), _naive(row.started_at), str(row.status),
                    _naive(row.ended_at) if row.ended_at else None, row.error_message, row.error_traceback,
                    row.parent_run_id)
        claimed: dict[str, tuple[int, str]] = {}  # run uuid -> (job id, location) within this batch
        accepted = [e for e in events if e.kind != "run" or self._claim(e, claimed)]
        inserted = self._insert_runs(accepted, claimed)
        for event in accepted:
            if event.kind == "run":
                self._update_run(event)
        self.graph.update_many("run", _RUN_UPDATE, [
            {"row_id": st.id, "started_at": st.started_at.replace(tzinfo=UTC), "status": st.status,
             "ended_at": st.ended_at.replace(tzinfo=UTC) if st.ended_at else None,
             "error_message": st.error_message, "error_traceback": st.error_traceback,
             "parent_run_id": st.parent_run_id}
            for run_uuid, st in self.runs.items() if st.changed and inserted.get(run_uuid) != st.values()])
        return accepted

    def _claim(self, event: ParsedEvent, claimed: dict[str, tuple[int, str]]) -> bool:
        """Whether a RunEvent's runId is its job's (else it is refused, with the location of the claim)."""
        run_uuid = _run_uuid(event)
        job_id = self.jobs[(event.doc["job"]["namespace"], event.doc["job"]["name"])]
        state = self.runs.get(run_uuid)
        owner = state.job_id if state is not None else claimed.get(run_uuid, (job_id, ""))[0]
        if owner != job_id:
            ns, name = {v: k for k, v in self.jobs.items()}.get(owner) or self._job_name(owner)
            where = claimed.get(run_uuid, (0, ""))[1]
            self.report.invalid.append((event.location, (
                f"run.runId: {run_uuid} is already a run of job {ns}/{name}"
                f"{f' ({where})' if where else ''}; one runId never spans two jobs, so this event "
                "is refused, not merged")))
            return False
        claimed.setdefault(run_uuid, (job_id, event.location))
        return True

    def _insert_runs(self, accepted: list[ParsedEvent], claimed: dict[str, tuple[int, str]]
                     ) -> dict[str, tuple[Any, ...]]:
        """Rows for the runs not stored yet, as this batch's events leave them (start, status, end,
        error: one insert, not an insert then an update), and RUNNING rows for parents known only from
        a facet; returns the values inserted per run (:meth:`_RunState.values`)."""
        new: dict[str, dict[str, Any]] = {}
        for event in accepted:
            if event.kind != "run":
                continue
            run_uuid = _run_uuid(event)
            row = {"status": "RUNNING", "started_at": event.event_time, "ended_at": None,
                   "producer": str(event.doc["producer"])[:2000], "params": {}, "environment": {}}
            if run_uuid not in self.runs and run_uuid not in new:
                new[run_uuid] = {"run_uuid": run_uuid, "job_id": claimed[run_uuid][0], **row}
            parent = self._parent(event)
            if parent is not None and parent[0] not in self.runs and parent[0] not in new \
                    and parent[0] not in claimed:  # known only from the facet (its own events come later)
                new[parent[0]] = {"run_uuid": parent[0], "job_id": self.jobs[(parent[1], parent[2])], **row}
        if not new:
            return {}
        states = {run_uuid: _RunState(0, int(row["job_id"]), _naive(row["started_at"]), "RUNNING", None, existed=False)
                  for run_uuid, row in new.items()}
        for event in accepted:
            state = states.get(event.run_id) if event.run_id is not None else None
            if state is not None:
                _apply(state, event)
        for run_uuid, row in new.items():
            state = states[run_uuid]
            row.update(started_at=state.started_at.replace(tzinfo=UTC), status=state.status,
                       ended_at=state.ended_at.replace(tzinfo=UTC) if state.ended_at else None,
                       error_message=state.error_message, error_traceback=state.error_traceback)
            state.changed = False
        self.graph.insert_runs(list(new.values()))
        for chunk in chunks(sorted(new)):
            for found in self.execute(sa.select(_r.c.id, _r.c.run_uuid).where(_r.c.run_uuid.in_(chunk))):
                state = self.runs[str(found.run_uuid)] = states[str(found.run_uuid)]
                state.id = int(found.id)
        return {run_uuid: state.values() for run_uuid, state in states.items()}

    def _job_name(self, job_id: int) -> tuple[str, str]:
        row = self.execute(sa.select(_j.c.namespace, _j.c.name).where(_j.c.id == job_id)).first()
        return (str(row[0]), str(row[1])) if row is not None else ("?", "?")

    def _update_run(self, event: ParsedEvent) -> None:
        state = self.runs[_run_uuid(event)]
        _apply(state, event)
        parent = self._parent(event)
        if parent is not None and state.parent_run_id != self.runs[parent[0]].id:
            state.parent_run_id = self.runs[parent[0]].id
            state.changed = True
        self.report.runs.add(_run_uuid(event))

    # ---------------------------------------------------------------------------------- datasets
    def _load_datasets(self, events: list[ParsedEvent]) -> None:
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for event in events:
            doc = event.doc
            if event.kind == "dataset":
                items.setdefault((doc["dataset"]["namespace"], doc["dataset"]["name"]), doc["dataset"])
            for side in ("inputs", "outputs"):
                for item in doc.get(side) or []:
                    if _model_facet(item) is not None:
                        continue  # a model version, not a dataset
                    items.setdefault((item["namespace"], item["name"]), item)
                    for source in self._lineage_sources(item):
                        items.setdefault(source, {})

        def values(ns: str, name: str) -> dict[str, Any]:
            kind = (_facets(items[(ns, name)]).get("datasetType") or {})
            kind_name = kind.get("datasetType") if isinstance(kind, dict) else None
            return {"namespace": ns, "name": name, "kind": str(kind_name or "table").lower()[:32],
                    "uri": dataset_uri(ns, name), "tags": [], "created_at": self.tx.time}

        self.graph.ensure_named("dataset", set(items), self.datasets, values)
        self.report.datasets.update(items)

    @staticmethod
    def _lineage_sources(item: dict[str, Any]) -> set[tuple[str, str]]:
        facet = _facets(item).get("columnLineage")
        if not isinstance(facet, dict):
            return set()
        found: set[tuple[str, str]] = set()
        entries: list[Any] = []
        if isinstance(facet.get("fields"), dict):
            entries += [spec.get("inputFields") for spec in facet["fields"].values() if isinstance(spec, dict)]
        entries.append(facet.get("dataset"))
        for sources in entries:
            for source in sources if isinstance(sources, list) else []:
                if isinstance(source, dict) and isinstance(source.get("namespace"), str) and \
                        isinstance(source.get("name"), str) and source["namespace"] and source["name"]:
                    found.add((source["namespace"], source["name"]))
        return found

    def _load_edges(self, events: list[ParsedEvent]) -> None:
        run_ids = sorted({self.runs[e.run_id].id for e in events if e.run_id is not None})
        for chunk in chunks(run_ids):
            rows = self.execute(
                sa.select(_io.c.id, _io.c.run_id, _io.c.direction, _io.c.artifact_id, _io.c.binding,
                          _dv.c.dataset_id)
                .join(_dv, _dv.c.id == _io.c.artifact_id)
                .where(_io.c.run_id.in_(chunk), _io.c.artifact_kind == "dataset"))
            for row in rows:
                self.edges.setdefault((int(row.run_id), str(row.direction)), {})[int(row.dataset_id)] = (
                    int(row.artifact_id), row.binding)
            for row in self.execute(sa.select(_cl.c.run_id, _cl.c.output_field_id, _cl.c.output_version_id,
                                              _cl.c.input_field_id, _cl.c.transformation, _cl.c.subtype)
                                    .where(_cl.c.run_id.in_(chunk))):
                self.lineage.add(tuple(row))

    # ---------------------------------------------------------------------------------- versions
    def _as_version(self, row: Any) -> _Version | None:
        if row is None:
            return None
        known = self.versions.get(int(row.id))
        if known is None:
            known = self.versions[int(row.id)] = _Version(
                int(row.id), int(row.dataset_id), _naive(row.created_at), row.produced_by_run_id, str(row.coverage),
                row.schema_fields, row.content_hash)
        return known

    def _by_producer(self, dataset_id: int, run: _RunState) -> _Version | None:
        """The first version of ``dataset_id`` that ``run`` wrote (:data:`_BY_PRODUCER`).  A run new in
        this batch wrote only what the batch did (no query); another run's answer is kept once read."""
        key = (dataset_id, run.id)
        found = self.produced.get(key)
        if found is not None or not run.existed:
            return found
        found = self._find(_BY_PRODUCER, dataset_id=dataset_id, run_id=run.id)
        if found is not None:
            self.produced[key] = found
        return found

    def _wrote(self, version: _Version, run: _RunState) -> None:
        """``run`` is now the producer of ``version``: the first it wrote of that dataset (by number, which
        follows the id within a dataset) when the batch knows all it wrote."""
        key = (version.dataset_id, run.id)
        known = self.produced.get(key)
        if (known is None and not run.existed) or (known is not None and version.id < known.id):
            self.produced[key] = version

    def _find(self, statement: Statement, **params: Any) -> _Version | None:
        return self._as_version(statement.first(self.raw, **params))

    def _new_version(self, dataset_id: int, *, identity: str | None, when: datetime, produced_by: int | None,
                     coverage: str, schema: list[tuple[str, str | None]] | None, uri: str | None,
                     sizes: dict[str, int] | None = None) -> _Version:
        stored = schema_fields((n, t, None) for n, t in schema) if schema else None
        version_id, _number = self.graph.insert_version(
            dataset_id, content_hash=identity, hash_algo="openlineage" if identity else None, coverage=coverage,
            schema_fields=stored, uri=uri, produced_by_run_id=produced_by, created_at=when.replace(tzinfo=UTC),
            **(sizes or {}))
        self._moved(dataset_id, _naive(when))
        version = _Version(int(version_id), dataset_id, _naive(when), produced_by, coverage, stored, identity)
        self.versions[version.id] = version
        self.fields[version.id] = {}
        if schema:
            self._add_fields(version.id, schema)
        return version

    def _set_created(self, version: _Version, when: datetime) -> None:
        self.graph.update("dataset_version", version.id, created_at=when.replace(tzinfo=UTC))
        self._moved(version.dataset_id, min(version.created_at, when))
        version.created_at = when

    def _moved(self, dataset_id: int, when: datetime) -> None:
        if self.binding:
            self.moved_late.add(dataset_id)
        current = self.moved.get(dataset_id)
        self.moved[dataset_id] = when if current is None else min(current, when)

    def _field_names(self, version_id: int) -> dict[str, int]:
        """Field name -> id of a version's fields (those waiting to be inserted are inserted first)."""
        if version_id in self.pending_versions:
            self._insert_fields()
        return self._names(version_id)

    def _names(self, version_id: int) -> dict[str, int]:
        """Field name -> id of a version's fields as known (0: waiting to be inserted)."""
        found = self.fields.get(version_id)
        if found is None:
            found = self.fields[version_id] = {
                str(row.name): int(row.id) for row in _FIELDS.all(self.raw, version_id=version_id)}
        return found

    def _add_fields(self, version_id: int, schema: list[tuple[str, str | None]]) -> None:
        """Add the fields a version lacks (inserted with the batch's other new fields, in the order added,
        when an id is first needed: one statement for the outputs of a batch instead of one per version)."""
        have = self._names(version_id)
        missing = [(n, t) for n, t in dict(schema).items() if n not in have]
        if not missing:
            return
        start = len(have)
        self.pending_fields += [
            {"dataset_version_id": version_id, "name": n, "dtype": t, "position": start + i, "tags": []}
            for i, (n, t) in enumerate(missing)]
        self.pending_versions.add(version_id)
        have.update((n, 0) for n, _ in missing)

    def _insert_fields(self) -> None:
        """Insert the fields waiting (:meth:`_add_fields`) and learn their ids."""
        if not self.pending_fields:
            return
        rows, versions = self.pending_fields, sorted(self.pending_versions)
        self.pending_fields, self.pending_versions = [], set()
        self.graph.insert_fields(rows)
        for chunk in chunks(versions):
            for row in self.execute(sa.select(_f.c.id, _f.c.dataset_version_id, _f.c.name)
                                    .where(_f.c.dataset_version_id.in_(chunk))):
                self.fields[int(row.dataset_version_id)][str(row.name)] = int(row.id)

    def _field_id(self, version_id: int, name: str) -> int:
        have = self._field_names(version_id)
        if name not in have:
            self._add_fields(version_id, [(name, None)])
            self._insert_fields()
        return have[name]

    def _output(self, event: ParsedEvent, item: dict[str, Any]) -> int:
        run = self.runs[_run_uuid(event)]
        dataset_id = self.datasets[(item["namespace"], item["name"])]
        identity = _identity(item)
        schema = _schema(item)
        when = _naive(event.event_time)
        if identity is not None:
            version = self._find(_BY_IDENTITY, dataset_id=dataset_id, identity=identity)
            if version is None:  # an earlier event of the run named the output without its version
                version = self._by_producer(dataset_id, run)
                if version is not None and version.identity is None:
                    self.graph.update("dataset_version", version.id, content_hash=identity,
                                      hash_algo="openlineage")
                    version.identity = identity
                else:
                    version = None
        else:
            version = self._by_producer(dataset_id, run)
        sizes = _output_sizes(item)
        if version is None:
            version = self._new_version(dataset_id, identity=identity, when=event.event_time, produced_by=run.id,
                                        coverage="none", schema=schema, uri=dataset_uri(*item_key(item)),
                                        sizes=sizes)
            self._wrote(version, run)
        else:
            self._update_output(version, run, when, sizes, schema)
        self._edge(run.id, "output", dataset_id, version.id, None)
        return version.id

    def _update_output(self, version: _Version, run: _RunState, when: datetime, sizes: dict[str, int],
                       schema: list[tuple[str, str | None]] | None) -> None:
        """What a later event of the producing run (or the first producer) says about an output version,
        written with one statement."""
        changes: dict[str, Any] = dict(sizes)
        if version.produced_by is None:
            changes.update(produced_by_run_id=run.id, created_at=when.replace(tzinfo=UTC))
            self._moved(version.dataset_id, min(version.created_at, when))
            version.produced_by, version.created_at = run.id, when
            self._wrote(version, run)
        elif version.produced_by == run.id and when > version.created_at:
            changes["created_at"] = when.replace(tzinfo=UTC)
            self._moved(version.dataset_id, min(version.created_at, when))
            version.created_at = when
        if schema and version.schema is None:
            version.schema = changes["schema_fields"] = schema_fields((n, t, None) for n, t in schema)
        if changes:
            self.graph.update("dataset_version", version.id, **changes)
        if schema:
            self._add_fields(version.id, schema)

    def _current(self, dataset_id: int, when: datetime, run_id: int) -> _Version | None:
        """The version of ``dataset_id`` current at ``when`` that ``run_id`` did not write itself."""
        return self._as_version(self.graph.current_version(dataset_id, when.replace(tzinfo=UTC), run_id))

    def _settled(self, version: _Version, run_id: int) -> _Version:
        """``version``, or the one before it when ``version`` is an observation that adds nothing to it
        (the same schema seen by a reader whose producer's version arrived later)."""
        if version.coverage != OBSERVED:
            return version
        before = self._find(_BEFORE, dataset_id=version.dataset_id, when=version.created_at.replace(tzinfo=UTC),
                            exclude=version.id, run_id=run_id)
        if before is not None and version.schema is not None and _same_schema(
                before.schema, [(str(f["name"]), f.get("type")) for f in version.schema]):
            return before
        return version

    def _next_observed(self, dataset_id: int, when: datetime, run_id: int,
                       schema: list[tuple[str, str | None]]) -> _Version | None:
        later = self._find(_NEXT, dataset_id=dataset_id, when=when.replace(tzinfo=UTC), run_id=run_id)
        if later is None or later.coverage != OBSERVED or not _same_schema(later.schema, schema):
            return None
        return later

    def _bind(self, dataset_id: int, run: _RunState, schema: list[tuple[str, str | None]] | None,
              uri: str | None) -> int:
        """The version a floating input of ``run`` binds to (creating an observed or unknown one)."""
        when = run.started_at
        version = self._current(dataset_id, when, run.id)
        if schema and (version is None or not _same_schema(version.schema, schema)):
            later = self._next_observed(dataset_id, when, run.id, schema)
            if later is not None:  # the same observation made by a later reader: it was there already
                self._set_created(later, when)
                return later.id
            return self._new_version(dataset_id, identity=None, when=when, produced_by=None, coverage=OBSERVED,
                                     schema=schema, uri=uri).id
        if version is not None:
            return version.id
        unknown = self._find(_UNKNOWN_VERSION, dataset_id=dataset_id)
        if unknown is None:
            return self._new_version(dataset_id, identity=None, when=when, produced_by=None, coverage=UNKNOWN,
                                     schema=None, uri=uri).id
        if when < unknown.created_at:
            self.graph.update("dataset_version", unknown.id, created_at=when.replace(tzinfo=UTC))
            unknown.created_at = when
        return unknown.id

    def _input(self, event: ParsedEvent, item: dict[str, Any]) -> None:
        run = self.runs[_run_uuid(event)]
        dataset_id = self.datasets[(item["namespace"], item["name"])]
        identity = _identity(item)
        schema = _schema(item)
        if identity is None:
            existing = self.edges.get((run.id, "input"), {}).get(dataset_id)
            if existing is not None and existing[1] is None:
                return  # another event of the run named its exact version
            if existing is not None and not schema:
                return
            version_id = self._bind(dataset_id, run, schema, dataset_uri(*item_key(item)))
            self._edge(run.id, "input", dataset_id, version_id, "time")
            return
        when = _naive(event.event_time)
        version = self._find(_BY_IDENTITY, dataset_id=dataset_id, identity=identity)
        if version is None:
            version = self._new_version(dataset_id, identity=identity, when=event.event_time, produced_by=None,
                                        coverage="none", schema=schema, uri=dataset_uri(*item_key(item)))
        else:
            if version.produced_by is None and when < version.created_at:
                self._set_created(version, when)
            if schema:
                self._add_fields(version.id, schema)
        self._edge(run.id, "input", dataset_id, version.id, None)

    def _edge(self, run_id: int, direction: str, dataset_id: int, version_id: int, binding: str | None) -> None:
        """The run's edge to ``dataset_id``: a pinned edge (exact version known) wins over a floating one
        (bound by time), which moves when its version changes."""
        edges = self.edges.setdefault((run_id, direction), {})
        found = edges.get(dataset_id)
        if found == (version_id, binding) or (found is not None and found[1] is None and binding is not None):
            return
        if binding is not None:
            self.bound_here.add((run_id, dataset_id))
        if found is None or (found[1] is None and binding is None):
            self.graph.insert_edges([{"run_id": run_id, "artifact_kind": "dataset", "artifact_id": version_id,
                                      "direction": direction, "binding": binding, "created_at": self.tx.time}])
        else:
            self.graph.move_edge(run_id, direction, found[0], version_id, binding)
            if found[0] != version_id:
                self._remap_lineage(run_id, found[0], version_id)
                self.emptied.add(found[0])
        edges[dataset_id] = (version_id, binding)

    # ----------------------------------------------------------------------------- column lineage
    def _input_version(self, run: _RunState, namespace: str, name: str) -> int:
        dataset_id = self.datasets[(namespace, name)]
        found = self.edges.get((run.id, "input"), {}).get(dataset_id)
        if found is not None:
            return found[0]
        self.report.inferred_inputs += 1
        version_id = self._bind(dataset_id, run, None, dataset_uri(namespace, name))
        self._edge(run.id, "input", dataset_id, version_id, "time")
        return version_id

    def _column_lineage(self, event: ParsedEvent, index: int, item: dict[str, Any], out_version: int) -> None:
        facet = _facets(item).get("columnLineage")
        if facet is None:
            return
        run = self.runs[_run_uuid(event)]
        base = f"outputs[{index}].facets.columnLineage"
        if not isinstance(facet, dict):
            self.report.unlinked[f"{base}: not an object"] += 1
            return
        fresh: list[dict[str, Any]] = []
        fields = facet.get("fields")
        versions = self._prepare_fields(run, fields, out_version)
        for out_name, spec in (fields.items() if isinstance(fields, dict) else ()):
            if not isinstance(spec, dict) or not isinstance(spec.get("inputFields"), list):
                self.report.unlinked["columnLineage.fields entry without an inputFields list"] += 1
                continue
            out_field = self._field_id(out_version, str(out_name))
            legacy = (spec.get("transformationType"), spec.get("transformationDescription"))
            for source in spec["inputFields"]:
                self._lineage_rows(run, source, (out_field, None), legacy, versions, fresh)
        for source in facet.get("dataset") or [] if isinstance(facet.get("dataset"), list) else []:
            self._lineage_rows(run, source, (None, out_version), (None, None), versions, fresh)
        if fresh:
            self.graph.insert_lineage(fresh)
            self.report.column_lineage += len(fresh)

    def _prepare_fields(self, run: _RunState, fields: Any, out_version: int) -> dict[tuple[str, str], int]:
        """Add the fields a ``columnLineage`` facet names that their versions lack, one statement per
        version (in the order the facet names them, as adding them one by one would); returns the
        input version of each source dataset named with a field."""
        wanted: dict[int, dict[str, None]] = {}
        versions: dict[tuple[str, str], int] = {}
        for out_name, spec in (fields.items() if isinstance(fields, dict) else ()):
            if not isinstance(spec, dict) or not isinstance(spec.get("inputFields"), list):
                continue
            wanted.setdefault(out_version, {})[str(out_name)] = None
            for source in spec["inputFields"]:
                if _field_source(source):
                    key = (source["namespace"], source["name"])
                    version_id = versions.get(key)
                    if version_id is None:
                        version_id = versions[key] = self._input_version(run, *key)
                    wanted.setdefault(version_id, {})[source["field"]] = None
        for version_id, names in wanted.items():
            have = self._names(version_id)
            if any(name not in have for name in names):
                self._add_fields(version_id, [(name, None) for name in names])
        return versions

    def _lineage_rows(self, run: _RunState, source: Any, output: tuple[int | None, int | None],
                      legacy: tuple[Any, Any], versions: dict[tuple[str, str], int],
                      fresh: list[dict[str, Any]]) -> None:
        """The rows of one input field of a ``columnLineage`` entry (``output``: the output field, or
        the output version of a dataset-level entry) not stored yet, added to ``fresh``."""
        if not _field_source(source):
            self.report.unlinked["columnLineage input field without namespace, name and field"] += 1
            return
        key = (source["namespace"], source["name"])
        version_id = versions.get(key)
        if version_id is None:  # a dataset-level entry's source (the field entries' are known)
            version_id = self._input_version(run, *key)
        in_field = self._field_id(version_id, source["field"])
        transformations = source.get("transformations")
        if not isinstance(transformations, list) or not transformations:
            kind = legacy[0] if legacy[0] in _TRANSFORMATION_TYPES else "DIRECT"
            transformations = [{"type": kind, "description": legacy[1]}]
        out_field, out_version = output
        for t in transformations:
            kind = t.get("type") if isinstance(t, dict) else None
            if kind not in _TRANSFORMATION_TYPES:
                self.report.unlinked[f"columnLineage transformation type not DIRECT or INDIRECT: {kind!r:.40}"] += 1
                continue
            subtype = t.get("subtype")
            subtype = subtype[:32] if isinstance(subtype, str) and subtype else None
            row_key = (run.id, out_field, out_version, in_field, kind, subtype)
            if row_key in self.lineage:
                continue
            self.lineage.add(row_key)
            description = t.get("description")
            masking = t.get("masking")
            fresh.append({"run_id": run.id, "output_field_id": out_field, "output_version_id": out_version,
                          "input_field_id": in_field, "transformation": kind, "subtype": subtype,
                          "description": description if isinstance(description, str) else None,
                          "masking": masking if isinstance(masking, bool) else None})

    def _remap_lineage(self, run_id: int, old_version: int, new_version: int) -> None:
        old = {i: n for n, i in self._field_names(old_version).items()}
        rows = self.execute(sa.select(_cl.c.id, _cl.c.input_field_id).where(
            _cl.c.run_id == run_id, _cl.c.input_field_id.in_(list(old)))).all() if old else []
        for row_id, field_id in rows:
            new_field = self._field_id(new_version, old[int(field_id)])
            self.graph.set_lineage_input(int(row_id), new_field)
        if rows:
            self.lineage = {(k[0], k[1], k[2], self._remapped(k[3], old, new_version), *k[4:])
                            if k[0] == run_id else k for k in self.lineage}

    def _remapped(self, field_id: int, old: dict[int, str], new_version: int) -> int:
        return self._field_id(new_version, old[field_id]) if field_id in old else field_id

    # ------------------------------------------------------------------------------------ models
    def _model_version(self, event: ParsedEvent, facet: dict[str, Any], direction: str) -> None:
        """A dataset with the ``governance_modelVersion`` facet is that model version (never a dataset
        named ``models/NAME``): our own events re-ingested give back the same graph."""
        run = self.runs[_run_uuid(event)]
        name, number = str(facet["name"])[:512], int(facet["version"])
        model_id = self.execute(sa.select(_m.c.id).where(_m.c.name == name)).scalar()
        if model_id is None:
            model_id = self.execute(sa.insert(_m).values(name=name, tags=[], created_at=self.tx.time)
                                    .returning(_m.c.id)).scalar_one()
        row = self.execute(sa.select(_mv.c.id, _mv.c.training_run_id).where(
            _mv.c.model_id == model_id, _mv.c.version == number)).first()
        text = {k: facet.get(key) if isinstance(facet.get(key), str) else None
                for k, key in (("artifact_hash", "artifactHash"), ("hash_algo", "hashAlgorithm"),
                               ("flavor", "flavor"), ("artifact_uri", "artifactUri"))}
        if row is None:
            version_id = self.execute(sa.insert(_mv).values(
                model_id=model_id, version=number, params={}, metrics={}, card={}, features=[],
                training_run_id=run.id if direction == "output" else None, created_at=event.event_time,
                **text).returning(_mv.c.id)).scalar_one()
        else:
            version_id = row.id
            if direction == "output" and row.training_run_id is None:
                self.execute(sa.update(_mv).where(_mv.c.id == version_id).values(training_run_id=run.id))
        found = self.execute(sa.select(_io.c.id).where(
            _io.c.run_id == run.id, _io.c.artifact_kind == "model", _io.c.artifact_id == version_id,
            _io.c.direction == direction)).first()
        if found is None:
            self.graph.insert_edges([{"run_id": run.id, "artifact_kind": "model", "artifact_id": int(version_id),
                                      "direction": direction, "created_at": self.tx.time}])
        self.models.add(f"{name}@{number}")

    # -------------------------------------------------------------------------------- metadata
    def _dataset_event(self, event: ParsedEvent) -> None:
        item = event.doc["dataset"]
        dataset_id = self.datasets[(item["namespace"], item["name"])]
        documentation = _facets(item).get("documentation")
        if isinstance(documentation, dict) and isinstance(documentation.get("description"), str):
            self.graph.update("dataset", dataset_id, description=documentation["description"])
        identity, schema = _identity(item), _schema(item)
        if identity is not None:
            version = self._find(_BY_IDENTITY, dataset_id=dataset_id, identity=identity)
            if version is None:
                self._new_version(dataset_id, identity=identity, when=event.event_time, produced_by=None,
                                  coverage="none", schema=schema, uri=dataset_uri(*item_key(item)))
            elif schema:
                self._add_fields(version.id, schema)

    def _job_event(self, event: ParsedEvent) -> None:
        job = event.doc["job"]
        documentation = _facets(job).get("documentation")
        if isinstance(documentation, dict) and isinstance(documentation.get("description"), str):
            self.graph.update("job", self.jobs[(job["namespace"], job["name"])],
                              description=documentation["description"])

    # --------------------------------------------------------------------------------- re-binding
    def _rebind(self) -> None:
        """Floating inputs whose binding may have changed: of runs whose start moved, and of datasets
        that got a version (or whose version moved) at or before the run's start."""
        candidates: dict[int, tuple[int, int, int]] = {}  # edge id -> (run id, dataset id, version id)
        moved_runs = [s.id for s in self.runs.values() if s.start_moved]
        query = _FLOATING
        starts: dict[int, datetime] = {}
        for chunk in chunks(moved_runs):
            for row in self.execute(query.where(_io.c.run_id.in_(chunk))):
                candidates[int(row.id)] = (int(row.run_id), int(row.dataset_id), int(row.artifact_id))
                starts[int(row.run_id)] = _naive(row.started_at)
        earliest = min(self.moved.values(), default=None)
        since_ids = [int(r.id) for r in _RUNS_SINCE.all(self.raw, since=earliest.replace(tzinfo=UTC))] \
            if earliest is not None else []
        rows = [row for chunk in chunks(since_ids) for row in self.execute(query.where(_io.c.run_id.in_(chunk)))]
        for row in rows:
            dataset_id = int(row.dataset_id)
            since = self.moved.get(dataset_id)
            if since is None or _naive(row.started_at) < since:
                continue
            if dataset_id not in self.moved_late and (int(row.run_id), dataset_id) in self.bound_here:
                continue  # bound after every version of this batch was in place
            candidates[int(row.id)] = (int(row.run_id), dataset_id, int(row.artifact_id))
            starts[int(row.run_id)] = _naive(row.started_at)
        by_id = {s.id: s for s in self.runs.values()}
        for run_id, dataset_id, version_id in candidates.values():
            run = by_id.get(run_id) or _RunState(run_id, 0, starts[run_id], "", None)
            later = self._find(_NEXT, dataset_id=dataset_id, when=run.started_at.replace(tzinfo=UTC), run_id=run_id)
            if later is not None and later.id == version_id and later.coverage == OBSERVED:
                self._set_created(later, run.started_at)  # what the run saw was there when it started
            current = self._current(dataset_id, run.started_at, run_id)
            if current is not None:
                current = self._settled(current, run_id)
            target = current.id if current is not None else self._bind(dataset_id, run, None, None)
            if target == version_id:
                continue
            edges = self.edges.setdefault((run_id, "input"), {})
            edges[dataset_id] = (version_id, "time")
            self._edge(run_id, "input", dataset_id, target, "time")
            self.report.rebound += 1
        for version_id in sorted(self.emptied):
            self._drop_if_unused(version_id)

    def _drop_if_unused(self, version_id: int) -> None:
        row = self.execute(sa.select(_dv.c.coverage, _dv.c.produced_by_run_id).where(_dv.c.id == version_id)
                           ).first()
        if row is None or row.coverage not in (OBSERVED, UNKNOWN) or row.produced_by_run_id is not None:
            return
        used = self.execute(sa.select(_io.c.id).where(_io.c.artifact_kind == "dataset",
                                                      _io.c.artifact_id == version_id).limit(1)).first()
        if used is not None:
            return
        field_ids = list(self._field_names(version_id).values())
        if field_ids and self.execute(sa.select(_cl.c.id).where(sa.or_(
                _cl.c.input_field_id.in_(field_ids), _cl.c.output_field_id.in_(field_ids))).limit(1)).first():
            return
        from governance.catalog import Evidence

        evidence = cast(sa.Table, sa.inspect(Evidence).local_table)
        if self.execute(sa.select(evidence.c.id).where(evidence.c.dataset_version_id == version_id)
                        .limit(1)).first() is not None:
            return
        self.graph.delete_version(version_id)
        self.fields.pop(version_id, None)
        self.versions.pop(version_id, None)
        self.removed += 1

    # ------------------------------------------------------------------------------------- audit
    def _record(self, events: list[ParsedEvent]) -> None:
        if not events:
            return
        now = utcnow()
        rows = []
        for event in events:
            key = _key(event)
            rows.append({"run_uuid": key[0], "event_type": key[1], "event_time": key[2][:64],
                         "producer": str(event.doc.get("producer"))[:2000], "created_at": now})
            self.keys.append([key[0], key[1], key[2], event.location])
            self.report.kinds[event.kind] += 1
        self.execute(sa.insert(_ie), rows)
        self.report.imported += len(events)
        self.tx.record("openlineage.ingest", "openlineage:ingest", {
            "events": self.keys, "count": len(events), "rebound": self.report.rebound,
            "removed_versions": self.removed, "model_versions": sorted(self.models),
        })


def _field_source(source: Any) -> bool:
    """Whether a ``columnLineage`` input field names its namespace, dataset and field."""
    if not isinstance(source, dict):
        return False
    namespace, name, field_name = source.get("namespace"), source.get("name"), source.get("field")
    return isinstance(namespace, str) and isinstance(name, str) and isinstance(field_name, str) and \
        bool(namespace and name and field_name)


def item_key(item: dict[str, Any]) -> tuple[str, str]:
    return item["namespace"], item["name"]
