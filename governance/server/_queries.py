"""What the read API and the pages show, as JSON-safe dictionaries, read through the catalog's,
registry's and reporting's own query functions where they exist.

Lists are paginated with ``limit`` / ``offset`` and say their ``total``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.catalog import (
    AuditEvent,
    Catalog,
    Dataset,
    DatasetVersion,
    Job,
    Model,
    ModelAlias,
    ModelVersion,
    PolicyEvaluation,
    Run,
    RunIO,
    describe_dataset_version,
    describe_run,
    parse_ref,
    resolve_model,
    resolve_model_version,
)
from governance.domain import iso
from governance.errors import CatalogError, InputError, NotFoundError

__all__ = [
    "AuditStatus",
    "Page",
    "audit_events",
    "dataset_version",
    "dataset_version_id",
    "datasets",
    "evaluations",
    "model_detail",
    "model_version",
    "models",
    "run_detail",
    "search",
]

MAX_LIMIT = 500


@dataclass(frozen=True)
class Page:
    limit: int = 50
    offset: int = 0

    @classmethod
    def parse(cls, limit: str | None, offset: str | None, default: int = 50) -> Page:
        try:
            lim = default if limit in (None, "") else int(str(limit))
            off = 0 if offset in (None, "") else int(str(offset))
        except ValueError:
            raise InputError(f"limit/offset: expected whole numbers, got limit={limit!r} offset={offset!r}") from None
        if not 1 <= lim <= MAX_LIMIT:
            raise InputError(f"limit: expected 1 to {MAX_LIMIT}, got {lim}")
        if off < 0:
            raise InputError(f"offset: expected 0 or more, got {off}")
        return cls(lim, off)

    def wrap(self, items: list[dict[str, Any]], total: int) -> dict[str, Any]:
        return {"items": items, "limit": self.limit, "offset": self.offset, "total": total,
                "next_offset": self.offset + self.limit if self.offset + self.limit < total else None}


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _gate_status(session: Session, version_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The latest policy evaluation of each model version (status, policy, time)."""
    if not version_ids:
        return {}
    latest = (select(PolicyEvaluation.model_version_id, sa.func.max(PolicyEvaluation.id).label("eid"))
              .where(col(PolicyEvaluation.model_version_id).in_(version_ids))
              .group_by(col(PolicyEvaluation.model_version_id)).subquery())
    rows = session.exec(select(PolicyEvaluation).join(latest, latest.c.eid == PolicyEvaluation.id)).all()
    return {int(r.model_version_id or 0): {"status": r.status, "policy": r.policy_name, "purpose": r.purpose,
                                          "evaluation_id": r.id, "time": iso(r.created_at)} for r in rows}


def models(session: Session, page: Page, q: str | None = None) -> dict[str, Any]:
    """Every model with owner, risk tier, latest version and each stage's version with its gate status."""
    stmt = select(Model)
    if q:
        stmt = stmt.where(col(Model.name).like(_like(q), escape="\\"))
    total = session.exec(select(sa.func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(col(Model.name)).offset(page.offset).limit(page.limit)).all()
    ids = [int(m.id or 0) for m in rows]
    latest = dict(session.exec(select(ModelVersion.model_id, sa.func.max(ModelVersion.version))
                               .where(col(ModelVersion.model_id).in_(ids))
                               .group_by(col(ModelVersion.model_id))).all()) if ids else {}
    stages: dict[int, list[tuple[str, int, int]]] = {}
    if ids:
        for model_id, alias, mv_id, number in session.exec(
            select(ModelAlias.model_id, ModelAlias.alias, ModelVersion.id, ModelVersion.version)
            .join(ModelVersion, col(ModelVersion.id) == ModelAlias.model_version_id)
            .where(col(ModelAlias.model_id).in_(ids)).order_by(col(ModelAlias.alias))
        ).all():
            stages.setdefault(int(model_id), []).append((alias, int(mv_id or 0), int(number)))
    gates = _gate_status(session, [mv for entries in stages.values() for _, mv, _ in entries])
    items = []
    for m in rows:
        items.append({
            "name": m.name, "owner": m.owner, "risk_tier": m.risk_tier, "description": m.description,
            "tags": list(m.tags or []), "latest_version": latest.get(int(m.id or 0)),
            "stages": [{"stage": alias, "version": number, "gate": gates.get(mv_id)}
                       for alias, mv_id, number in stages.get(int(m.id or 0), [])],
        })
    return page.wrap(items, int(total))


def model_detail(catalog: Catalog, name: str, page: Page) -> dict[str, Any]:
    """A model, its versions (paginated, newest first) with aliases and gate status, its waivers and
    promotion history."""
    ref = parse_ref(name, "model")
    with catalog.read() as session:
        model = resolve_model(session, ref.name)
        total = session.exec(select(sa.func.count()).select_from(ModelVersion)
                             .where(ModelVersion.model_id == model.id)).one()
        versions = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)
                                .order_by(col(ModelVersion.version).desc())
                                .offset(page.offset).limit(page.limit)).all()
        aliases = session.exec(select(ModelAlias.alias, ModelVersion.version, ModelAlias.updated_at)
                               .join(ModelVersion, col(ModelVersion.id) == ModelAlias.model_version_id)
                               .where(ModelAlias.model_id == model.id).order_by(col(ModelAlias.alias))).all()
        gates = _gate_status(session, [int(v.id or 0) for v in versions])
        by_version: dict[int, list[str]] = {}
        for alias, number, _ in aliases:
            by_version.setdefault(int(number), []).append(alias)
        doc = {
            "name": model.name, "owner": model.owner, "risk_tier": model.risk_tier,
            "description": model.description, "tags": list(model.tags or []), "created_at": iso(model.created_at),
            "aliases": [{"alias": a, "version": v, "updated_at": iso(t)} for a, v, t in aliases],
            "versions": page.wrap([{
                "version": v.version, "flavor": v.flavor, "artifact_hash": v.artifact_hash,
                "created_at": iso(v.created_at), "aliases": by_version.get(v.version, []),
                "gate": gates.get(int(v.id or 0)),
            } for v in versions], int(total)),
        }
    from governance.registry import history, list_waivers

    doc["history"] = [event.as_dict() for event in history(model.name, catalog=catalog)]
    doc["waivers"] = [w.as_dict() for w in list_waivers(model=model.name, catalog=catalog)]
    return doc


def model_version(catalog: Catalog, ref: str, frameworks: tuple[Any, ...]) -> dict[str, Any]:
    """The model card context of ``MODEL@VERSION`` (what the HTML/PDF card shows, but its lineage:
    that is ``GET /api/v1/lineage``), plus approvals.

    ``governance.reporting`` (matplotlib, WeasyPrint) is imported on first use, so the server starts fast.
    """
    from governance.domain import CARD_FIELDS
    from governance.reporting import build_model_card_context

    with catalog.read() as session:
        context = build_model_card_context(session, ref, frameworks, with_lineage=False)
    from governance.registry import list_approvals

    context["approvals_detail"] = [a.as_dict() for a in list_approvals(context["version"]["label"], catalog=catalog)]
    context["card_titles"] = {f.key: f.title for f in CARD_FIELDS}
    return context


def evaluations(catalog: Catalog, ref: str, page: Page) -> dict[str, Any]:
    """Policy evaluations of a version, newest first, each with its check results and per-group metrics."""
    from governance.catalog import CheckResult

    with catalog.read() as session:
        model, mv = resolve_model_version(session, ref)
        base = select(PolicyEvaluation).where(PolicyEvaluation.model_version_id == mv.id)
        total = session.exec(select(sa.func.count()).select_from(base.subquery())).one()
        rows = session.exec(base.order_by(col(PolicyEvaluation.id).desc())
                            .offset(page.offset).limit(page.limit)).all()
        items = []
        for ev in rows:
            results = session.exec(select(CheckResult).where(CheckResult.evaluation_id == ev.id)
                                   .order_by(col(CheckResult.id))).all()
            items.append({
                "id": ev.id, "policy": ev.policy_name, "policy_version": ev.policy_version,
                "policy_digest": ev.policy_digest, "purpose": ev.purpose, "status": ev.status,
                "actor": ev.actor, "created_at": iso(ev.created_at),
                "checks": [{
                    "id": r.check_id, "uses": r.uses, "status": r.status, "severity": r.severity,
                    "value": r.value, "assertion": r.assertion, "message": r.message, "waiver_id": r.waiver_id,
                    "maps_to": list(r.maps_to or []),
                    "by_group": (r.measurement or {}).get("by_group") if isinstance(r.measurement, dict) else None,
                } for r in results],
            })
    return {"model": model.name, "version": mv.version, **page.wrap(items, int(total))}


def datasets(session: Session, page: Page, q: str | None = None) -> dict[str, Any]:
    stmt = select(Dataset)
    if q:
        stmt = stmt.where(col(Dataset.name).like(_like(q), escape="\\"))
    total = session.exec(select(sa.func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(col(Dataset.namespace), col(Dataset.name))
                        .offset(page.offset).limit(page.limit)).all()
    ids = [int(d.id or 0) for d in rows]
    latest = {int(d): (int(v), int(i)) for d, v, i in session.execute(
        sa.select(col(DatasetVersion.dataset_id), sa.func.max(DatasetVersion.version), sa.func.max(DatasetVersion.id))
        .where(col(DatasetVersion.dataset_id).in_(ids)).group_by(col(DatasetVersion.dataset_id))).all()} if ids else {}
    items = [{"namespace": d.namespace, "name": d.name, "kind": d.kind, "uri": d.uri,
              "latest_version": latest.get(int(d.id or 0), (None, None))[0],
              "latest_version_id": latest.get(int(d.id or 0), (None, None))[1]} for d in rows]
    return page.wrap(items, int(total))


def _run_brief(session: Session, run_ids: list[int]) -> list[dict[str, Any]]:
    if not run_ids:
        return []
    rows = session.exec(select(Run, Job).join(Job, col(Job.id) == Run.job_id)
                        .where(col(Run.id).in_(run_ids)).order_by(col(Run.started_at))).all()
    return [{"run_id": r.run_uuid, "job": j.name, "namespace": j.namespace, "status": r.status,
             "started_at": iso(r.started_at), "producer": r.producer} for r, j in rows]


def dataset_version_id(session: Session, ref: str) -> int:
    """The id of ``NAME@VERSION`` or ``NAMESPACE/NAME@VERSION``."""
    from governance.catalog import resolve_dataset_version

    _, dv = resolve_dataset_version(session, ref)
    return int(dv.id or 0)


def dataset_version(session: Session, version_id: int, page: Page) -> dict[str, Any]:
    """A dataset version: schema with tags, statistics, who produced it and who read it."""
    dv = session.get(DatasetVersion, version_id)
    if dv is None:
        raise NotFoundError(f"no dataset version with id {version_id}")
    dataset = session.get(Dataset, dv.dataset_id)
    if dataset is None:
        raise CatalogError(f"dataset version {version_id} names dataset id {dv.dataset_id}, "
                           "which is not in the catalog")
    ref = f"{dataset.namespace}/{dataset.name}@{dv.version}"
    try:
        doc = describe_dataset_version(session, ref)
    except InputError:
        doc = describe_dataset_version(session, f"{dataset.name}@{dv.version}")
    consumers = select(RunIO.run_id).where(RunIO.artifact_kind == "dataset", RunIO.artifact_id == dv.id,
                                           RunIO.direction == "input")
    total = session.exec(select(sa.func.count()).select_from(consumers.subquery())).one()
    consumer_ids = list(session.exec(consumers.order_by(col(RunIO.run_id)).offset(page.offset)
                                     .limit(page.limit)).all())
    others = session.exec(select(DatasetVersion.id, DatasetVersion.version, DatasetVersion.created_at)
                          .where(DatasetVersion.dataset_id == dv.dataset_id)
                          .order_by(col(DatasetVersion.version).desc()).limit(50)).all()
    doc.update({
        "id": dv.id, "kind": dataset.kind, "description": dataset.description, "owner": dataset.owner,
        "stats": dv.stats, "producers": _run_brief(session, [dv.produced_by_run_id] if dv.produced_by_run_id else []),
        "consumers": page.wrap(_run_brief(session, consumer_ids), int(total)),
        "versions": [{"id": i, "version": v, "created_at": iso(t)} for i, v, t in others],
        "node": f"dataset:{dv.id}",
    })
    return doc


def run_detail(session: Session, run_uuid: str) -> dict[str, Any]:
    """A run (by id or unique prefix) with its inputs and outputs, each with its catalog id."""
    doc = describe_run(session, run_uuid)
    run = session.exec(select(Run).where(Run.run_uuid == doc.get("run_id", run_uuid))).first()
    if run is not None:
        ids = session.exec(select(RunIO.artifact_id).where(RunIO.run_id == run.id).order_by(col(RunIO.id))).all()
        for item, ident in zip(doc.get("io") or [], ids, strict=False):
            item["id"] = ident
            if item.get("name") is not None:
                item["ref"] = f"{item['name']}@{item.get('version')}"
        doc["node"] = f"run:{run.id}"
    return doc


def search(session: Session, q: str, limit: int = 20) -> dict[str, Any]:
    """Models, datasets, jobs and runs whose name (or run id) contains ``q``."""
    text = q.strip()
    if not text:
        raise InputError("q: expected some text to search for")
    pattern = _like(text[:200])
    found_models = session.exec(select(Model.name, Model.owner, Model.risk_tier)
                                .where(col(Model.name).like(pattern, escape="\\"))
                                .order_by(col(Model.name)).limit(limit)).all()
    found_datasets = session.execute(
        sa.select(col(Dataset.namespace), col(Dataset.name), sa.func.max(DatasetVersion.id),
                  sa.func.max(DatasetVersion.version))
        .join(DatasetVersion, col(DatasetVersion.dataset_id) == Dataset.id)
        .where(col(Dataset.name).like(pattern, escape="\\"))
        .group_by(col(Dataset.namespace), col(Dataset.name)).order_by(col(Dataset.name)).limit(limit)).all()
    found_jobs = session.exec(select(Job.namespace, Job.name, Job.kind).where(col(Job.name).like(pattern, escape="\\"))
                              .order_by(col(Job.name)).limit(limit)).all()
    found_runs = session.exec(select(Run.run_uuid, Run.status, Job.name).join(Job, col(Job.id) == Run.job_id)
                              .where(col(Run.run_uuid).like(text[:36].lower() + "%"))
                              .limit(limit)).all() if len(text) >= 4 else []
    return {
        "q": text,
        "models": [{"name": n, "owner": o, "risk_tier": r} for n, o, r in found_models],
        "datasets": [{"namespace": ns, "name": n, "latest_version_id": i, "latest_version": v}
                     for ns, n, i, v in found_datasets],
        "jobs": [{"namespace": ns, "name": n, "kind": k} for ns, n, k in found_jobs],
        "runs": [{"run_id": u, "status": s, "job": j} for u, s, j in found_runs],
    }


def _event_doc(row: AuditEvent) -> dict[str, Any]:
    try:
        body = json.loads(bytes(row.payload))
        data = body.get("data", {}) if isinstance(body, dict) else {}
    except ValueError:
        data = {"_unreadable_payload": True}
    return {"seq": row.seq, "time": iso(row.time), "actor": row.actor, "action": row.action,
            "subject": row.subject, "data": data, "hash": row.hash, "prev_hash": row.prev_hash}


def audit_events(session: Session, page: Page, *, actor: str | None = None, action: str | None = None,
                 subject: str | None = None, since: datetime | None = None,
                 until: datetime | None = None) -> dict[str, Any]:
    """Audit events, newest first, filtered by actor, action (exact), subject (contains) and time."""
    stmt = select(AuditEvent)
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if subject:
        stmt = stmt.where(col(AuditEvent.subject).like(_like(subject), escape="\\"))
    if since is not None:
        stmt = stmt.where(col(AuditEvent.time) >= since)
    if until is not None:
        stmt = stmt.where(col(AuditEvent.time) <= until)
    total = session.exec(select(sa.func.count()).select_from(stmt.subquery())).one()
    rows = session.exec(stmt.order_by(col(AuditEvent.seq).desc()).offset(page.offset).limit(page.limit)).all()
    actions = list(session.exec(select(AuditEvent.action).distinct().order_by(col(AuditEvent.action))).all())
    return {**page.wrap([_event_doc(r) for r in rows], int(total)), "actions": actions}


class AuditStatus:
    """The chain's verification (recomputed only when the head moved) and the last checkpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, str], dict[str, Any]] | None = None

    def get(self, catalog: Catalog) -> dict[str, Any]:
        with catalog.read() as session:
            head = session.exec(select(AuditEvent.seq, AuditEvent.hash)
                                .order_by(col(AuditEvent.seq).desc()).limit(1)).first()
        key = (int(head[0]), str(head[1])) if head is not None else (0, "")
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            from governance.reporting import checkpoint_status, verify_chain

            verification, _ = verify_chain(catalog)
            with catalog.read() as session:
                checkpoint = checkpoint_status(session, verification)
            doc = {"verification": verification, "checkpoint": checkpoint}
            self._cached = (key, doc)
            return doc
