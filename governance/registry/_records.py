"""The registry's records: one frozen dataclass per concept (a model version, an approval, a waiver, a
move of a stage, a signed decision), returned by the functions that write them and by the ones that
read them back.

They are built from the catalog's rows inside the session that read or wrote them, so a caller never
holds an ORM row (no lazy loads, no detached-instance errors, no accidental writes).  Attribute names
are the rows' (``mv.version``, ``approval.approver``, ``waiver.expires_at``), plus the model's name;
times are aware UTC datetimes.  :meth:`as_dict` is the JSON form: the shape ``gov ... --format json``
and the server's API answer with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from governance.catalog import Approval as ApprovalRow
from governance.catalog import Model, ModelVersion, PromotionEvent, Ref, SignedStatement
from governance.catalog import Waiver as WaiverRow
from governance.domain import WaiverState, as_utc, iso, waiver_state
from governance.signing import Verification

__all__ = [
    "Approval",
    "Binding",
    "DecisionSignature",
    "Promotion",
    "RegisteredVersion",
    "SignedDecision",
    "VersionFacts",
    "Waiver",
    "WaiverSignatures",
    "approval_record",
    "promotion_record",
    "registered_version",
    "signed_decision",
    "version_facts_record",
    "waiver_record",
]


class Binding(Protocol):
    """Says why a row is not a fact (it does not match the audit log), or None
    (:class:`governance.audit.StateVerdicts`)."""

    def problem(self, table: str, obj: Any) -> str | None: ...


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, _Record):
        return value.as_dict()
    return value


class _Record:
    """JSON form shared by the records: times as ISO-8601 UTC text, tuples as lists, enums as their value."""

    def as_dict(self) -> dict[str, Any]:
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class DecisionSignature(_Record):
    """Who signed a decision and whether the signature verifies now against the trust store.

    ``verification`` is ``verified``, ``unsigned``, ``untrusted`` or ``invalid`` (``verification_reason``
    says why when it is not ``verified``); ``signer`` is the principal the signed statement names (proven
    only when ``verified``); ``key_fingerprint`` is the signing key's (None: unsigned or unreadable)."""

    signer: str | None
    key_fingerprint: str | None
    verification: str
    verification_reason: str | None = None

    @classmethod
    def of(cls, check: Verification, signer: str | None = None) -> DecisionSignature:
        """From a verification; ``signer`` stands in when the statement names no principal."""
        return cls(check.principal or signer, check.fingerprint, check.status, check.reason)


@dataclass(frozen=True, kw_only=True)
class _StoredVersion(_Record):
    """What a model version row stores, shared by :class:`RegisteredVersion` and :class:`VersionFacts`."""

    model_id: int
    version: int
    artifact_hash: str | None
    hash_algo: str | None
    artifact_uri: str | None
    flavor: str | None
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]
    card: Mapping[str, Any]
    features: tuple[str, ...]
    training_run_id: int | None
    created_at: datetime


def _stored(mv: ModelVersion) -> dict[str, Any]:
    return {"model_id": mv.model_id, "version": mv.version, "artifact_hash": mv.artifact_hash,
            "hash_algo": mv.hash_algo, "artifact_uri": mv.artifact_uri, "flavor": mv.flavor,
            "params": dict(mv.params or {}), "metrics": dict(mv.metrics or {}), "card": dict(mv.card or {}),
            "features": tuple(mv.features or ()), "training_run_id": mv.training_run_id,
            "created_at": as_utc(mv.created_at)}


@dataclass(frozen=True, kw_only=True)
class RegisteredVersion(_StoredVersion):
    """A model version as :func:`governance.register_model` recorded it.

    ``id`` is the version's catalog id; ``ref`` (``credit-scorer@3``) is accepted by every function
    that takes a model reference.  ``actor`` is who registered it."""

    id: int
    model: str
    actor: str

    @property
    def ref(self) -> Ref:
        return Ref(self.model, version=self.version)


@dataclass(frozen=True, kw_only=True)
class VersionFacts(_StoredVersion):
    """A model version and its model as the registry records them (:func:`governance.registry.version_facts`):
    the model's ``name``, owner, description, risk tier and tags, and the aliases pointing at the version."""

    model_version_id: int
    name: str
    owner: str | None
    description: str | None
    risk_tier: str | None
    tags: tuple[str, ...]
    model_created_at: datetime
    aliases: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Approval(_Record):
    """A sign-off: ``approver`` approves ``model@version`` for ``stage`` (:func:`governance.approve`,
    :func:`governance.registry.list_approvals`, :func:`governance.registry.version_approvals`).

    ``signature`` is the signed statement as verified against the trust store when the record was made
    (unsigned counts only under a pack with ``signatures: optional``); ``unverified`` says why the row is
    not a fact (it does not match the audit log; only the report queries check, None otherwise).
    :meth:`as_dict` is the listing's JSON form (``approver`` there is the principal the statement names)."""

    id: int
    model: str
    version: int
    model_version_id: int
    stage: str
    approver: str
    role: str | None
    comment: str | None
    created_at: datetime
    signature: DecisionSignature
    unverified: str | None = None

    @property
    def key_fingerprint(self) -> str | None:
        return self.signature.key_fingerprint

    @property
    def signed(self) -> bool:
        return self.key_fingerprint is not None

    @property
    def ref(self) -> Ref:
        return Ref(self.model, version=self.version)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "model": self.model, "version": self.version, "stage": self.stage,
                "approver": self.signature.signer or self.approver, "key_fingerprint": self.key_fingerprint,
                "verification": self.signature.verification, "comment": self.comment,
                "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class WaiverSignatures(_Record):
    """Who requested and who approved a waiver, each as verified now, and whether the pair makes the
    waiver count (``counts``; ``reason`` says why not).  Verifications are ``verified``, ``unsigned``,
    ``untrusted`` or ``invalid``; keys are fingerprints (None: unsigned)."""

    counts: bool
    reason: str | None
    requester: str | None
    requester_key: str | None
    requester_verification: str
    approver: str | None
    approver_key: str | None
    approver_verification: str

    @property
    def requester_label(self) -> str:
        return _label(self.requester, self.requester_key)

    @property
    def approver_label(self) -> str:
        return _label(self.approver, self.approver_key)


def _label(principal: str | None, fingerprint: str | None) -> str:
    return f"{principal} ({fingerprint})" if fingerprint else f"{principal} (unsigned)"


@dataclass(frozen=True)
class Waiver(_Record):
    """A waiver of check ``check_id`` for ``model`` (``versions``; None: every version), as
    :func:`governance.waive`, :func:`governance.approve_waiver`, ``revoke_waiver`` left it or
    :func:`governance.registry.list_waivers` and ``version_waivers`` read it.

    ``state`` is ``active``, ``expired`` or ``revoked`` when the record was made (:meth:`state_at` for
    another time).  ``approver`` is None while a signed request waits for another person's signed
    approval.  ``signatures`` says who signed the request and the approval and whether the waiver counts
    under a pack requiring signatures; ``unverified`` says why the row is not a fact (only the report
    queries check, None otherwise).  :meth:`as_dict` is the listing's JSON form."""

    id: int
    model: str
    model_id: int
    versions: tuple[int, ...] | None
    check_id: str
    reason: str
    ticket: str | None
    requester: str
    approver: str | None
    state: WaiverState
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    created_at: datetime
    signatures: WaiverSignatures
    unverified: str | None = None

    @property
    def awaiting_approval(self) -> bool:
        return self.approver is None

    def state_at(self, now: datetime) -> WaiverState:
        return waiver_state(self.expires_at, self.revoked_at, now)

    def as_dict(self) -> dict[str, Any]:
        s = self.signatures
        return {
            "id": self.id, "model": self.model, "versions": None if self.versions is None else list(self.versions),
            "check": self.check_id, "state": self.state.value, "reason": self.reason, "ticket": self.ticket,
            "requester": self.requester, "approver": self.approver, "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at), "revoked_by": self.revoked_by, "created_at": iso(self.created_at),
            "requester_key": s.requester_key, "requester_verification": s.requester_verification,
            "approver_key": s.approver_key, "approver_verification": s.approver_verification,
            "signatures": "counted" if s.counts else s.reason,
        }


@dataclass(frozen=True)
class Promotion(_Record):
    """One move of a stage alias of ``model`` (``action``: a promotion, a refusal, a lost race or a
    rollback), versions by number, as :func:`governance.registry.history` and ``version_promotions``
    read it.  ``evaluation_status`` is the status of the gate evaluation it rests on; ``signature`` is
    the mover's signed statement verified now; ``unverified`` as for :class:`Waiver`.
    :meth:`as_dict` is the history's JSON form (``time`` is ``created_at``)."""

    id: int
    model: str
    stage: str
    action: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str | None
    evaluation_id: int | None
    evaluation_status: str | None
    created_at: datetime
    signature: DecisionSignature
    unverified: str | None = None

    def as_dict(self) -> dict[str, Any]:
        s = self.signature
        return {"id": self.id, "time": iso(self.created_at), "stage": self.stage, "action": self.action,
                "from_version": self.from_version, "to_version": self.to_version, "actor": self.actor,
                "reason": self.reason, "evaluation_id": self.evaluation_id,
                "evaluation_status": self.evaluation_status, "signer": s.signer,
                "key_fingerprint": s.key_fingerprint, "verification": s.verification}


@dataclass(frozen=True)
class SignedDecision(_Record):
    """A signed statement of a decision as the audit report lists it (:func:`governance.registry.signed_decisions`):
    its ``kind`` (``approval``, ``waiver.request``, ``waiver.approval``, ``promotion``, ``rollback``), the
    row it decides about (``target_id``), what the statement says (time, model, version or versions,
    decision, stage, check) and its ``signature`` verified now.  :meth:`as_dict` flattens the signature."""

    id: int
    kind: str
    target_id: int
    time: str | None
    model: str | None
    version: Any
    decision: str | None
    stage: str | None
    check: str | None
    signature: DecisionSignature

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: _json(getattr(self, f.name)) for f in fields(self) if f.name != "signature"}
        return {**out, **self.signature.as_dict()}


def registered_version(mv: ModelVersion, model: str, actor: str) -> RegisteredVersion:
    return RegisteredVersion(id=int(mv.id or 0), model=model, actor=actor, **_stored(mv))


def version_facts_record(model: Model, mv: ModelVersion, aliases: tuple[str, ...]) -> VersionFacts:
    return VersionFacts(
        model_version_id=int(mv.id or 0), name=model.name, owner=model.owner, description=model.description,
        risk_tier=model.risk_tier, tags=tuple(model.tags or ()), model_created_at=as_utc(model.created_at),
        aliases=aliases, **_stored(mv),
    )


def approval_record(row: ApprovalRow, model: str, version: int, signature: DecisionSignature,
                    unverified: str | None = None) -> Approval:
    return Approval(
        id=int(row.id or 0), model=model, version=version, model_version_id=row.model_version_id, stage=row.stage,
        approver=row.approver, role=row.role, comment=row.comment, created_at=as_utc(row.created_at),
        signature=signature, unverified=unverified,
    )


def waiver_record(row: WaiverRow, model: str, now: datetime, signatures: WaiverSignatures,
                  unverified: str | None = None) -> Waiver:
    return Waiver(
        id=int(row.id or 0), model=model, model_id=row.model_id,
        versions=None if row.versions is None else tuple(row.versions), check_id=row.check_id, reason=row.reason,
        ticket=row.ticket, requester=row.requester, approver=row.approver,
        state=waiver_state(row.expires_at, row.revoked_at, now), expires_at=as_utc(row.expires_at),
        revoked_at=None if row.revoked_at is None else as_utc(row.revoked_at), revoked_by=row.revoked_by,
        created_at=as_utc(row.created_at), signatures=signatures, unverified=unverified,
    )


def promotion_record(row: PromotionEvent, model: str, numbers: Mapping[int | None, int], evaluation_status: str | None,
                     signature: DecisionSignature, unverified: str | None = None) -> Promotion:
    """``numbers`` maps the model's version ids to version numbers."""
    return Promotion(
        id=int(row.id or 0), model=model, stage=row.alias, action=row.action,
        from_version=numbers.get(row.from_version_id) if row.from_version_id else None,
        to_version=numbers.get(row.to_version_id) if row.to_version_id else None, actor=row.actor,
        reason=row.reason, evaluation_id=row.evaluation_id, evaluation_status=evaluation_status,
        created_at=as_utc(row.created_at), signature=signature, unverified=unverified,
    )


def signed_decision(row: SignedStatement, predicate: Mapping[str, Any], check: Verification) -> SignedDecision:
    version = predicate.get("version") or predicate.get("versions")
    return SignedDecision(
        id=int(row.id or 0), kind=row.kind, target_id=row.target_id, time=predicate.get("time"),
        model=predicate.get("model"), version=tuple(version) if isinstance(version, list) else version,
        decision=predicate.get("decision"), stage=predicate.get("stage"), check=predicate.get("check"),
        signature=DecisionSignature.of(check, row.principal),
    )
