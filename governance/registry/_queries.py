"""Read-side queries of the registry for reports: a model version's facts and its decisions (waivers,
approvals, promotions), as typed records with their signatures and whether each matches the audit log.

Reports read the registry through these functions, never its tables: the rules (which waivers apply
to a version, a waiver's state, who signed what) stay here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session, col, select

from governance.catalog import Approval, ModelAlias, ModelVersion, PromotionEvent, Ref, Waiver, resolve_model_version
from governance.domain import WaiverState, waiver_state
from governance.registry._signoff import decision_signatures
from governance.registry._waivers import waiver_signatures

__all__ = [
    "ApprovalRecord",
    "Binding",
    "PromotionRecord",
    "VersionFacts",
    "WaiverRecord",
    "version_approvals",
    "version_facts",
    "version_promotions",
    "version_waivers",
]


class Binding(Protocol):
    """Says why a row is not a fact (it does not match the audit log), or None
    (:class:`governance.audit.StateVerdicts`)."""

    def problem(self, table: str, obj: Any) -> str | None: ...


@dataclass(frozen=True)
class VersionFacts:
    """A model version and its model as the registry records them."""

    model_id: int
    model_version_id: int
    name: str
    version: int
    owner: str | None
    description: str | None
    risk_tier: str | None
    tags: tuple[str, ...]
    model_created_at: datetime
    flavor: str | None
    artifact_hash: str | None
    hash_algo: str | None
    artifact_uri: str | None
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]
    card: Mapping[str, Any]
    features: tuple[str, ...]
    training_run_id: int | None
    created_at: datetime
    aliases: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


def version_facts(session: Session, ref: Ref | str) -> VersionFacts:
    """The facts of ``MODEL@VERSION`` (an alias resolves to its version); :class:`NotFoundError` else."""
    model, mv = resolve_model_version(session, ref)
    aliases = session.exec(
        select(ModelAlias.alias).where(ModelAlias.model_version_id == mv.id).order_by(col(ModelAlias.alias))
    ).all()
    return VersionFacts(
        model_id=int(model.id or 0), model_version_id=int(mv.id or 0), name=model.name, version=mv.version,
        owner=model.owner, description=model.description, risk_tier=model.risk_tier, tags=tuple(model.tags or []),
        model_created_at=model.created_at, flavor=mv.flavor, artifact_hash=mv.artifact_hash, hash_algo=mv.hash_algo,
        artifact_uri=mv.artifact_uri, params=dict(mv.params or {}), metrics=dict(mv.metrics or {}),
        card=dict(mv.card or {}), features=tuple(mv.features or []), training_run_id=mv.training_run_id,
        created_at=mv.created_at, aliases=tuple(aliases),
    )


@dataclass(frozen=True)
class WaiverRecord:
    """A waiver that applies to the version, with who signed it; ``unverified`` says why the row is not a
    fact (None when it matches the audit log)."""

    id: int
    check_id: str
    versions: tuple[int, ...] | None
    reason: str
    ticket: str | None
    requester: str
    approver: str | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    signatures: Mapping[str, Any] = field(default_factory=dict)
    unverified: str | None = None

    def state(self, now: datetime) -> WaiverState:
        return waiver_state(self.expires_at, self.revoked_at, now)


def version_waivers(session: Session, facts: VersionFacts, binding: Binding) -> list[WaiverRecord]:
    """The waivers of the model that cover this version (every version, or this one), oldest first."""
    rows = session.exec(select(Waiver).where(Waiver.model_id == facts.model_id).order_by(col(Waiver.id))).all()
    verdicts = waiver_signatures(session, rows)
    keys = ("requester_key", "requester_verification", "approver_key", "approver_verification")
    return [
        WaiverRecord(
            id=int(w.id or 0), check_id=w.check_id, versions=None if w.versions is None else tuple(w.versions),
            reason=w.reason, ticket=w.ticket, requester=w.requester, approver=w.approver, created_at=w.created_at,
            expires_at=w.expires_at, revoked_at=w.revoked_at, revoked_by=w.revoked_by,
            signatures={k: verdicts[int(w.id or 0)][k] for k in keys}, unverified=binding.problem("waiver", w),
        )
        for w in rows if w.versions is None or facts.version in w.versions
    ]


@dataclass(frozen=True)
class ApprovalRecord:
    """A stage approval of the version with its signature (``signer``, ``key_fingerprint``,
    ``verification``, ``verification_reason``)."""

    stage: str
    approver: str
    role: str | None
    comment: str | None
    created_at: datetime
    signature: Mapping[str, Any] = field(default_factory=dict)
    unverified: str | None = None


def version_approvals(session: Session, facts: VersionFacts, binding: Binding) -> list[ApprovalRecord]:
    """The approvals of this version, oldest first."""
    rows = session.exec(
        select(Approval).where(Approval.model_version_id == facts.model_version_id).order_by(col(Approval.id))
    ).all()
    signatures = decision_signatures(session, "approval", [int(a.id or 0) for a in rows])
    return [ApprovalRecord(stage=a.stage, approver=a.approver, role=a.role, comment=a.comment,
                           created_at=a.created_at, signature=signatures[int(a.id or 0)],
                           unverified=binding.problem("approval", a)) for a in rows]


@dataclass(frozen=True)
class PromotionRecord:
    """One move of an alias of the model (promotion, rollback or refusal), versions by number."""

    alias: str
    action: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    evaluation_id: int | None
    created_at: datetime
    signature: Mapping[str, Any] = field(default_factory=dict)
    unverified: str | None = None


def version_promotions(session: Session, facts: VersionFacts, binding: Binding) -> list[PromotionRecord]:
    """The alias history of the version's model (every version), oldest first."""
    numbers = dict(session.exec(
        select(ModelVersion.id, ModelVersion.version).where(ModelVersion.model_id == facts.model_id)).all())
    rows = session.exec(
        select(PromotionEvent).where(PromotionEvent.model_id == facts.model_id).order_by(col(PromotionEvent.id))
    ).all()
    signatures = decision_signatures(session, ("promotion", "rollback"), [int(p.id or 0) for p in rows])
    return [PromotionRecord(alias=p.alias, action=p.action, from_version=numbers.get(p.from_version_id),
                            to_version=numbers.get(p.to_version_id), actor=p.actor, reason=p.reason,
                            evaluation_id=p.evaluation_id, created_at=p.created_at,
                            signature=signatures[int(p.id or 0)], unverified=binding.problem("promotion_event", p))
            for p in rows]
