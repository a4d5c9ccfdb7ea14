"""Build the model card context: one JSON-safe dictionary read from the catalog.

Every renderer (HTML, PDF, Markdown, JSON) works from this dictionary, so they agree.  Nothing is
invented: a card field that is absent, empty or a placeholder is ``None`` and shown as missing.  The
report date is the newest catalog record the card includes (evaluation, approval, promotion, waiver,
evidence or the version itself), never the clock, so the same catalog gives the same bytes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.catalog import (
    Approval,
    AuditEvent,
    CheckResult,
    Dataset,
    DatasetField,
    DatasetVersion,
    Evidence,
    Job,
    ModelAlias,
    ModelVersion,
    PolicyEvaluation,
    PromotionEvent,
    Ref,
    Run,
    RunIO,
    Waiver,
    resolve_model_version,
)
from governance.catalog._views import as_utc, iso
from governance.reporting._format import fmt_assertion, fmt_num
from governance.reporting._lineage import build_lineage
from governance.reporting._traceability import Framework, build_matrix

__all__ = ["CARD_FIELDS", "audit_subject_filter", "build_model_card_context"]

CARD_FIELDS: tuple[tuple[str, str], ...] = (
    ("intended_use", "Intended use"),
    ("out_of_scope_use", "Out-of-scope use"),
    ("users", "Intended users"),
    ("factors", "Factors"),
    ("metrics", "Metrics (rationale)"),
    ("training_data", "Training data"),
    ("evaluation_data", "Evaluation data"),
    ("limitations", "Limitations"),
    ("tradeoffs", "Trade-offs"),
    ("ethical_considerations", "Ethical considerations"),
    ("caveats", "Caveats"),
    ("recommendations", "Recommendations"),
)
_PLACEHOLDERS = {"", "todo", "tbd", "n/a", "na", "none", "-", "?", "xxx", "lorem ipsum", "placeholder"}
RATE_KEYS = ("n", "selection_rate", "tpr", "fpr", "fnr", "accuracy")
_DRIFT_KEYS = ("psi", "ks")
_INTERSECTION_MARKS = (" & ", " × ", "|", " ∩ ", " and ")


def audit_subject_filter(name: str) -> Any:
    """SQL condition selecting audit events about model ``name`` (``model:NAME``, ``model:NAME@3``,
    ``waiver:NAME@...``; any ``KIND:NAME`` or ``KIND:NAME@...`` subject)."""
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    subject = col(AuditEvent.subject)
    return sa.or_(
        subject == name,
        subject.like(f"%:{escaped}", escape="\\"),
        subject.like(f"%:{escaped}@%", escape="\\"),
        subject.like(f"{escaped}@%", escape="\\"),
    )


def _text_items(value: Any) -> list[str] | None:
    """A card field as a list of strings, or None when it is absent or a placeholder."""
    items: list[str] = []
    if value is None:
        return None
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, dict):
        items = [f"{k}: {_plain(v)}" for k, v in value.items()]
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                desc = item.get("description") or item.get("name")
                items.append(str(desc) if desc is not None and len(item) <= 2 else _plain(item))
            else:
                items.append(_plain(item))
    else:
        items = [_plain(value)]
    kept = [i.strip() for i in items if i.strip().lower() not in _PLACEHOLDERS]
    return kept or None


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt_num(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _is_intersectional(group: str) -> bool:
    return (
        group.count("=") > 1
        or any(m in group for m in _INTERSECTION_MARKS)
        or (group.startswith("(") and ", " in group)
    )


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _group_rows(by_group: Any) -> list[dict[str, Any]] | None:
    """Per-group rates in a stable order, or None when ``by_group`` is not that shape."""
    if not isinstance(by_group, dict) or not by_group:
        return None
    rows = []
    for group, stats in by_group.items():
        if not isinstance(stats, dict) or not any(k in stats for k in RATE_KEYS[1:]):
            return None
        rows.append(
            {
                "group": str(group),
                "intersectional": _is_intersectional(str(group)),
                "values": {k: v for k, v in stats.items() if _numeric(v) or v is None},
            }
        )
    return rows


def _drift_rows(by_feature: Any) -> list[dict[str, Any]] | None:
    if not isinstance(by_feature, dict) or not by_feature:
        return None
    rows = []
    for feature, stats in by_feature.items():
        if not isinstance(stats, dict) or not any(k in stats for k in _DRIFT_KEYS):
            return None
        rows.append({"feature": str(feature), "psi": stats.get("psi"), "ks": stats.get("ks")})
    return rows


def _importance(raw: Any) -> list[dict[str, Any]] | None:
    if not isinstance(raw, dict) or not raw or not all(_numeric(v) for v in raw.values()):
        return None
    ordered = sorted(raw.items(), key=lambda kv: (-abs(float(kv[1])), str(kv[0])))
    return [{"feature": str(k), "value": float(v)} for k, v in ordered]


class _Builder:
    """Collects the sections; one instance per card."""

    def __init__(self, session: Session, frameworks: tuple[Framework, ...]) -> None:
        self.s = session
        self.frameworks = frameworks
        self.times: list[datetime] = []
        self.evidence: dict[str, list[str]] = {}

    def stamp(self, value: datetime | None) -> str | None:
        if value is not None:
            self.times.append(as_utc(value))
        return iso(value)

    def found(self, kind: str, description: str) -> None:
        self.evidence.setdefault(kind, []).append(description)

    # ---------------------------------------------------------------------------------- datasets
    def dataset_entry(self, dv_id: int, role: str | None) -> dict[str, Any] | None:
        dv = self.s.get(DatasetVersion, dv_id)
        ds = self.s.get(Dataset, dv.dataset_id) if dv is not None else None
        if dv is None or ds is None:
            return None
        fields = self.s.exec(
            select(DatasetField)
            .where(DatasetField.dataset_version_id == dv.id)
            .order_by(col(DatasetField.position), col(DatasetField.id))
        ).all()
        return {
            "namespace": ds.namespace,
            "name": ds.name,
            "version": dv.version,
            "ref": f"{ds.name}@{dv.version}",
            "description": ds.description,
            "role": role,
            "uri": dv.uri or ds.uri,
            "content_hash": dv.content_hash,
            "hash_algo": dv.hash_algo,
            "coverage": dv.coverage,
            "schema_hash": dv.schema_hash,
            "row_count": dv.row_count,
            "byte_size": dv.byte_size,
            "created_at": iso(dv.created_at),
            "fields": [{"name": f.name, "dtype": f.dtype, "tags": list(f.tags or [])} for f in fields],
            "protected": sorted(f.name for f in fields if "protected" in (f.tags or [])),
        }

    # ------------------------------------------------------------------------------------ checks
    def check_entry(self, result: CheckResult, evaluation: PolicyEvaluation) -> dict[str, Any]:
        m: dict[str, Any] = result.measurement if isinstance(result.measurement, dict) else {}
        raw_evidence = m.get("evidence")
        evidence: dict[str, Any] = raw_evidence if isinstance(raw_evidence, dict) else {}
        family = result.uses.split(".", 1)[0]
        ci = m.get("ci")
        entry = {
            "id": result.check_id,
            "uses": result.uses,
            "family": family,
            "version": result.check_version,
            "status": result.status,
            "severity": result.severity,
            "value": result.value,
            "assertion": result.assertion,
            "threshold": fmt_assertion(result.assertion),
            "message": result.message,
            "maps_to": list(result.maps_to or []),
            "waiver_id": result.waiver_id,
            "policy": evaluation.policy_name,
            "ci": list(ci) if isinstance(ci, list) and len(ci) == 2 else None,
            "group_sizes": m.get("group_sizes") if isinstance(m.get("group_sizes"), dict) else None,
            "groups": _group_rows(m.get("by_group")),
            "drift": _drift_rows(m.get("by_group")) if family == "drift" else None,
            "importance": _importance(evidence.get("importance")),
            "explainer": evidence.get("explainer"),
            "sample_size": evidence.get("sample_size"),
        }
        if result.status not in {"ERROR", "NOT_RUN", "NOT_APPLICABLE"}:
            outcome = f"check {result.check_id}: {result.status}"
            if result.value is not None:
                outcome += f" (value {fmt_num(result.value)}, threshold {entry['threshold']})"
            self.found(f"check:{family}", outcome)
        return entry


def build_model_card_context(
    session: Session, ref: Ref | str, frameworks: tuple[Framework, ...], *, with_lineage: bool = True
) -> dict[str, Any]:
    """Everything the model card shows, as plain JSON-safe data.

    ``with_lineage=False`` leaves ``lineage`` as ``None`` (the server's page links to its lineage
    explorer instead of walking the graph for every view)."""
    b = _Builder(session, frameworks)
    model, mv = resolve_model_version(session, ref)
    assert model.id is not None and mv.id is not None
    label = f"{model.name}@{mv.version}"
    b.found("model.registered", f"model {model.name} version {mv.version} in the catalog")
    b.found("model.version", f"version {mv.version}")
    if model.owner:
        b.found("model.owner", f"owner {model.owner}")
    if mv.flavor:
        b.found("model.flavor", f"flavor {mv.flavor}")
    if mv.params:
        b.found("model.params", f"{len(mv.params)} parameters recorded")
    card = dict(mv.card or {})
    description = model.description or card.get("overview") or card.get("description")
    if description:
        b.found("model.description", "model description")
    if mv.metrics:
        b.found("metrics", "metrics on the version: " + ", ".join(sorted(map(str, mv.metrics))))
    aliases = session.exec(
        select(ModelAlias.alias).where(ModelAlias.model_version_id == mv.id).order_by(col(ModelAlias.alias))
    ).all()

    card_fields = []
    for key, title in CARD_FIELDS:
        items = _text_items(card.get(key))
        card_fields.append({"key": key, "title": title, "items": items})
        if items:
            b.found(f"card.{key}", f"model card field {key}")
    known = {k for k, _ in CARD_FIELDS} | {"overview", "description"}
    other_fields = [
        {"key": str(k), "items": _text_items(v)} for k, v in sorted(card.items()) if k not in known
    ]

    # training run, code and training data
    run_doc: dict[str, Any] | None = None
    training_data: list[dict[str, Any]] = []
    run = session.get(Run, mv.training_run_id) if mv.training_run_id else None
    if run is not None and run.id is not None:
        job = session.get(Job, run.job_id)
        run_doc = {
            "run_id": run.run_uuid,
            "job": job.name if job else None,
            "namespace": job.namespace if job else None,
            "status": run.status,
            "started_at": iso(run.started_at),
            "ended_at": iso(run.ended_at),
            "user": run.user,
            "host": run.host,
            "code_hash": run.code_hash,
            "git_commit": run.git_commit,
            "git_dirty": run.git_dirty,
            "source_file": run.source_file,
            "environment": {str(k): _plain(v) for k, v in sorted((run.environment or {}).items())},
            "params": {str(k): _plain(v) for k, v in sorted((run.params or {}).items())},
        }
        b.found("lineage.training_run", f"training run {run.run_uuid}")
        if run.code_hash or run.git_commit:
            b.found("lineage.code", f"code {run.git_commit or ''} {run.code_hash or ''}".strip())
        if run.environment:
            b.found("lineage.environment", "run environment: " + ", ".join(sorted(run.environment)[:6]))
        edges = session.exec(
            select(RunIO)
            .where(RunIO.run_id == run.id, RunIO.direction == "input", RunIO.artifact_kind == "dataset")
            .order_by(col(RunIO.id))
        ).all()
        for edge in edges:
            entry = b.dataset_entry(edge.artifact_id, edge.role)
            if entry is not None:
                training_data.append(entry)
                if entry["content_hash"]:
                    b.found("lineage.training_data", f"training data {entry['ref']} {entry['content_hash']}")

    # evidence rows and evaluation data
    evidence_rows = session.exec(
        select(Evidence).where(Evidence.model_version_id == mv.id).order_by(col(Evidence.id))
    ).all()
    evaluation_data: list[dict[str, Any]] = []
    seen_eval: set[int] = set()
    evidence_docs = []
    group_tables: list[dict[str, Any]] = []
    explanations: list[dict[str, Any]] = []
    drift: list[dict[str, Any]] = []
    evidence_metrics: list[dict[str, Any]] = []
    for ev in evidence_rows:
        b.stamp(ev.created_at)
        data = ev.data if isinstance(ev.data, dict) else {}
        dataset_ref = None
        if ev.dataset_version_id is not None:
            entry = b.dataset_entry(ev.dataset_version_id, ev.kind)
            if entry is not None:
                dataset_ref = entry["ref"]
                if ev.dataset_version_id not in seen_eval:
                    seen_eval.add(ev.dataset_version_id)
                    evaluation_data.append(entry)
                    if entry["content_hash"]:
                        b.found(
                            "lineage.evaluation_data",
                            f"evaluation data {entry['ref']} {entry['content_hash']}",
                        )
        source = f"evidence #{ev.id} ({ev.kind})"
        evidence_docs.append(
            {
                "id": ev.id,
                "kind": ev.kind,
                "dataset": dataset_ref,
                "created_at": iso(ev.created_at),
                "keys": sorted(map(str, data)),
            }
        )
        b.found(f"evidence:{ev.kind}", source)
        rows = _group_rows(data.get("by_group"))
        if rows:
            group_tables.append({"source": source, "checks": [], "rows": rows})
        # ``governance.evaluate`` nests {"importance": {...}, "explainer", "sample_size"}; flat also accepted
        shap_doc = data.get("importance")
        nested = isinstance(shap_doc, dict) and isinstance(shap_doc.get("importance"), dict)
        meta = shap_doc if nested and isinstance(shap_doc, dict) else data
        imp = _importance(shap_doc["importance"] if nested and isinstance(shap_doc, dict) else shap_doc)
        if imp:
            explanations.append(
                {
                    "source": source,
                    "explainer": meta.get("explainer"),
                    "sample_size": meta.get("sample_size"),
                    "importance": imp,
                }
            )
        overall = (data.get("metrics") or {}).get("overall") if isinstance(data.get("metrics"), dict) else None
        if isinstance(overall, dict):  # rows are oldest first: the newest evidence's metrics win
            evidence_metrics = [{"name": str(k), "value": v, "source": source}
                                for k, v in sorted(overall.items()) if _numeric(v)]
        drows = _drift_rows(data.get("drift"))
        if drows:
            drift.append({"source": source, "rows": drows})

    if evidence_metrics:
        b.found("metrics", f"metrics computed by {evidence_metrics[0]['source']}")

    # policy evaluations: the latest per policy in detail, all in the history
    from governance.audit import StateVerdicts

    evaluations = session.exec(
        select(PolicyEvaluation)
        .where(PolicyEvaluation.model_version_id == mv.id)
        .order_by(col(PolicyEvaluation.id))
    ).all()
    latest: dict[str, PolicyEvaluation] = {}
    history = []
    binding = StateVerdicts(session)  # rows that do not match the audit log are shown, never as facts
    unverified: list[str] = []

    def _unbound(table: str, row: Any) -> str | None:
        problem = binding.problem(table, row)
        if problem is not None:
            unverified.append(problem)
        return problem

    for ev_row in evaluations:
        latest[ev_row.policy_name] = ev_row
        history.append(
            {
                "id": ev_row.id,
                "policy": ev_row.policy_name,
                "policy_version": ev_row.policy_version,
                "purpose": ev_row.purpose,
                "status": ev_row.status,
                "actor": ev_row.actor,
                "created_at": b.stamp(ev_row.created_at),
            }
        )
    policies = []
    mapped: dict[str, list[str]] = {}
    for ev_row in sorted(latest.values(), key=lambda e: int(e.id or 0)):
        results = session.exec(
            select(CheckResult).where(CheckResult.evaluation_id == ev_row.id).order_by(col(CheckResult.id))
        ).all()
        problems = [p for p in [_unbound("policy_evaluation", ev_row), *(_unbound("check_result", r) for r in results)]
                    if p is not None]
        checks = [b.check_entry(r, ev_row) for r in results]
        if problems:  # not a fact: shown as unverified, counted nowhere (no coverage, no group tables)
            policies.append({"id": ev_row.id, "name": ev_row.policy_name, "version": ev_row.policy_version,
                             "digest": ev_row.policy_digest, "purpose": ev_row.purpose, "status": "UNVERIFIED",
                             "recorded_status": ev_row.status, "unverified": problems[0], "actor": ev_row.actor,
                             "created_at": iso(ev_row.created_at), "checks": checks})
            continue
        b.found("policy.evaluation", f"policy {ev_row.policy_name} {ev_row.policy_version}: {ev_row.status}")
        for check in checks:
            for req in check["maps_to"]:
                mapped.setdefault(str(req), []).append(f"check {check['id']}: {check['status']}")
            if check["groups"] and check["family"] != "drift":
                group_tables.append(
                    {"source": f"check {check['id']}", "checks": [check["id"]], "rows": check["groups"]}
                )
            if check["importance"]:
                explanations.append(
                    {
                        "source": f"check {check['id']}",
                        "explainer": check["explainer"],
                        "sample_size": check["sample_size"],
                        "importance": check["importance"],
                    }
                )
            if check["drift"]:
                drift.append({"source": f"check {check['id']}", "rows": check["drift"]})
        policies.append(
            {
                "id": ev_row.id,
                "name": ev_row.policy_name,
                "version": ev_row.policy_version,
                "digest": ev_row.policy_digest,
                "purpose": ev_row.purpose,
                "status": ev_row.status,
                "actor": ev_row.actor,
                "created_at": iso(ev_row.created_at),
                "checks": checks,
                "unverified": None,
            }
        )

    group_tables = _merge_tables(group_tables)
    for table in group_tables:
        b.found("quantitative.by_group", f"per-group results from {table['source']}")
        if table["intersectional"]:
            b.found("quantitative.intersectional", f"intersectional groups from {table['source']}")
    for expl in explanations:
        b.found("explanations", f"feature importance from {expl['source']}")
    for d in drift:
        b.found("drift", f"drift statistics from {d['source']}")

    from governance.registry import decision_signatures, waiver_signatures

    waivers = []
    waiver_rows = session.exec(
        select(Waiver).where(Waiver.model_id == model.id).order_by(col(Waiver.id))
    ).all()
    verdicts = waiver_signatures(session, waiver_rows)
    for waiver in waiver_rows:
        if waiver.versions is not None and mv.version not in waiver.versions:
            continue
        b.stamp(waiver.created_at)
        b.stamp(waiver.revoked_at)
        waiver_problem = _unbound("waiver", waiver)
        waivers.append(
            {
                "id": waiver.id,
                "check_id": waiver.check_id,
                "versions": waiver.versions,
                "reason": waiver.reason,
                "ticket": waiver.ticket,
                "requester": waiver.requester,
                "approver": waiver.approver,
                "created_at": iso(waiver.created_at),
                "expires_at": iso(waiver.expires_at),
                "revoked_at": iso(waiver.revoked_at),
                "revoked_by": waiver.revoked_by,
                **{k: verdicts[int(waiver.id or 0)][k] for k in (
                    "requester_key", "requester_verification", "approver_key", "approver_verification")},
                "unverified": waiver_problem,
            }
        )
        if waiver_problem is None:
            b.found("waiver", f"waiver #{waiver.id} for {waiver.check_id} approved by {waiver.approver}")

    approvals = []
    approval_rows = session.exec(
        select(Approval).where(Approval.model_version_id == mv.id).order_by(col(Approval.id))
    ).all()
    approval_signatures = decision_signatures(session, "approval", [int(a.id or 0) for a in approval_rows])
    for a in approval_rows:
        approval_problem = _unbound("approval", a)
        approvals.append(
            {
                **approval_signatures[int(a.id or 0)],
                **({"verification": "unverified"} if approval_problem else {}),
                "unverified": approval_problem,
                "stage": a.stage,
                "approver": a.approver,
                "role": a.role,
                "comment": a.comment,
                "created_at": b.stamp(a.created_at),
            }
        )
        if approval_problem is None:
            b.found("approval", f"approval for {a.stage} by {a.approver}")

    versions = dict(
        session.exec(
            select(ModelVersion.id, ModelVersion.version).where(ModelVersion.model_id == model.id)
        ).all()
    )
    promotions = []
    promotion_rows = session.exec(
        select(PromotionEvent).where(PromotionEvent.model_id == model.id).order_by(col(PromotionEvent.id))
    ).all()
    promotion_ids = [int(p.id or 0) for p in promotion_rows]
    promotion_signatures = decision_signatures(session, ("promotion", "rollback"), promotion_ids)
    for p in promotion_rows:
        promotion_problem = _unbound("promotion_event", p)
        promotions.append(
            {
                **promotion_signatures[int(p.id or 0)],
                **({"verification": "unverified"} if promotion_problem else {}),
                "unverified": promotion_problem,
                "alias": p.alias,
                "action": p.action,
                "from_version": versions.get(p.from_version_id),
                "to_version": versions.get(p.to_version_id),
                "actor": p.actor,
                "reason": p.reason,
                "evaluation_id": p.evaluation_id,
                "created_at": b.stamp(p.created_at),
            }
        )
    if promotions:
        b.found("promotion.history", f"{len(promotions)} promotion events")

    audit_count = session.exec(
        select(sa.func.count()).select_from(AuditEvent).where(audit_subject_filter(model.name))
    ).one()
    if audit_count:
        b.found("audit.trail", f"{audit_count} audit events about {model.name}")

    as_of_dt = max([*b.times, as_utc(mv.created_at)])
    as_of = iso(as_of_dt)
    for w in waivers:
        w["state"] = "unverified" if w["unverified"] else _waiver_state(w, as_of_dt)

    lineage = build_lineage(session, mv, label, [int(d) for d in seen_eval]) if with_lineage else None
    matrix = build_matrix(frameworks, b.evidence, mapped)
    return {
        "kind": "model_card",
        "unverified": list(dict.fromkeys(unverified)),
        "title": f"Model card: {label}",
        "as_of": as_of,
        "model": {
            "name": model.name,
            "description": description,
            "owner": model.owner,
            "risk_tier": model.risk_tier,
            "tags": list(model.tags or []),
            "created_at": iso(model.created_at),
        },
        "version": {
            "number": mv.version,
            "label": label,
            "flavor": mv.flavor,
            "artifact_hash": mv.artifact_hash,
            "hash_algo": mv.hash_algo,
            "artifact_uri": mv.artifact_uri,
            "created_at": iso(mv.created_at),
            "aliases": list(aliases),
            "features": list(mv.features or []),
            "params": {str(k): _plain(v) for k, v in sorted((mv.params or {}).items())},
        },
        "metrics": [{"name": str(k), "value": v, "source": "model version"}
                    for k, v in sorted((mv.metrics or {}).items())] + evidence_metrics,
        "card": card_fields,
        "card_other": other_fields,
        "training_run": run_doc,
        "training_data": training_data,
        "evaluation_data": evaluation_data,
        "evidence": evidence_docs,
        "lineage": lineage,
        "group_tables": group_tables,
        "explanations": explanations,
        "drift": drift,
        "policies": policies,
        "evaluation_history": history,
        "waivers": waivers,
        "approvals": approvals,
        "promotions": promotions,
        "audit_events": int(audit_count),
        "traceability": matrix,
        "traceability_summary": _summary(matrix),
    }


def _waiver_state(waiver: dict[str, Any], as_of: datetime) -> str:
    if waiver["revoked_at"] is not None:
        return "revoked"
    expires = datetime.fromisoformat(str(waiver["expires_at"]).replace("Z", "+00:00"))
    return "expired" if expires <= as_of else "active"


def _merge_tables(tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks computed on the same groups usually share identical per-group rates: show one table."""
    merged: dict[str, dict[str, Any]] = {}
    for table in tables:
        key = json.dumps(table["rows"], sort_keys=True, default=str)
        if key in merged:
            merged[key]["checks"].extend(table["checks"])
            merged[key]["sources"].append(table["source"])
            continue
        columns = [k for k in RATE_KEYS if any(k in r["values"] for r in table["rows"])]
        extra = sorted({k for r in table["rows"] for k in r["values"]} - set(columns))
        merged[key] = {
            "source": table["source"],
            "sources": [table["source"]],
            "checks": list(table["checks"]),
            "rows": table["rows"],
            "columns": columns + extra,
            "intersectional": any(r["intersectional"] for r in table["rows"]),
        }
    return list(merged.values())


def _summary(matrix: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in matrix:
        s = out.setdefault(
            row["framework"],
            {
                "framework": row["framework"],
                "title": row["framework_title"],
                "covered": 0,
                "partial": 0,
                "missing": 0,
                "total": 0,
            },
        )
        s[row["status"]] += 1
        s["total"] += 1
    return list(out.values())
