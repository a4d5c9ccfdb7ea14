"""Store an evaluation and its check results in the catalog, audited; read them back for re-assertion."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from governance.audit import AuditedTransaction
from governance.catalog import CheckResult, PolicyEvaluation
from governance.checks import Measurement
from governance.policy._engine import EvaluationResult

__all__ = ["load_measurements", "store_evaluation"]


def store_evaluation(
    tx: AuditedTransaction,
    result: EvaluationResult,
    *,
    model_version_id: int | None,
    purpose: str = "check",
    inputs: dict[str, Any] | None = None,
) -> PolicyEvaluation:
    """Write a PolicyEvaluation with one CheckResult per check, and the audit event ``policy.evaluate``."""
    evaluation = PolicyEvaluation(
        model_version_id=model_version_id,
        subject=dict(result.subject),
        policy_name=result.policy_name,
        policy_version=result.policy_version,
        policy_digest=result.policy_digest,
        purpose=purpose,
        status=result.status.value,
        actor=tx.actor,
        inputs=_inputs(result, inputs),
        created_at=tx.time,
    )
    tx.session.add(evaluation)
    tx.session.flush()
    if evaluation.id is None:  # pragma: no cover - flush assigns the key
        raise RuntimeError("internal: the evaluation row got no id")
    for r in result.results:
        waiver_id = r.waiver.get("id") if r.waiver else None
        tx.session.add(
            CheckResult(
                evaluation_id=evaluation.id,
                check_id=r.id,
                uses=r.uses,
                check_version=r.check_version,
                status=r.status.value,
                severity=r.severity,
                value=r.to_dict()["value"],
                assertion=r.assertion,
                measurement=r.measurement.to_dict() if r.measurement else None,
                message=r.message,
                waiver_id=waiver_id if isinstance(waiver_id, int) else None,
                maps_to=list(r.maps_to),
            )
        )
    tx.session.flush()
    subject = result.subject
    subject_text = (
        f"model:{subject['model']}@{subject['version']}"
        if "model" in subject
        else f"predictions:{subject.get('predictions', '?')}"
    )
    tx.record(
        "policy.evaluate",
        subject_text,
        {
            "evaluation_id": evaluation.id,
            "policy": result.policy_name,
            "policy_version": result.policy_version,
            "digest": result.policy_digest,
            "status": result.status.value,
            "purpose": purpose,
            "results": {r.id: r.status.value for r in result.results},
            **_fingerprint(result),
        },
    )
    return evaluation


def _inputs(result: EvaluationResult, inputs: dict[str, Any] | None) -> dict[str, Any]:
    """The caller's inputs plus what the engine read (``sources``), JSON-safe."""
    out = dict(inputs or {})
    if result.sources:
        out.setdefault("sources", json.loads(json.dumps(result.sources, default=str)))
    fingerprint = _fingerprint(result)
    out.update({k: v for k, v in fingerprint.items() if k not in out})
    return out


def _fingerprint(result: EvaluationResult) -> dict[str, Any]:
    """The content hashes of the files the evaluation read (a predictions table, monitoring data)."""
    out: dict[str, Any] = {}
    for key in ("predictions_fingerprint", "data_fingerprint"):
        fp = result.sources.get(key)
        if isinstance(fp, dict) and fp.get("content_hash"):
            out[key] = fp["content_hash"]
    return out


def load_measurements(session: Session, evaluation_id: int) -> dict[str, Measurement]:
    """The stored measurements of an evaluation by check id (feed them to ``run_pack(measurements=...)``)."""
    rows = session.exec(
        select(CheckResult).where(CheckResult.evaluation_id == evaluation_id).order_by(col(CheckResult.id))
    ).all()
    return {r.check_id: Measurement.from_dict(r.measurement) for r in rows if r.measurement is not None}
