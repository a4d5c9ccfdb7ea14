"""Build the model card context: one JSON-safe dictionary read from the catalog.

Every renderer (HTML, PDF, Markdown, JSON) works from this dictionary, so they agree.  Nothing is
invented: a card field that is absent, empty or a placeholder is ``None`` and shown as missing.  The
report date is the newest catalog record the card includes (evaluation, approval, promotion, waiver,
evidence or the version itself), never the clock, so the same catalog gives the same bytes.

The card is read through the query functions of the registry (:mod:`governance.registry`), the
policy records (:mod:`governance.policy`) and the catalog's views; each section has its own builder.
Rows that do not match the audit log are shown as unverified and count nowhere (no coverage, no
tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.catalog import AuditEvent, Ref, dataset_version_entry, run_entry, run_input_datasets
from governance.domain import CARD_FIELDS, as_utc, iso
from governance.reporting._card_tables import (
    drift_rows,
    group_rows,
    importance_rows,
    measured_importance,
    merge_tables,
    numeric,
    plain,
    text_items,
)
from governance.reporting._format import fmt_assertion, fmt_num
from governance.reporting._lineage import build_lineage
from governance.reporting._traceability import Framework, build_matrix

__all__ = ["audit_subject_filter", "build_model_card_context"]

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


@dataclass
class _Found:
    """What the card found: evidence kinds for the traceability matrix, the times it includes (the
    report date) and the rows that are not facts."""

    times: list[datetime] = field(default_factory=list)
    kinds: dict[str, list[str]] = field(default_factory=dict)
    unverified: list[str] = field(default_factory=list)

    def stamp(self, value: datetime | None) -> str | None:
        if value is not None:
            self.times.append(as_utc(value))
        return iso(value)

    def found(self, kind: str, description: str) -> None:
        self.kinds.setdefault(kind, []).append(description)

    def problem(self, problem: str | None) -> str | None:
        if problem is not None:
            self.unverified.append(problem)
        return problem


@dataclass
class _Analysis:
    """The quantitative sections, gathered from evidence documents and check results."""

    group_tables: list[dict[str, Any]] = field(default_factory=list)
    explanations: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)

    def explained(self, source: str, importance: Any) -> None:
        rows = importance_rows(importance)
        if rows:
            self.explanations.append({"source": source, "explainer": importance.explainer,
                                      "sample_size": importance.sample_size, "importance": rows})

    def finish(self, found: _Found) -> None:
        self.group_tables = merge_tables(self.group_tables)
        for table in self.group_tables:
            found.found("quantitative.by_group", f"per-group results from {table['source']}")
            if table["intersectional"]:
                found.found("quantitative.intersectional", f"intersectional groups from {table['source']}")
        for expl in self.explanations:
            found.found("explanations", f"feature importance from {expl['source']}")
        for d in self.drift:
            found.found("drift", f"drift statistics from {d['source']}")


# ------------------------------------------------------------------------------------------ sections
def _details(facts: Any, found: _Found) -> dict[str, Any]:
    found.found("model.registered", f"model {facts.name} version {facts.version} in the catalog")
    found.found("model.version", f"version {facts.version}")
    if facts.owner:
        found.found("model.owner", f"owner {facts.owner}")
    if facts.flavor:
        found.found("model.flavor", f"flavor {facts.flavor}")
    if facts.params:
        found.found("model.params", f"{len(facts.params)} parameters recorded")
    description = facts.description or facts.card.get("overview") or facts.card.get("description")
    if description:
        found.found("model.description", "model description")
    if facts.metrics:
        found.found("metrics", "metrics on the version: " + ", ".join(sorted(map(str, facts.metrics))))
    return {
        "model": {"name": facts.name, "description": description, "owner": facts.owner,
                  "risk_tier": facts.risk_tier, "tags": list(facts.tags), "created_at": iso(facts.model_created_at)},
        "version": {"number": facts.version, "label": facts.label, "flavor": facts.flavor,
                    "artifact_hash": facts.artifact_hash, "hash_algo": facts.hash_algo,
                    "artifact_uri": facts.artifact_uri, "created_at": iso(facts.created_at),
                    "aliases": list(facts.aliases), "features": list(facts.features),
                    "params": {str(k): plain(v) for k, v in sorted(facts.params.items())}},
    }


def _card(facts: Any, found: _Found) -> dict[str, Any]:
    """The card's own sections (every :data:`~governance.domain.CARD_FIELDS` entry with a section) and
    the other fields that are set; placeholders are missing."""
    sections = []
    for spec in CARD_FIELDS:
        items = text_items(facts.card.get(spec.key))
        if items:
            found.found(f"card.{spec.key}", f"model card field {spec.key}")
        if spec.section:
            sections.append({"key": spec.key, "title": spec.title, "items": items})
    sectioned = {f["key"] for f in sections} | {"overview", "description"}
    other = [{"key": str(k), "items": text_items(v)} for k, v in sorted(facts.card.items()) if k not in sectioned]
    return {"card": sections, "card_other": other}


def _training(session: Session, facts: Any, found: _Found) -> dict[str, Any]:
    run = run_entry(session, facts.training_run_id) if facts.training_run_id else None
    if run is None:
        return {"training_run": None, "training_data": []}
    found.found("lineage.training_run", f"training run {run['run_id']}")
    if run["code_hash"] or run["git_commit"]:
        found.found("lineage.code", f"code {run['git_commit'] or ''} {run['code_hash'] or ''}".strip())
    if run["environment"]:
        found.found("lineage.environment", "run environment: " + ", ".join(sorted(run["environment"])[:6]))
    run["environment"] = {str(k): plain(v) for k, v in sorted(run["environment"].items())}
    run["params"] = {str(k): plain(v) for k, v in sorted(run["params"].items())}
    data = []
    for dv_id, role in run_input_datasets(session, facts.training_run_id):
        entry = dataset_version_entry(session, dv_id, role)
        if entry is not None:
            data.append(entry)
            if entry["content_hash"]:
                found.found("lineage.training_data", f"training data {entry['ref']} {entry['content_hash']}")
    return {"training_run": run, "training_data": data}


def _evidence(session: Session, facts: Any, found: _Found, analysis: _Analysis) -> dict[str, Any]:
    """Evidence rows, the evaluation datasets, and what their documents hold: per-group metrics,
    importance, drift and overall metrics (the newest document's win)."""
    from governance.policy import version_evidence

    evaluation_data: list[dict[str, Any]] = []
    seen: list[int] = []
    docs = []
    metrics: list[dict[str, Any]] = []
    for ev in version_evidence(session, facts.model_version_id):
        found.stamp(ev.created_at)
        dv_id = ev.dataset_version_id
        entry = dataset_version_entry(session, dv_id, ev.kind) if dv_id is not None else None
        if entry is not None and dv_id is not None and dv_id not in seen:
            seen.append(dv_id)
            evaluation_data.append(entry)
            if entry["content_hash"]:
                found.found("lineage.evaluation_data", f"evaluation data {entry['ref']} {entry['content_hash']}")
        source = f"evidence #{ev.id} ({ev.kind})"
        docs.append({"id": ev.id, "kind": ev.kind, "dataset": entry["ref"] if entry else None,
                     "created_at": iso(ev.created_at), "keys": list(ev.keys)})
        found.found(f"evidence:{ev.kind}", source)
        if ev.document is None:
            found.problem(ev.problem)
            continue
        metrics = _document_analysis(ev.document, source, analysis) or metrics
    if metrics:
        found.found("metrics", f"metrics computed by {metrics[0]['source']}")
    return {"evaluation_data": evaluation_data, "evidence": docs, "evidence_metrics": metrics,
            "evaluation_dataset_ids": sorted(seen)}


def _document_analysis(doc: Any, source: str, analysis: _Analysis) -> list[dict[str, Any]]:
    """Add one evidence document's tables to ``analysis``; its overall metrics (``[]`` when none)."""
    by_group = doc.metrics.by_group if doc.metrics is not None else {}
    for grouping in by_group.values():
        rows = group_rows(grouping, metrics=True)
        if rows:
            analysis.group_tables.append({"source": source, "checks": [], "rows": rows})
    analysis.explained(source, doc.importance)
    rows = drift_rows(doc.drift)
    if rows:
        analysis.drift.append({"source": source, "rows": rows})
    overall = doc.metrics.overall if doc.metrics is not None else {}
    return [{"name": str(k), "value": v, "source": source} for k, v in sorted(overall.items()) if numeric(v)]


def _check_entry(check: Any, policy_name: str) -> dict[str, Any]:
    m = check.measurement
    evidence = m.evidence if m is not None else {}
    importance = measured_importance(evidence)
    by_group = m.to_dict()["by_group"] if m is not None else None
    return {
        "id": check.check_id, "uses": check.uses, "family": check.family, "version": check.check_version,
        "status": check.status, "severity": check.severity, "value": check.value, "assertion": check.assertion,
        "threshold": fmt_assertion(check.assertion), "message": check.message, "maps_to": list(check.maps_to),
        "waiver_id": check.waiver_id, "policy": policy_name,
        "ci": list(m.ci) if m is not None and m.ci is not None else None,
        "group_sizes": (dict(m.group_sizes) or None) if m is not None else None,
        "groups": group_rows(by_group), "drift": drift_rows(by_group) if check.family == "drift" else None,
        "importance": importance_rows(importance), "explainer": importance.explainer if importance else None,
        "sample_size": importance.sample_size if importance else None,
    }


def _policy_entry(ev: Any, checks: list[dict[str, Any]]) -> dict[str, Any]:
    entry = {"id": ev.id, "name": ev.policy_name, "version": ev.policy_version, "digest": ev.policy_digest,
             "purpose": ev.purpose, "status": ev.status, "actor": ev.actor, "created_at": iso(ev.created_at),
             "checks": checks, "unverified": None}
    if ev.problems:  # not a fact: shown as unverified, counted nowhere (no coverage, no group tables)
        entry.update(status="UNVERIFIED", recorded_status=ev.status, unverified=ev.problems[0])
    return entry


def _count_checks(checks: list[dict[str, Any]], found: _Found, analysis: _Analysis,
                  mapped: dict[str, list[str]]) -> None:
    for check in checks:
        if check["status"] not in {"ERROR", "NOT_RUN", "NOT_APPLICABLE"}:
            outcome = f"check {check['id']}: {check['status']}"
            if check["value"] is not None:
                outcome += f" (value {fmt_num(check['value'])}, threshold {check['threshold']})"
            found.found(f"check:{check['family']}", outcome)
        source = f"check {check['id']}"
        for req in check["maps_to"]:
            mapped.setdefault(str(req), []).append(f"{source}: {check['status']}")
        if check["groups"] and check["family"] != "drift":
            analysis.group_tables.append({"source": source, "checks": [check["id"]], "rows": check["groups"]})
        if check["importance"]:
            analysis.explanations.append({"source": source, "explainer": check["explainer"],
                                          "sample_size": check["sample_size"], "importance": check["importance"]})
        if check["drift"]:
            analysis.drift.append({"source": source, "rows": check["drift"]})


def _policies(session: Session, facts: Any, found: _Found, analysis: _Analysis, binding: Any) -> dict[str, Any]:
    """The latest evaluation per policy in detail, every evaluation in the history."""
    from governance.policy import evaluation_detail, version_evaluations

    evaluations = version_evaluations(session, facts.model_version_id)
    latest = {ev.policy_name: ev for ev in evaluations}
    history = [{"id": ev.id, "policy": ev.policy_name, "policy_version": ev.policy_version, "purpose": ev.purpose,
                "status": ev.status, "actor": ev.actor, "created_at": found.stamp(ev.created_at)} for ev in evaluations]
    policies: list[dict[str, Any]] = []
    mapped: dict[str, list[str]] = {}
    for summary in sorted(latest.values(), key=lambda e: e.id):
        ev = evaluation_detail(session, summary.id, binding)
        for problem in ev.problems:
            found.problem(problem)
        checks = [_check_entry(c, ev.policy_name) for c in ev.checks]
        policies.append(_policy_entry(ev, checks))
        if not ev.problems:
            found.found("policy.evaluation", f"policy {ev.policy_name} {ev.policy_version}: {ev.status}")
            _count_checks(checks, found, analysis, mapped)
    return {"policies": policies, "evaluation_history": history, "mapped": mapped}


def _signature(record: Any) -> dict[str, Any]:
    return {**record.signature.as_dict(), **({"verification": "unverified"} if record.unverified else {}),
            "unverified": record.unverified}


def _decisions(session: Session, facts: Any, found: _Found, binding: Any) -> dict[str, Any]:
    """Waivers, approvals and the promotion history, through the registry's queries."""
    from governance.registry import version_approvals, version_promotions, version_waivers

    waivers = version_waivers(session, facts, binding)
    for w in waivers:
        found.stamp(w.created_at)
        found.stamp(w.revoked_at)
        found.problem(w.unverified)
        if w.unverified is None:
            found.found("waiver", f"waiver #{w.id} for {w.check_id} approved by {w.approver}")
    approvals = []
    for a in version_approvals(session, facts, binding):
        found.problem(a.unverified)
        approvals.append({**_signature(a), "stage": a.stage, "approver": a.approver, "role": a.role,
                          "comment": a.comment, "created_at": found.stamp(a.created_at)})
        if a.unverified is None:
            found.found("approval", f"approval for {a.stage} by {a.approver}")
    promotions = []
    for p in version_promotions(session, facts, binding):
        found.problem(p.unverified)
        promotions.append({**_signature(p), "alias": p.stage, "action": p.action, "from_version": p.from_version,
                           "to_version": p.to_version, "actor": p.actor, "reason": p.reason,
                           "evaluation_id": p.evaluation_id, "created_at": found.stamp(p.created_at)})
    if promotions:
        found.found("promotion.history", f"{len(promotions)} promotion events")
    return {"waiver_records": waivers, "approvals": approvals, "promotions": promotions}


def _waiver_entries(waivers: list[Any], as_of: datetime) -> list[dict[str, Any]]:
    """Waivers as the card shows them, each in its state at the report date."""
    return [{
        "id": w.id, "check_id": w.check_id, "versions": None if w.versions is None else list(w.versions),
        "reason": w.reason, "ticket": w.ticket, "requester": w.requester, "approver": w.approver,
        "created_at": iso(w.created_at), "expires_at": iso(w.expires_at), "revoked_at": iso(w.revoked_at),
        "revoked_by": w.revoked_by, "requester_key": w.signatures.requester_key,
        "requester_verification": w.signatures.requester_verification, "approver_key": w.signatures.approver_key,
        "approver_verification": w.signatures.approver_verification, "unverified": w.unverified,
        "state": "unverified" if w.unverified else w.state_at(as_of).value,
    } for w in waivers]


def _audit_events(session: Session, facts: Any, found: _Found) -> int:
    count = int(session.exec(
        select(sa.func.count()).select_from(AuditEvent).where(audit_subject_filter(facts.name))).one())
    if count:
        found.found("audit.trail", f"{count} audit events about {facts.name}")
    return count


def _summary(matrix: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in matrix:
        s = out.setdefault(row["framework"], {"framework": row["framework"], "title": row["framework_title"],
                                              "covered": 0, "partial": 0, "missing": 0, "total": 0})
        s[row["status"]] += 1
        s["total"] += 1
    return list(out.values())


def build_model_card_context(
    session: Session, ref: Ref | str, frameworks: tuple[Framework, ...], *, with_lineage: bool = True
) -> dict[str, Any]:
    """Everything the model card shows, as plain JSON-safe data.

    ``with_lineage=False`` leaves ``lineage`` as ``None`` (the server's page links to its lineage
    explorer instead of walking the graph for every view)."""
    from governance.audit import StateVerdicts
    from governance.registry import version_facts

    facts = version_facts(session, ref)
    found, analysis = _Found(), _Analysis()
    binding = StateVerdicts(session)  # rows that do not match the audit log are shown, never as facts
    details = _details(facts, found)
    card = _card(facts, found)
    training = _training(session, facts, found)
    evidence = _evidence(session, facts, found, analysis)
    policies = _policies(session, facts, found, analysis, binding)
    analysis.finish(found)
    decisions = _decisions(session, facts, found, binding)
    audit_count = _audit_events(session, facts, found)
    as_of = max([*found.times, as_utc(facts.created_at)])
    lineage = build_lineage(session, facts, evidence["evaluation_dataset_ids"]) if with_lineage else None
    matrix = build_matrix(frameworks, found.kinds, policies["mapped"])
    return {
        "kind": "model_card", "unverified": list(dict.fromkeys(found.unverified)),
        "title": f"Model card: {facts.label}", "as_of": iso(as_of), **details,
        "metrics": [{"name": str(k), "value": v, "source": "model version"} for k, v in sorted(facts.metrics.items())]
        + evidence["evidence_metrics"],
        **card, **training, "evaluation_data": evidence["evaluation_data"], "evidence": evidence["evidence"],
        "lineage": lineage, "group_tables": analysis.group_tables, "explanations": analysis.explanations,
        "drift": analysis.drift, "policies": policies["policies"],
        "evaluation_history": policies["evaluation_history"],
        "waivers": _waiver_entries(decisions["waiver_records"], as_of), "approvals": decisions["approvals"],
        "promotions": decisions["promotions"], "audit_events": audit_count, "traceability": matrix,
        "traceability_summary": _summary(matrix),
    }
