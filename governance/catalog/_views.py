"""Read-side views: JSON-safe dictionaries describing catalog entities (used by the CLI and reports)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.catalog._models import (
    Dataset,
    DatasetField,
    DatasetVersion,
    Job,
    Model,
    ModelAlias,
    ModelVersion,
    Run,
    RunIO,
)
from governance.catalog._refs import parse_ref, resolve_dataset_version, resolve_model_version
from governance.errors import CatalogError, NotFoundError

__all__ = [
    "as_utc",
    "describe_dataset_version",
    "describe_model_version",
    "describe_run",
    "iso",
    "list_datasets",
    "list_models",
    "list_runs",
]


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; the catalog stores UTC, so attach it."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


def _run_row(run: Run, job: Job) -> dict[str, Any]:
    duration = None
    if run.ended_at is not None:
        duration = round((as_utc(run.ended_at) - as_utc(run.started_at)).total_seconds(), 6)
    return {
        "run_id": run.run_uuid, "job": job.name, "namespace": job.namespace, "kind": job.kind,
        "status": run.status, "started_at": iso(run.started_at), "ended_at": iso(run.ended_at),
        "duration_s": duration, "user": run.user,
    }


def list_runs(session: Session, limit: int = 50, job: str | None = None) -> list[dict[str, Any]]:
    stmt = select(Run, Job).join(Job, col(Job.id) == Run.job_id)
    if job:
        stmt = stmt.where(Job.name == job)
    rows = session.exec(stmt.order_by(col(Run.started_at).desc(), col(Run.id).desc()).limit(limit)).all()
    return [_run_row(run, j) for run, j in rows]


def _io_of_run(session: Session, run_id: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    edges = session.exec(select(RunIO).where(RunIO.run_id == run_id).order_by(col(RunIO.id))).all()
    for edge in edges:
        item: dict[str, Any] = {"direction": edge.direction, "role": edge.role, "kind": edge.artifact_kind}
        if edge.artifact_kind == "dataset":
            dv = session.get(DatasetVersion, edge.artifact_id)
            ds = session.get(Dataset, dv.dataset_id) if dv else None
            if dv and ds:
                item.update(name=ds.name, namespace=ds.namespace, version=dv.version,
                            content_hash=dv.content_hash, rows=dv.row_count)
        else:
            mv = session.get(ModelVersion, edge.artifact_id)
            model = session.get(Model, mv.model_id) if mv else None
            if mv and model:
                item.update(name=model.name, version=mv.version, artifact_hash=mv.artifact_hash)
        out.append(item)
    return out


def describe_run(session: Session, run_id: str) -> dict[str, Any]:
    matches = session.exec(select(Run).where(col(Run.run_uuid).startswith(run_id)).limit(2)).all()
    if not matches:
        raise NotFoundError(f"unknown run {run_id!r}")
    if len(matches) > 1:
        raise NotFoundError(f"run id prefix {run_id!r} is ambiguous; give more characters")
    run = matches[0]
    job = session.get(Job, run.job_id)
    if job is None:
        raise CatalogError(f"run {run.id} names job id {run.job_id}, which is not in the catalog")
    doc = _run_row(run, job)
    parent = session.get(Run, run.parent_run_id) if run.parent_run_id else None
    doc.update(
        parent_run_id=parent.run_uuid if parent else None, params=run.params, environment=run.environment,
        host=run.host, code_hash=run.code_hash, source_file=run.source_file, git_commit=run.git_commit,
        git_dirty=run.git_dirty, error=None if run.error_type is None else
        {"type": run.error_type, "message": run.error_message},
        producer=run.producer, io=_io_of_run(session, int(run.id or 0)),
    )
    return doc


def list_datasets(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    latest = (
        select(DatasetVersion.dataset_id, sa.func.max(DatasetVersion.version).label("v"),
               sa.func.count().label("n"))
        .group_by(col(DatasetVersion.dataset_id)).subquery()
    )
    rows = session.exec(
        select(Dataset, latest.c.v, latest.c.n)
        .join(latest, latest.c.dataset_id == Dataset.id, isouter=True)
        .order_by(col(Dataset.namespace), col(Dataset.name)).limit(limit)
    ).all()
    return [{"namespace": d.namespace, "name": d.name, "kind": d.kind, "latest_version": v,
             "versions": n or 0, "uri": d.uri} for d, v, n in rows]


def describe_dataset_version(session: Session, ref: str) -> dict[str, Any]:
    dataset, dv = resolve_dataset_version(session, ref)
    fields = session.exec(
        select(DatasetField).where(DatasetField.dataset_version_id == dv.id).order_by(col(DatasetField.position))
    ).all()
    producer = session.get(Run, dv.produced_by_run_id) if dv.produced_by_run_id else None
    return {
        "namespace": dataset.namespace, "name": dataset.name, "version": dv.version, "uri": dv.uri or dataset.uri,
        "content_hash": dv.content_hash, "hash_algo": dv.hash_algo, "coverage": dv.coverage,
        "schema_hash": dv.schema_hash, "row_count": dv.row_count, "byte_size": dv.byte_size,
        "created_at": iso(dv.created_at), "produced_by_run": producer.run_uuid if producer else None,
        "fields": [{"name": f.name, "dtype": f.dtype, "tags": f.tags} for f in fields],
    }


def list_models(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    latest = (
        select(ModelVersion.model_id, sa.func.max(ModelVersion.version).label("v"))
        .group_by(col(ModelVersion.model_id)).subquery()
    )
    rows = session.exec(
        select(Model, latest.c.v).join(latest, latest.c.model_id == Model.id, isouter=True)
        .order_by(col(Model.name)).limit(limit)
    ).all()
    out = []
    for model, v in rows:
        aliases = session.exec(
            select(ModelAlias.alias, ModelVersion.version)
            .join(ModelVersion, col(ModelVersion.id) == ModelAlias.model_version_id)
            .where(ModelAlias.model_id == model.id).order_by(col(ModelAlias.alias))
        ).all()
        out.append({"name": model.name, "owner": model.owner, "risk_tier": model.risk_tier,
                    "latest_version": v, "aliases": dict(aliases)})
    return out


def describe_model_version(session: Session, ref: str) -> dict[str, Any]:
    model, mv = resolve_model_version(session, parse_ref(ref))
    aliases = session.exec(
        select(ModelAlias.alias).where(ModelAlias.model_version_id == mv.id).order_by(col(ModelAlias.alias))
    ).all()
    run = session.get(Run, mv.training_run_id) if mv.training_run_id else None
    return {
        "name": model.name, "version": mv.version, "owner": model.owner, "risk_tier": model.risk_tier,
        "description": model.description, "flavor": mv.flavor, "artifact_hash": mv.artifact_hash,
        "hash_algo": mv.hash_algo, "artifact_uri": mv.artifact_uri, "params": mv.params,
        "metrics": mv.metrics, "card": mv.card, "features": mv.features, "aliases": list(aliases),
        "training_run": run.run_uuid if run else None, "created_at": iso(mv.created_at),
    }
