"""A finished run as data (:class:`RunRecord`) and the one transaction that writes it.

A run is written once, when it ends: run row, job, dataset and model versions, ``RunIO`` edges,
fields, column lineage, audit events and the OpenLineage START and COMPLETE/FAIL outbox rows, all in
one audited transaction.  A nested step whose parent is still running writes the parent's row as
``RUNNING`` first (with its START event); the parent's own write later completes that row.

Writing is idempotent on ``run_uuid``: a run already stored with a final status is left alone, which
is what makes spool replay safe to repeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.audit import AuditedTransaction, audited
from governance.catalog import (
    Catalog,
    ColumnLineage,
    Dataset,
    DatasetField,
    DatasetVersion,
    Job,
    ModelVersion,
    Run,
    RunIO,
)
from governance.lineage._adapters import DatasetCapture, ModelCapture
from governance.lineage._model_versions import get_or_create_model, record_model_version
from governance.lineage._tags import PASSTHROUGH_TAGS, PROXY_PREFIX, PROXY_TAGS

__all__ = ["RunFrame", "RunRecord", "write_run"]

FINAL = ("COMPLETED", "FAILED", "ABORTED")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


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
        started = _parse(doc["started_at"])
        assert started is not None
        return cls(doc["run_uuid"], doc["job"], doc["namespace"], doc["kind"], started, doc.get("source_file"))


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
        started = _parse(doc["started_at"])
        assert started is not None
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
def _events() -> tuple[Any, Any]:
    from governance.openlineage import enqueue_run_event, kick_shipper

    return enqueue_run_event, kick_shipper


def _job(session: Session, namespace: str, name: str, kind: str, source_file: str | None) -> Job:
    job = session.exec(select(Job).where(Job.namespace == namespace, Job.name == name)).first()
    if job is None:
        job = Job(namespace=namespace, name=name, kind=kind, source_file=source_file)
        session.add(job)
        session.flush()
    return job


def _run_by_uuid(session: Session, run_uuid: str) -> Run | None:
    return session.exec(select(Run).where(Run.run_uuid == run_uuid)).first()


def _ensure_ancestors(tx: AuditedTransaction, ancestors: list[RunFrame], enqueue: Any) -> int | None:
    """Run ids of the enclosing runs, inserting RUNNING rows for those not written yet."""
    parent_id: int | None = None
    for frame in reversed(ancestors):  # outermost first
        run = _run_by_uuid(tx.session, frame.run_uuid)
        if run is None:
            job = _job(tx.session, frame.namespace, frame.job, frame.kind, frame.source_file)
            run = Run(
                run_uuid=frame.run_uuid,
                job_id=int(job.id or 0),
                parent_run_id=parent_id,
                status="RUNNING",
                started_at=frame.started_at,
                source_file=frame.source_file,
            )
            tx.session.add(run)
            tx.session.flush()
            tx.record(
                "run.start",
                f"run:{frame.run_uuid}",
                {"run_uuid": frame.run_uuid, "job": frame.job, "namespace": frame.namespace},
            )
            enqueue(tx.session, int(run.id or 0), "START")
        parent_id = run.id
    return parent_id


def _find_reusable(session: Session, cap: DatasetCapture) -> DatasetVersion | None:
    """An input whose content is already in the catalog (e.g. another step's output) reuses that version."""
    produced_last = sa.case((col(DatasetVersion.produced_by_run_id).is_(None), 1), else_=0)
    return session.exec(
        select(DatasetVersion)
        .where(DatasetVersion.content_hash == cap.content_hash, DatasetVersion.hash_algo == cap.hash_algo)
        .order_by(produced_last, col(DatasetVersion.id).desc())
        .limit(1)
    ).first()


@dataclass
class _Resolved:
    dv: DatasetVersion
    fields: dict[str, DatasetField]
    cap: DatasetCapture


def _fields_of(session: Session, dv_id: int) -> dict[str, DatasetField]:
    rows = session.exec(select(DatasetField).where(DatasetField.dataset_version_id == dv_id)).all()
    return {f.name: f for f in rows}


def _merge_tags(fields: dict[str, DatasetField], cap: DatasetCapture) -> None:
    for item in cap.fields:
        wanted = item.get("tags") or []
        existing = fields.get(item["name"])
        if existing is not None and any(t not in existing.tags for t in wanted):
            existing.tags = [*existing.tags, *(t for t in wanted if t not in existing.tags)]


def _dataset_version(tx: AuditedTransaction, cap: DatasetCapture, run_id: int, run_uuid: str) -> _Resolved:
    session = tx.session
    if cap.reuse_any and cap.content_hash:
        found = _find_reusable(session, cap)
        if found is not None:
            fields = _fields_of(session, int(found.id or 0))
            _merge_tags(fields, cap)
            return _Resolved(found, fields, cap)
    dataset = session.exec(select(Dataset).where(Dataset.namespace == cap.namespace, Dataset.name == cap.name)).first()
    if dataset is None:
        dataset = Dataset(namespace=cap.namespace, name=cap.name, kind=cap.kind, uri=cap.uri, created_at=tx.time)
        session.add(dataset)
        session.flush()
    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    if cap.content_hash:
        stmt = stmt.where(DatasetVersion.content_hash == cap.content_hash, DatasetVersion.hash_algo == cap.hash_algo)
    else:
        stmt = stmt.where(col(DatasetVersion.content_hash).is_(None))
    dv = session.exec(stmt.order_by(col(DatasetVersion.version).desc()).limit(1)).first()
    if dv is not None:
        fields = _fields_of(session, int(dv.id or 0))
        _merge_tags(fields, cap)
        return _Resolved(dv, fields, cap)
    latest = session.exec(
        select(sa.func.max(DatasetVersion.version)).where(DatasetVersion.dataset_id == dataset.id)
    ).first()
    dv = DatasetVersion(
        dataset_id=int(dataset.id or 0),
        version=int(latest or 0) + 1,
        content_hash=cap.content_hash,
        hash_algo=cap.hash_algo,
        coverage=cap.coverage,
        schema_hash=cap.schema_hash,
        schema_fields=[{"name": f["name"], "dtype": f["dtype"], "hash": f.get("hash")} for f in cap.fields] or None,
        row_count=cap.row_count,
        byte_size=cap.byte_size,
        stats=cap.ensure_stats(),
        uri=cap.uri,
        produced_by_run_id=run_id if cap.direction == "output" else None,
        created_at=tx.time,
    )
    session.add(dv)
    session.flush()
    new_fields = [
        DatasetField(
            dataset_version_id=int(dv.id or 0),
            name=f["name"],
            dtype=f.get("dtype"),
            position=int(f.get("position", i)),
            tags=list(f.get("tags") or []),
        )
        for i, f in enumerate(cap.fields)
    ]
    unique: dict[str, DatasetField] = {}
    for f in new_fields:
        unique.setdefault(f.name, f)
    session.add_all(unique.values())
    tx.record(
        "dataset_version.create",
        f"dataset:{cap.namespace}/{cap.name}@{dv.version}",
        {
            "namespace": cap.namespace,
            "name": cap.name,
            "version": dv.version,
            "content_hash": cap.content_hash,
            "hash_algo": cap.hash_algo,
            "row_count": cap.row_count,
            "run_uuid": run_uuid,
        },
    )
    return _Resolved(dv, unique, cap)


def _model_version(tx: AuditedTransaction, cap: ModelCapture, run: Run, job: str) -> ModelVersion:
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
        training_run_id=run.id if cap.direction == "output" else None,
    )


def _column_lineage(
    session: Session,
    run_id: int,
    inputs: list[_Resolved],
    outputs: list[_Resolved],
    derived: list[tuple[str, str, str]],
) -> None:
    by_name: dict[str, list[tuple[DatasetField, str | None]]] = {}
    for res in inputs:
        hashes = {f["name"]: f.get("hash") for f in res.cap.fields}
        for name, fld in res.fields.items():
            by_name.setdefault(name, []).append((fld, hashes.get(name)))
    if not by_name:
        return
    edges: dict[tuple[int, int], str] = {}
    for res in outputs:
        hashes = {f["name"]: f.get("hash") for f in res.cap.fields}
        for name, out_field in res.fields.items():
            tags = list(out_field.tags)
            for in_field, in_hash in by_name.get(name, ()):
                if in_hash is not None and in_hash == hashes.get(name):
                    edges[(int(out_field.id or 0), int(in_field.id or 0))] = "DIRECT"
                    tags += [t for t in in_field.tags if t in PASSTHROUGH_TAGS and t not in tags]
            for out_col, in_col, transformation in derived:
                if out_col != name:
                    continue
                for in_field, _ in by_name.get(in_col, ()):
                    key = (int(out_field.id or 0), int(in_field.id or 0))
                    edges.setdefault(key, transformation)
                    for t in PROXY_TAGS:
                        proxy = PROXY_PREFIX + t
                        if (t in in_field.tags or proxy in in_field.tags) and proxy not in tags:
                            tags.append(proxy)
            if tags != list(out_field.tags):
                out_field.tags = tags
    if edges:
        session.execute(
            sa.insert(ColumnLineage),
            [
                {"run_id": run_id, "output_field_id": o, "input_field_id": i, "transformation": t}
                for (o, i), t in sorted(edges.items())
            ],
        )


def write_run(catalog: Catalog, record: RunRecord) -> bool:
    """Write one finished run; False when a run with this uuid is already stored as finished."""
    enqueue, kick = _events()
    with audited(catalog, record.actor) as tx:
        session = tx.session
        existing = _run_by_uuid(session, record.run_uuid)
        if existing is not None and existing.status in FINAL:
            return False
        action = "run.complete" if record.status == "COMPLETED" else "run.fail"
        tx.record(
            action,
            f"run:{record.run_uuid}",
            {
                "run_uuid": record.run_uuid,
                "job": record.job,
                "namespace": record.namespace,
                "kind": record.kind,
                "status": record.status,
                "code_hash": record.code_hash,
                "git_commit": record.git_commit,
                "error_type": record.error_type,
                "inputs": [
                    f"{d.namespace}/{d.name}:{d.content_hash}" for d in record.datasets if d.direction == "input"
                ],
                "outputs": [
                    f"{d.namespace}/{d.name}:{d.content_hash}" for d in record.datasets if d.direction == "output"
                ],
            },
        )
        job = _job(session, record.namespace, record.job, record.kind, record.source_file)
        parent_id = _ensure_ancestors(tx, record.ancestors, enqueue)
        values: dict[str, Any] = {
            "status": record.status,
            "ended_at": record.ended_at,
            "params": record.params,
            "environment": record.environment,
            "user": record.user,
            "host": record.host,
            "code_hash": record.code_hash,
            "source_file": record.source_file,
            "git_commit": record.git_commit,
            "git_dirty": record.git_dirty,
            "error_type": record.error_type,
            "error_message": record.error_message,
            "error_traceback": record.error_traceback,
        }
        if existing is None:
            run = Run(
                run_uuid=record.run_uuid,
                job_id=int(job.id or 0),
                parent_run_id=parent_id,
                started_at=record.started_at,
                **values,
            )
            session.add(run)
        else:
            run = existing
            for key, value in values.items():
                setattr(run, key, value)
        session.flush()
        run_id = int(run.id or 0)
        edges: list[dict[str, Any]] = []
        inputs: list[_Resolved] = []
        for cap in record.datasets:
            if cap.direction == "input":
                res = _dataset_version(tx, cap, run_id, record.run_uuid)
                inputs.append(res)
                edges.append(
                    {
                        "run_id": run_id,
                        "artifact_kind": "dataset",
                        "artifact_id": res.dv.id,
                        "direction": "input",
                        "role": cap.role,
                        "created_at": tx.time,
                    }
                )
        for mcap in record.models:
            if mcap.direction == "input":
                mv = _model_version(tx, mcap, run, record.job)
                edges.append(
                    {
                        "run_id": run_id,
                        "artifact_kind": "model",
                        "artifact_id": mv.id,
                        "direction": "input",
                        "role": mcap.role,
                        "created_at": tx.time,
                    }
                )
        if edges:
            session.execute(sa.insert(RunIO), edges)
        if existing is None:
            enqueue(session, run_id, "START")
        edges = []
        outputs: list[_Resolved] = []
        for cap in record.datasets:
            if cap.direction == "output":
                res = _dataset_version(tx, cap, run_id, record.run_uuid)
                outputs.append(res)
                edges.append(
                    {
                        "run_id": run_id,
                        "artifact_kind": "dataset",
                        "artifact_id": res.dv.id,
                        "direction": "output",
                        "role": cap.role,
                        "created_at": tx.time,
                    }
                )
        for mcap in record.models:
            if mcap.direction == "output":
                mv = _model_version(tx, mcap, run, record.job)
                edges.append(
                    {
                        "run_id": run_id,
                        "artifact_kind": "model",
                        "artifact_id": mv.id,
                        "direction": "output",
                        "role": mcap.role,
                        "created_at": tx.time,
                    }
                )
        if edges:
            session.execute(sa.insert(RunIO), edges)
        session.flush()
        _column_lineage(session, run_id, inputs, outputs, record.derived)
        session.flush()
        enqueue(session, run_id, "COMPLETE" if record.status == "COMPLETED" else "FAIL")
    kick(catalog)
    return True
