"""A finished run as data (:class:`RunRecord`) and the one transaction that writes it.

A run is written once, when it ends: run row, job, dataset and model versions, ``RunIO`` edges,
fields, column lineage, audit events and the OpenLineage START and COMPLETE/FAIL outbox rows, all in
one audited transaction.  A nested step whose parent is still running writes the parent's row as
``RUNNING`` first (with its START event); the parent's own write later completes that row.

Writing is idempotent on ``run_uuid``: a run already stored with a final status is left alone, which
is what makes spool replay safe to repeat.

The write goes through the one writer of the lineage graph (:class:`governance.openlineage.GraphWriter`,
shared with OpenLineage ingest): an input with no stored version of its content is bound by the graph's
one rule, the version current when the step started.  It is on the decorated step's critical path, so
it runs about a dozen precompiled Core statements (inserts with ``RETURNING id``, ``executemany`` for
edges, fields and column lineage; the fields of all the run's dataset versions in one query), hands the
rows it inserts to the audit layer so they are digested without being read back, and keeps per process,
per catalog object, the ids of rows that never change once committed (jobs and datasets by name,
dataset versions by dataset and content), merged only after the transaction commits.  Column statistics
are computed only for new dataset versions, once per content within a run.  Tags travel along the
column lineage by the rules of :mod:`governance.lineage._propagation`.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import col, select

from governance.audit import AuditedTransaction, audited
from governance.catalog import (
    Catalog,
    DatasetField,
    DatasetVersion,
    ModelVersion,
    RawConnection,
    RunIO,
    Statement,
)
from governance.errors import InputError
from governance.lineage._adapters import DatasetCapture, ModelCapture
from governance.lineage._model_versions import get_or_create_model, record_model_version
from governance.lineage._propagation import inherit, propagates
from governance.openlineage import GraphWriter, schema_fields

__all__ = ["ID_CACHE", "IdCache", "RunFrame", "RunRecord", "write_run"]

FINAL = ("COMPLETED", "FAILED", "ABORTED")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _started(doc: Mapping[str, Any]) -> datetime:
    """A spooled run's (or frame's) start, which it always has."""
    started = _parse(doc["started_at"])
    if started is None:
        raise InputError(f"run {doc.get('run_uuid')!r}: started_at is missing")
    return started


@dataclass(frozen=True)
class RunFrame:
    """What a nested step knows about a run that encloses it (held in the run ContextVar)."""

    run_uuid: str
    job: str
    namespace: str
    kind: str
    started_at: datetime
    source_file: str | None = None
    parent: RunFrame | None = None

    def ancestors(self) -> list[RunFrame]:
        chain: list[RunFrame] = []
        frame: RunFrame | None = self
        while frame is not None:
            chain.append(frame)
            frame = frame.parent
        return chain

    def to_json(self) -> dict[str, Any]:
        return {
            "run_uuid": self.run_uuid,
            "job": self.job,
            "namespace": self.namespace,
            "kind": self.kind,
            "started_at": _iso(self.started_at),
            "source_file": self.source_file,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunFrame:
        return cls(doc["run_uuid"], doc["job"], doc["namespace"], doc["kind"], _started(doc), doc.get("source_file"))


@dataclass
class RunRecord:
    """Everything a step learned about one call; JSON-serialisable for the spool."""

    run_uuid: str
    job: str
    namespace: str
    kind: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    actor: str
    params: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    host: str | None = None
    code_hash: str | None = None
    source_file: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    ancestors: list[RunFrame] = field(default_factory=list)  # nearest first
    datasets: list[DatasetCapture] = field(default_factory=list)
    models: list[ModelCapture] = field(default_factory=list)
    derived: list[tuple[str, str, str]] = field(default_factory=list)  # (output col, input col, DIRECT|INDIRECT)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "governance.run/v1",
            "run_uuid": self.run_uuid,
            "job": self.job,
            "namespace": self.namespace,
            "kind": self.kind,
            "status": self.status,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at) if self.ended_at else None,
            "actor": self.actor,
            "params": self.params,
            "environment": self.environment,
            "user": self.user,
            "host": self.host,
            "code_hash": self.code_hash,
            "source_file": self.source_file,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "error_traceback": self.error_traceback,
            "ancestors": [a.to_json() for a in self.ancestors],
            "datasets": [d.to_json() for d in self.datasets],
            "models": [m.to_json() for m in self.models],
            "derived": [list(d) for d in self.derived],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunRecord:
        started = _started(doc)
        return cls(
            run_uuid=doc["run_uuid"],
            job=doc["job"],
            namespace=doc["namespace"],
            kind=doc["kind"],
            status=doc["status"],
            started_at=started,
            ended_at=_parse(doc.get("ended_at")),
            actor=doc["actor"],
            params=doc.get("params") or {},
            environment=doc.get("environment") or {},
            user=doc.get("user"),
            host=doc.get("host"),
            code_hash=doc.get("code_hash"),
            source_file=doc.get("source_file"),
            git_commit=doc.get("git_commit"),
            git_dirty=doc.get("git_dirty"),
            error_type=doc.get("error_type"),
            error_message=doc.get("error_message"),
            error_traceback=doc.get("error_traceback"),
            ancestors=[RunFrame.from_json(a) for a in doc.get("ancestors") or []],
            datasets=[DatasetCapture.from_json(d) for d in doc.get("datasets") or []],
            models=[ModelCapture.from_json(m) for m in doc.get("models") or []],
            derived=[(str(a), str(b), str(c)) for a, b, c in doc.get("derived") or []],
        )


# ------------------------------------------------------------------------------------------ write
@functools.cache
def _events() -> tuple[Any, Any]:
    from governance.openlineage import enqueue_events, kick_shipper

    return enqueue_events, kick_shipper


def _table(model: Any) -> sa.Table:
    return cast(sa.Table, sa.inspect(model).local_table)


_dv, _f, _io = (_table(m) for m in (DatasetVersion, DatasetField, RunIO))
_RUN_VALUES = (
    "status", "ended_at", "params", "environment", "user", "host", "code_hash", "source_file", "git_commit",
    "git_dirty", "error_type", "error_message", "error_traceback",
)  # fmt: skip

# reads of capture's own identity rules (writes go through the graph writer)
_REUSABLE = Statement(  # an input whose content is already in the catalog (e.g. another step's output)
    sa.select(_dv.c.id, _dv.c.version)
    .where(_dv.c.content_hash == sa.bindparam("content_hash"), _dv.c.hash_algo == sa.bindparam("hash_algo"))
    .order_by(sa.case((_dv.c.produced_by_run_id.is_(None), 1), else_=0), _dv.c.id.desc())
    .limit(1)
)
_VERSION_BY_HASH = Statement(
    sa.select(_dv.c.id, _dv.c.version)
    .where(
        _dv.c.dataset_id == sa.bindparam("dataset_id"),
        _dv.c.content_hash == sa.bindparam("content_hash"),
        _dv.c.hash_algo == sa.bindparam("hash_algo"),
    )
    # "+ 0": ordering by the bare column makes SQLite walk the (dataset_id, version) unique index over
    # every version of the dataset instead of seeking (dataset_id, content_hash)
    .order_by((_dv.c.version + 0).desc())
    .limit(1)
)
_OUTPUT_WITHOUT_HASH = Statement(  # an output by reference only (no content hash): its latest such version
    sa.select(_dv.c.id, _dv.c.version)
    .where(_dv.c.dataset_id == sa.bindparam("dataset_id"), _dv.c.content_hash.is_(None))
    .order_by(_dv.c.version.desc())
    .limit(1)
)
# identities producers send as their datasetVersion (a Delta version, an Iceberg snapshot id)
_INGESTED_ALIKE = frozenset({"delta-version", "iceberg-snapshot"})
_FIELDS_OF_RUN = Statement(
    sa.select(_f.c.id, _f.c.dataset_version_id, _f.c.name, _f.c.tags)
    .where(
        _f.c.dataset_version_id.in_(
            sa.select(_io.c.artifact_id)
            .where(_io.c.run_id == sa.bindparam("run_id"), _io.c.artifact_kind == sa.literal_column("'dataset'"))
            .scalar_subquery()
        )
    )
    .order_by(_f.c.id)
)

_MAX_CACHED = 50_000


class _CatalogIds:
    """Ids of rows that never change once committed: jobs and datasets by name, dataset versions by
    (dataset, content).  Entries are added only after the transaction that read or wrote them commits."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = weakref.ref(catalog)
        self.url = catalog.url
        self.jobs: dict[tuple[str, str], int] = {}
        self.datasets: dict[tuple[str, str], int] = {}
        self.versions: dict[tuple[int, str, str], tuple[int, int]] = {}
        self.contents: set[tuple[str, str]] = set()  # (content_hash, algo) of versions in the catalog

    def merge(self, pending: _CatalogIds) -> None:
        if len(self.versions) + len(pending.versions) > _MAX_CACHED:
            self.versions.clear()
        if len(self.contents) + len(pending.contents) > _MAX_CACHED:
            self.contents.clear()
        self.contents.update(pending.contents)
        if len(self.datasets) + len(self.jobs) > _MAX_CACHED:
            self.datasets.clear()
            self.jobs.clear()
        self.jobs.update(pending.jobs)
        self.datasets.update(pending.datasets)
        self.versions.update(pending.versions)


class IdCache:
    """Per-process cache of immutable catalog ids, for the one catalog written last (a write to a
    different catalog object starts a new cache)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: _CatalogIds | None = None

    def for_catalog(self, catalog: Catalog) -> _CatalogIds:
        current = self._current
        if current is None or current.catalog() is not catalog:
            with self._lock:
                current = self._current
                if current is None or current.catalog() is not catalog:
                    current = self._current = _CatalogIds(catalog)
        return current

    def commit(self, catalog: Catalog, pending: _CatalogIds) -> None:
        with self._lock:
            current = self._current
            if current is not None and current.catalog() is catalog:
                current.merge(pending)

    def knows_content(self, content_hash: str, hash_algo: str, catalog: Catalog | None, url: str) -> bool:
        """Whether a dataset version with this content was seen in the catalog a step will write to
        (``catalog``, or the configured ``url`` when None).  A hint: inputs with unseen content get
        their statistics computed before the step can change them in place."""
        current = self._current
        if current is None or (current.catalog() is not catalog if catalog is not None else current.url != url):
            return False
        return (content_hash, hash_algo) in current.contents

    def clear(self) -> None:
        with self._lock:
            self._current = None


ID_CACHE = IdCache()


class _Writer:
    """One run's write: the graph writer, the committed id cache and the ids learnt in this transaction."""

    def __init__(self, tx: AuditedTransaction, known: _CatalogIds, pending: _CatalogIds) -> None:
        self.tx = tx
        self.graph = GraphWriter(tx)
        self.scope = tx.scope  # no ORM session unless a model version needs one
        self.raw = tx.raw
        self.known = known
        self.pending = pending
        self.stats: dict[tuple[str, str], dict[str, Any]] = {}

    def job_id(self, namespace: str, name: str, kind: str, source_file: str | None) -> int:
        key = (namespace, name)
        found = self.known.jobs.get(key) or self.pending.jobs.get(key)
        if found is None:
            found = self.pending.jobs[key] = self.graph.job_id(namespace, name, kind, source_file)
        return found

    def dataset_id(self, cap: DatasetCapture) -> int:
        key = (cap.namespace, cap.name)
        found = self.known.datasets.get(key) or self.pending.datasets.get(key)
        if found is None:
            found = self.pending.datasets[key] = self.graph.dataset_id(cap.namespace, cap.name, cap.kind, cap.uri)
        return found

    def stats_of(self, cap: DatasetCapture) -> dict[str, Any] | None:
        """The capture's column statistics; computed once per content in a run (an unchanged frame
        passed through a step is a new version of two datasets with the same content)."""
        key = (cap.content_hash, cap.hash_algo or "") if cap.content_hash else None
        if key is not None and cap.stats_pending and key in self.stats:
            cap.stats = self.stats[key]
        stats = cap.ensure_stats()
        if key is not None and stats is not None:
            self.stats.setdefault(key, stats)
        return stats


def _ensure_ancestors(w: _Writer, ancestors: list[RunFrame], enqueue: Any) -> int | None:
    """Run ids of the enclosing runs, inserting RUNNING rows for those not written yet."""
    parent_id: int | None = None
    for frame in reversed(ancestors):  # outermost first
        found = w.graph.run_by_uuid(frame.run_uuid)
        if found is None:
            job_id = w.job_id(frame.namespace, frame.job, frame.kind, frame.source_file)
            run_id = w.graph.insert_run({
                "run_uuid": frame.run_uuid, "job_id": job_id, "parent_run_id": parent_id,
                "started_at": frame.started_at, "status": "RUNNING", "params": {}, "environment": {},
                "source_file": frame.source_file,
            })
            w.tx.record(
                "run.start",
                f"run:{frame.run_uuid}",
                {"run_uuid": frame.run_uuid, "job": frame.job, "namespace": frame.namespace},
            )
            enqueue(w.scope, frame.run_uuid, [("START", frame.started_at)])
        else:
            run_id = found[0]
        parent_id = run_id
    return parent_id


@dataclass
class _Resolved:
    dv_id: int
    cap: DatasetCapture
    fields: dict[str, _Field] = field(default_factory=dict)


@dataclass
class _Field:
    id: int
    tags: list[str]
    stored: list[str]


def _consumed(w: _Writer, cap: DatasetCapture, dataset_id: int, run_id: int, started_at: datetime) -> int | None:
    """The version an input consumed when our fingerprint names none in the catalog: by the graph's one
    rule (:meth:`GraphWriter.current_version`), the version current when the step started.  A table
    read by reference (no content hash) is that version; a hashed one only when another producer (an
    ingested Spark, Airflow or dbt run) recorded it, its identity being theirs (a Delta version, a
    snapshot id), not our fingerprint.  None: the step read content the catalog has not seen."""
    row = w.graph.current_version(dataset_id, started_at, run_id)
    if row is None:
        return None
    external = row.hash_algo == "openlineage" or (row.content_hash is None and row.produced_by_run_id)
    if cap.content_hash and not external:
        return None
    return int(row.id)


def _existing_version(w: _Writer, cap: DatasetCapture, dataset_id: int) -> int | None:
    """A stored version with the capture's identity (content hash; an output by reference: its latest)."""
    key = (dataset_id, cap.content_hash, cap.hash_algo or "") if cap.content_hash else None
    if key is None:
        row = None if cap.direction == "input" else _OUTPUT_WITHOUT_HASH.first(w.raw, dataset_id=dataset_id)
        return None if row is None else int(row[0])
    cached = w.known.versions.get(key) or w.pending.versions.get(key)
    if cached is not None:
        return cached[0]
    row = _VERSION_BY_HASH.first(w.raw, dataset_id=dataset_id, content_hash=cap.content_hash, hash_algo=cap.hash_algo)
    if row is None and cap.hash_algo in _INGESTED_ALIKE:
        # a Delta version or Iceberg snapshot ingested from a Spark job's OpenLineage event is the same
        # table version
        row = _VERSION_BY_HASH.first(w.raw, dataset_id=dataset_id, content_hash=cap.content_hash,
                                     hash_algo="openlineage")
    if row is None:
        return None
    w.pending.versions[key] = (int(row[0]), int(row[1]))
    return int(row[0])


def _dataset_version(w: _Writer, cap: DatasetCapture, run_id: int, run_uuid: str, started_at: datetime) -> _Resolved:
    if cap.content_hash:
        w.pending.contents.add((cap.content_hash, cap.hash_algo or ""))
    if cap.reuse_any and cap.content_hash:
        row = _REUSABLE.first(w.raw, content_hash=cap.content_hash, hash_algo=cap.hash_algo)
        if row is not None:
            return _Resolved(int(row[0]), cap)
    dataset_id = w.dataset_id(cap)
    found = _existing_version(w, cap, dataset_id)
    if found is None and cap.direction == "input" and not cap.reuse_any:
        found = _consumed(w, cap, dataset_id, run_id, started_at)  # our fingerprint stays in the audit event
    if found is not None:
        return _Resolved(found, cap)
    return _Resolved(_new_version(w, cap, dataset_id, run_id, run_uuid), cap)


def _new_version(w: _Writer, cap: DatasetCapture, dataset_id: int, run_id: int, run_uuid: str) -> int:
    dv_id, version = w.graph.insert_version(
        dataset_id,
        content_hash=cap.content_hash,
        hash_algo=cap.hash_algo,
        coverage=cap.coverage,
        schema_hash=cap.schema_hash,
        schema_fields=schema_fields((f["name"], f.get("dtype"), f.get("hash")) for f in cap.fields),
        row_count=cap.row_count,
        byte_size=cap.byte_size,
        stats=w.stats_of(cap),
        uri=cap.uri,
        produced_by_run_id=run_id if cap.direction == "output" else None,
        created_at=w.tx.time,
    )
    unique: dict[str, dict[str, Any]] = {}
    for i, f in enumerate(cap.fields):
        unique.setdefault(f["name"], {"dataset_version_id": dv_id, "name": f["name"], "dtype": f.get("dtype"),
                                      "position": int(f.get("position", i)), "tags": list(f.get("tags") or [])})
    w.graph.insert_fields(list(unique.values()))
    if cap.content_hash:
        w.pending.versions[(dataset_id, cap.content_hash, cap.hash_algo or "")] = (dv_id, version)
    w.tx.record(
        "dataset_version.create",
        f"dataset:{cap.namespace}/{cap.name}@{version}",
        {
            "namespace": cap.namespace,
            "name": cap.name,
            "version": version,
            "content_hash": cap.content_hash,
            "hash_algo": cap.hash_algo,
            "row_count": cap.row_count,
            "run_uuid": run_uuid,
        },
    )
    return dv_id


def _load_fields(raw: RawConnection, run_id: int, resolved: list[_Resolved]) -> None:
    """The fields of every dataset version of the run (one query), with the capture's tags merged in."""
    if not any(res.cap.fields for res in resolved):
        return
    by_version: dict[int, dict[str, _Field]] = {}
    for field_id, dv_id, name, tags in _FIELDS_OF_RUN.all(raw, run_id=run_id):
        stored = list(tags or [])
        by_version.setdefault(int(dv_id), {})[name] = _Field(int(field_id), list(stored), stored)
    for res in resolved:
        res.fields = by_version.get(res.dv_id, {})
        for item in res.cap.fields:
            existing = res.fields.get(item["name"])
            if existing is not None:
                existing.tags += [t for t in item.get("tags") or () if t not in existing.tags]


_LineageKey = tuple[int | None, int | None, int, str, str | None]  # out field, out version, in field, type, subtype


def _plan_edges(res: _Resolved, inputs: list[_Resolved], edges: dict[_LineageKey, bool | None]) -> None:
    """The column lineage an adapter derived for ``res`` (a Spark plan): exact links to the inputs'
    columns, with OpenLineage's subtypes; dataset-level links name the output version."""
    by_dataset: dict[tuple[str, str], list[_Resolved]] = {}
    for inp in inputs:
        by_dataset.setdefault((inp.cap.namespace, inp.cap.name), []).append(inp)
    for link in res.cap.column_lineage or ():
        out_name = link.get("output")
        out_field = res.fields.get(out_name) if out_name is not None else None
        if out_name is not None and out_field is None:
            continue
        kind, subtype = str(link.get("type") or "DIRECT"), link.get("subtype")
        for inp in by_dataset.get((str(link.get("namespace")), str(link.get("name"))), ()):
            in_field = inp.fields.get(str(link.get("field")))
            if in_field is None:
                continue
            key = (None if out_field is None else out_field.id, res.dv_id if out_field is None else None,
                   in_field.id, kind, subtype)
            masking = link.get("masking")
            edges[key] = None if masking is None and edges.get(key) is None else bool(edges.get(key)) or bool(masking)
            if out_field is not None and propagates(kind, subtype):
                # a link without a subtype is a same-named column of a non-Spark input (linked by name)
                inherit(out_field.tags, in_field.tags, kind == "DIRECT" and subtype in ("IDENTITY", None))


def _column_lineage(
    run_id: int, inputs: list[_Resolved], outputs: list[_Resolved], derived: list[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    """Column lineage rows of one run: from the lineage an adapter derived (a Spark plan) where there is
    one, else by name (a column keeping an input column's name comes from it); plus the step's
    declared ``derived`` columns."""
    by_name: dict[str, list[_Field]] = {}
    for res in inputs:
        for name, fld in res.fields.items():
            by_name.setdefault(name, []).append(fld)
    if not by_name:
        return []
    edges: dict[_LineageKey, bool | None] = {}
    for res in outputs:
        if res.cap.column_lineage is not None:
            _plan_edges(res, inputs, edges)
        for name, out_field in res.fields.items():
            if res.cap.column_lineage is None:
                for in_field in by_name.get(name, ()):
                    # a column that keeps an input column's name is that column, passed through (same
                    # content) or carried with rows filtered, reordered or values recomputed in place;
                    # either way its values come from it and it keeps its tags
                    edges[(out_field.id, None, in_field.id, "DIRECT", None)] = None
                    inherit(out_field.tags, in_field.tags, True)
            for out_col, in_col, transformation in derived:
                if out_col != name:
                    continue
                for in_field in by_name.get(in_col, ()):
                    if not any(k[0] == out_field.id and k[2] == in_field.id for k in edges):
                        edges[(out_field.id, None, in_field.id, transformation, None)] = None
                    inherit(out_field.tags, in_field.tags, False)
    return [
        {"run_id": run_id, "output_field_id": o, "output_version_id": v, "input_field_id": i,
         "transformation": t, "subtype": st, "masking": m}
        for (o, v, i, t, st), m in sorted(edges.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1] or 0, kv[0][2],
                                                                          kv[0][3], kv[0][4] or ""))
    ]


def _audit_summary(record: RunRecord) -> dict[str, Any]:
    return {
        "run_uuid": record.run_uuid,
        "job": record.job,
        "namespace": record.namespace,
        "kind": record.kind,
        "status": record.status,
        "code_hash": record.code_hash,
        "git_commit": record.git_commit,
        "error_type": record.error_type,
        "inputs": [f"{d.namespace}/{d.name}:{d.content_hash}" for d in record.datasets if d.direction == "input"],
        "outputs": [f"{d.namespace}/{d.name}:{d.content_hash}" for d in record.datasets if d.direction == "output"],
    }


def write_run(catalog: Catalog, record: RunRecord, *, replayed_by: str | None = None) -> bool:
    """Write one finished run; False when a run with this uuid is already stored as finished.

    A spooled run replayed by ``gov sync`` is recorded under ``replayed_by`` (who replays it); the
    identity the spool line claims is kept as data (``claimed_actor``), never believed.
    """
    enqueue, kick = _events()
    known = ID_CACHE.for_catalog(catalog)
    pending = _CatalogIds(catalog)
    with audited(catalog, replayed_by or record.actor) as tx:
        w = _Writer(tx, known, pending)
        existing = w.graph.run_by_uuid(record.run_uuid)
        if existing is not None and existing[1] in FINAL:
            return False
        action = "run.complete" if record.status == "COMPLETED" else "run.fail"
        summary = _audit_summary(record)
        if replayed_by is not None:
            summary = {**summary, "replayed_from_spool": True, "claimed_actor": record.actor}
        tx.record(action, f"run:{record.run_uuid}", summary)
        run_id = _write_run_row(w, record, existing, enqueue)
        inputs, outputs = _write_edges(w, record, run_id)
        _load_fields(w.raw, run_id, [*inputs, *outputs])
        w.graph.insert_lineage(_column_lineage(run_id, inputs, outputs, record.derived))
        changed = {
            fld.id: fld.tags for res in (*inputs, *outputs) for fld in res.fields.values() if fld.tags != fld.stored
        }
        w.graph.set_field_tags([{"row_id": k, "tags": v} for k, v in sorted(changed.items())])
        final = ("COMPLETE" if record.status == "COMPLETED" else "FAIL", record.ended_at or tx.time)
        # START (a run first written now) and its end, in that order; documents are built when shipped
        enqueue(w.scope, record.run_uuid, [("START", record.started_at), final] if existing is None else [final])
    ID_CACHE.commit(catalog, pending)
    kick(catalog)
    return True


def _write_run_row(w: _Writer, record: RunRecord, existing: tuple[int, str] | None, enqueue: Any) -> int:
    """The run's row: inserted (after its enclosing runs), or the RUNNING row a nested step wrote completed."""
    job_id = w.job_id(record.namespace, record.job, record.kind, record.source_file)
    parent_id = _ensure_ancestors(w, record.ancestors, enqueue)
    values = {name: getattr(record, name) for name in _RUN_VALUES}
    if existing is None:
        return w.graph.insert_run({"run_uuid": record.run_uuid, "job_id": job_id, "parent_run_id": parent_id,
                                   "started_at": record.started_at, **values})
    w.graph.update("run", existing[0], **values)
    return existing[0]


def _write_edges(w: _Writer, record: RunRecord, run_id: int) -> tuple[list[_Resolved], list[_Resolved]]:
    """The versions the run read and wrote (inputs first) and its ``run_io`` edges to them."""
    edges: list[dict[str, Any]] = []
    inputs: list[_Resolved] = []
    outputs: list[_Resolved] = []
    when = w.tx.time
    for direction, resolved in (("input", inputs), ("output", outputs)):
        for cap in record.datasets:
            if cap.direction == direction:
                res = _dataset_version(w, cap, run_id, record.run_uuid, record.started_at)
                resolved.append(res)
                edges.append(_edge(run_id, "dataset", res.dv_id, direction, cap.role, when))
        for mcap in record.models:
            if mcap.direction == direction:
                mv = _model_version(w.tx, mcap, run_id, record.job)
                edges.append(_edge(run_id, "model", int(mv.id or 0), direction, mcap.role, when))
    w.graph.insert_edges(edges)
    return inputs, outputs


def _edge(run_id: int, kind: str, artifact_id: int, direction: str, role: str, when: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "artifact_kind": kind,
        "artifact_id": artifact_id,
        "direction": direction,
        "role": role,
        "created_at": when,
    }


def _model_version(tx: AuditedTransaction, cap: ModelCapture, run_id: int, job: str) -> ModelVersion:
    session = tx.session
    stmt = select(ModelVersion).where(ModelVersion.artifact_hash == cap.artifact_hash)
    if cap.model_name:
        model = get_or_create_model(tx, cap.model_name)
        stmt = stmt.where(ModelVersion.model_id == model.id)
    found = session.exec(stmt.order_by(col(ModelVersion.id)).limit(1)).first()
    if found is not None:
        return found
    name = cap.model_name or f"{job}.{cap.role}"
    return record_model_version(
        tx,
        name,
        artifact_hash=cap.artifact_hash,
        hash_algo=cap.hash_algo,
        artifact_uri=cap.artifact_uri,
        flavor=cap.flavor,
        params=cap.params,
        features=cap.features,
        training_run_id=run_id if cap.direction == "output" else None,
    )
