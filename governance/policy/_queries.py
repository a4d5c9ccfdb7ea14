"""Read-side queries of policy records for reports: a model version's stored evidence documents and its
policy evaluations with their check results, as typed records.

Reports read these through here, never the tables: an evidence document is read (and its schema
version checked) by :class:`governance.domain.EvidenceDocument`, a stored measurement by
:class:`governance.checks.Measurement`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session, col, select

from governance.catalog import CheckResult, Evidence, PolicyEvaluation
from governance.checks import Measurement
from governance.domain import EvidenceDocument, Status
from governance.errors import EvaluationError, NotFoundError

__all__ = [
    "StoredCheck",
    "StoredEvaluation",
    "StoredEvidence",
    "evaluation_detail",
    "version_evaluations",
    "version_evidence",
]


class _Binding(Protocol):
    def problem(self, table: str, obj: Any) -> str | None: ...


@dataclass(frozen=True)
class StoredEvidence:
    """An evidence row: its document, or why the document cannot be read (``problem``)."""

    id: int
    kind: str
    dataset_version_id: int | None
    created_at: datetime
    keys: tuple[str, ...]
    document: EvidenceDocument | None
    problem: str | None = None


def version_evidence(session: Session, model_version_id: int) -> list[StoredEvidence]:
    """The evidence rows of a model version, oldest first.  A document this version cannot read (a newer
    schema) is listed with the reason, not raised: a report shows what is there."""
    rows = session.exec(
        select(Evidence).where(Evidence.model_version_id == model_version_id).order_by(col(Evidence.id))
    ).all()
    out = []
    for row in rows:
        data = row.data if isinstance(row.data, dict) else {}
        try:
            doc, problem = EvidenceDocument.read(data, where=f"evidence #{row.id}"), None
        except EvaluationError as exc:
            doc, problem = None, str(exc)
        out.append(StoredEvidence(id=int(row.id or 0), kind=row.kind, dataset_version_id=row.dataset_version_id,
                                  created_at=row.created_at, keys=tuple(sorted(map(str, data))), document=doc,
                                  problem=problem))
    return out


@dataclass(frozen=True)
class StoredCheck:
    """One stored check result of an evaluation."""

    check_id: str
    uses: str
    check_version: str | None
    status: str
    severity: str
    value: float | None
    assertion: Mapping[str, Any] | None
    measurement: Measurement | None
    message: str | None
    maps_to: tuple[str, ...]
    waiver_id: int | None

    @property
    def family(self) -> str:
        return self.uses.split(".", 1)[0]

    @property
    def counted(self) -> bool:
        """The check measured something (not ERROR, NOT_RUN or NOT_APPLICABLE)."""
        return Status.parse(self.status) not in (Status.ERROR, Status.NOT_RUN, Status.NOT_APPLICABLE)


@dataclass(frozen=True)
class StoredEvaluation:
    """A stored policy evaluation; with :func:`evaluation_detail`, its check results and ``problems``:
    why the evaluation or any of its results does not match the audit log (empty: every row is a fact)."""

    id: int
    policy_name: str
    policy_version: str
    policy_digest: str
    purpose: str
    status: str
    actor: str
    created_at: datetime
    checks: tuple[StoredCheck, ...] = field(default=())
    problems: tuple[str, ...] = field(default=())


def _measurement(raw: Any) -> Measurement | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Measurement.from_dict(raw)
    except (TypeError, ValueError, IndexError):
        return None


def _stored_check(r: CheckResult) -> StoredCheck:
    return StoredCheck(check_id=r.check_id, uses=r.uses, check_version=r.check_version, status=r.status,
                       severity=r.severity, value=r.value, assertion=r.assertion,
                       measurement=_measurement(r.measurement), message=r.message,
                       maps_to=tuple(map(str, r.maps_to or [])), waiver_id=r.waiver_id)


def _stored_evaluation(ev: PolicyEvaluation, checks: tuple[StoredCheck, ...] = (),
                       problems: tuple[str, ...] = ()) -> StoredEvaluation:
    return StoredEvaluation(id=int(ev.id or 0), policy_name=ev.policy_name, policy_version=ev.policy_version,
                            policy_digest=ev.policy_digest, purpose=ev.purpose, status=ev.status, actor=ev.actor,
                            created_at=ev.created_at, checks=checks, problems=problems)


def version_evaluations(session: Session, model_version_id: int) -> list[StoredEvaluation]:
    """The policy evaluations of a model version, oldest first (without their results)."""
    rows = session.exec(
        select(PolicyEvaluation).where(PolicyEvaluation.model_version_id == model_version_id)
        .order_by(col(PolicyEvaluation.id))
    ).all()
    return [_stored_evaluation(ev) for ev in rows]


def evaluation_detail(session: Session, evaluation_id: int, binding: _Binding) -> StoredEvaluation:
    """One evaluation with its check results, each row checked against the audit log by ``binding``."""
    ev = session.get(PolicyEvaluation, evaluation_id)
    if ev is None:
        raise NotFoundError(f"unknown policy evaluation {evaluation_id}")
    results = session.exec(
        select(CheckResult).where(CheckResult.evaluation_id == ev.id).order_by(col(CheckResult.id))
    ).all()
    problems = [binding.problem("policy_evaluation", ev), *(binding.problem("check_result", r) for r in results)]
    return _stored_evaluation(ev, tuple(_stored_check(r) for r in results), tuple(p for p in problems if p))
