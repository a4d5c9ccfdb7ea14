"""``gov mlflow reconcile``: every MLflow alias must match an audited promotion that passed our gate.

For each alias of each registered model, the catalog's latest *gated* move of that alias (a
``PromotionEvent`` with action ``promote``, which is only written after the gate passed, or
``rollback``, which only returns to such a version) must point at the version MLflow's alias points
at.  Otherwise it is a finding:

* ``ungated``: MLflow's alias points at a version no gated promotion put there (set by hand, by
  another tool, or moved back);
* ``missing``: the catalog's latest gated move of an alias has no such alias in MLflow (removed there,
  or never published);
* ``unknown-model`` / ``unknown-version``: the alias points into a model or version never imported.

Each reconcile appends one ``mlflow.reconcile`` audit event with its findings, so the audit report
shows the latest one (:func:`finding_of`).  The same comparison serves the webhook receiver
(:mod:`governance.mlflow._webhook`) for one alias at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from governance.audit import audited, resolve_actor
from governance.catalog import AuditEvent, Catalog, Model, ModelVersion, PromotionEvent, open_catalog
from governance.config import load_settings
from governance.domain import as_utc
from governance.errors import InputError, NotFoundError
from governance.mlflow._client import Connection, connect, first_line

__all__ = ["GATED_ACTIONS", "RECONCILE_ACTION", "Finding", "ReconcileReport", "alias_finding", "latest_reconcile",
           "reconcile"]

RECONCILE_ACTION = "mlflow.reconcile"
GATED_ACTIONS = ("promote", "rollback")


@dataclass(frozen=True)
class Finding:
    """One alias that moved without a matching PASS."""

    model: str
    alias: str
    kind: str  # ungated | missing | unknown-model | unknown-version
    mlflow_version: int | None
    gated_version: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "alias": self.alias, "kind": self.kind, "mlflow_version": self.mlflow_version,
                "gated_version": self.gated_version, "message": self.message}


@dataclass
class ReconcileReport:
    tracking_uri: str
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    audit_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "aliases_checked": self.checked, "ok": self.ok,
                "findings": [f.as_dict() for f in self.findings], "audit_seq": self.audit_seq}


def _gated(session: Session, model_id: int, alias: str) -> tuple[int | None, int | None]:
    """(event id, version number) of the latest gated move of ``alias``; (None, None) if none."""
    event = session.exec(
        select(PromotionEvent)
        .where(PromotionEvent.model_id == model_id, PromotionEvent.alias == alias,
               col(PromotionEvent.action).in_(GATED_ACTIONS))
        .order_by(col(PromotionEvent.id).desc()).limit(1)
    ).first()
    if event is None or event.to_version_id is None:
        return None, None
    mv = session.get(ModelVersion, event.to_version_id)
    return event.id, None if mv is None else mv.version


def alias_finding(session: Session, model: str, alias: str, mlflow_version: int | None) -> Finding | None:
    """The finding for one alias (``mlflow_version`` None: the alias is absent in MLflow), or None."""
    found = session.exec(select(Model).where(Model.name == model)).first()
    if found is None:
        if mlflow_version is None:
            return None
        return Finding(model, alias, "unknown-model", mlflow_version, None,
                       f"{model}@{alias} -> version {mlflow_version} in MLflow; model never imported, never gated")
    _, gated = _gated(session, int(found.id or 0), alias)
    if mlflow_version is None:
        if gated is None:
            return None
        return Finding(model, alias, "missing", None, gated,
                       f"{model}@{alias} has no alias in MLflow; the last gated promotion put version {gated} there")
    if gated == mlflow_version:
        return None
    known = session.exec(select(ModelVersion.id).where(ModelVersion.model_id == found.id,
                                                       ModelVersion.version == mlflow_version)).first()
    if known is None:
        return Finding(model, alias, "unknown-version", mlflow_version, gated,
                       f"{model}@{alias} -> version {mlflow_version} in MLflow; that version was never imported")
    where = "no gated promotion of this alias" if gated is None else f"the last gated promotion was version {gated}"
    return Finding(model, alias, "ungated", mlflow_version, gated,
                   f"{model}@{alias} -> version {mlflow_version} in MLflow without a matching PASS ({where})")


def _gated_aliases(session: Session, model: str) -> set[str]:
    rows = session.exec(
        select(PromotionEvent.alias).join(Model, Model.id == PromotionEvent.model_id)  # type: ignore[arg-type]
        .where(Model.name == model, col(PromotionEvent.action).in_(GATED_ACTIONS)).distinct()
    ).all()
    return set(rows)


def _registered(conn: Connection, models: Sequence[str]) -> list[Any]:
    client = conn.client
    if models:
        found = []
        for name in models:
            try:
                found.append(client.get_registered_model(name))
            except conn.mlflow.exceptions.MlflowException as exc:
                raise NotFoundError(f"--model: no registered model {name!r} on {conn.uri}") from exc
        return found
    registered: list[Any] = []
    token = None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        registered.extend(page)
        token = page.token
        if not token:
            return registered


def reconcile(
    tracking_uri: str | None,
    *,
    models: Sequence[str] = (),
    aliases: Sequence[str] = (),
    catalog: Catalog | None = None,
    actor: str | None = None,
) -> ReconcileReport:
    """Compare MLflow's aliases (of ``models``, default all registered models; only ``aliases`` when
    given) with the catalog's gated promotions; record and return the findings."""
    conn = connect(tracking_uri)
    settings = load_settings()
    cat = catalog if catalog is not None else open_catalog(settings)
    who = actor or resolve_actor(None, settings)
    try:
        registered = _registered(conn, models)
    except conn.mlflow.exceptions.MlflowException as exc:
        raise InputError(f"MLflow at {conn.uri}: {first_line(exc)}") from exc
    report = ReconcileReport(conn.uri)
    wanted = set(aliases)
    with cat.read() as session:
        for rm in registered:
            current = {a: int(v) for a, v in (getattr(rm, "aliases", None) or {}).items()}
            names = set(current) | _gated_aliases(session, rm.name)
            for alias in sorted(names):
                if wanted and alias not in wanted:
                    continue
                report.checked += 1
                finding = alias_finding(session, rm.name, alias, current.get(alias))
                if finding is not None:
                    report.findings.append(finding)
    with audited(cat, who) as tx:
        recorded = {k: v for k, v in report.as_dict().items() if k != "audit_seq"}  # the event is its own seq
        report.audit_seq = tx.record(RECONCILE_ACTION, f"mlflow:{conn.uri}", recorded).seq
    return report


def latest_reconcile(session: Session) -> list[dict[str, Any]]:
    """The latest recorded reconcile per tracking URI (newest first), for the audit report."""
    rows = session.exec(
        select(AuditEvent.seq, AuditEvent.time, AuditEvent.subject, AuditEvent.payload)
        .where(AuditEvent.action == RECONCILE_ACTION).order_by(col(AuditEvent.seq).desc())
    ).all()
    seen: dict[str, dict[str, Any]] = {}
    for seq, time, subject, payload in rows:
        if subject in seen:
            continue
        data = json.loads(payload).get("data") or {}
        seen[subject] = {"seq": seq, "time": as_utc(time).isoformat(), "tracking_uri": data.get("tracking_uri"),
                         "aliases_checked": data.get("aliases_checked"), "findings": data.get("findings") or []}
    return list(seen.values())
