"""Sign-off: approvals of a model version for a stage, and whether a pack's requirement is met.

An approval is a signed statement naming the version's artifact digest, the evidence digest, the
pack digest and the stage (:mod:`governance.registry._signoff`).  The gate counts people by key:
distinct trusted keys of distinct principals, none of them the promoter's; roles come from the
project configuration (``[governance.roles]``), never from the command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from governance.audit import audited
from governance.catalog import Approval, Catalog, Model, ModelVersion, parse_ref, resolve_model_version
from governance.errors import InputError
from governance.registry import _records as records
from governance.registry._common import resolve_catalog, resolve_who, validate_stage
from governance.registry._signoff import Signer, Signoff, decision_signatures, pack_ref, statements_for
from governance.signing import SigningKey

if TYPE_CHECKING:  # pragma: no cover
    from governance.catalog import Ref
    from governance.policy import PolicyPack

__all__ = ["ApprovalStatus", "approval_records", "approval_requirement", "approvals_status", "approve",
           "list_approvals"]


@dataclass(frozen=True)
class ApprovalStatus:
    """Whether the approvals recorded for a version and stage meet a pack's requirement."""

    required: int
    roles: tuple[str, ...]
    counted: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())
    problem: str | None = None
    signers: tuple[dict[str, Any], ...] = ()

    @property
    def satisfied(self) -> bool:
        return self.problem is None and len(self.counted) >= self.required

    def message(self, stage: str, requester: str) -> str:
        if self.problem is not None:
            return self.problem
        roles = f" with role {' or '.join(self.roles)}" if self.roles else ""
        have = f"have {len(self.counted)}" + (f" ({', '.join(self.counted)})" if self.counted else "")
        why = f"; not counted: {'; '.join(self.ignored)}" if self.ignored else ""
        return (f"promotion to {stage} needs {self.required} approval(s){roles} from people other than "
                f"the requester {requester}, each signed with their own trusted key; {have}{why}. Record one "
                f"with `gov approve MODEL@VERSION --stage {stage} --key KEYFILE`")

    def as_dict(self) -> dict[str, Any]:
        return {"required": self.required, "roles": list(self.roles), "approvers": list(self.counted),
                "ignored": list(self.ignored), "satisfied": self.satisfied, "problem": self.problem,
                "signers": list(self.signers)}


def approval_requirement(pack: Any) -> tuple[int, tuple[str, ...]]:
    """``(required, roles)`` from a pack's ``approvals`` (a mapping or an object; absent: none)."""
    spec = getattr(pack, "approvals", None)
    if spec is None:
        return 0, ()
    if isinstance(spec, Mapping):
        required, roles = spec.get("required", 0), spec.get("roles") or ()
    else:
        required, roles = getattr(spec, "required", 0), getattr(spec, "roles", None) or ()
    return int(required or 0), tuple(str(r) for r in roles)


def _role_principals(signoff: Signoff, roles: Sequence[str]) -> tuple[set[str] | None, list[str]]:
    if not roles:
        return None, []
    allowed: set[str] = set()
    missing: list[str] = []
    for role in roles:
        principals = signoff.settings.role_principals(role)
        if principals is None:
            missing.append(role)
            continue
        allowed.update(p.strip().casefold() for p in principals)
    return allowed, missing


def approvals_status(session: Session, mv: ModelVersion, stage: str, *, requester: Signer, pack: PolicyPack,
                     evidence_digest: str, signoff: Signoff) -> ApprovalStatus:
    """Count the approvals that hold now: verified (or, under ``signatures: optional``, unsigned),
    given on this artifact, evidence and pack, by people other than the requester, once per key and
    per principal, with a configured role when the pack names roles."""
    required, roles = approval_requirement(pack)
    optional = getattr(pack, "signatures", "required") == "optional"
    if required and not optional and requester.key is None:
        return ApprovalStatus(required, roles, problem=(
            f"pack {pack.name} needs {required} signed approval(s) for {stage}, so the promotion must be signed "
            "too (the promoter's key is how approvers are told apart from the requester): pass --key KEYFILE"))
    rows = session.exec(select(Approval).where(Approval.model_version_id == mv.id, Approval.stage == stage)
                        .order_by(col(Approval.id))).all()
    statements = statements_for(session, "approval", [int(r.id or 0) for r in rows])
    allowed, missing_roles = _role_principals(signoff, roles)
    counted: list[str] = []
    signers: list[dict[str, Any]] = []
    ignored: list[str] = []
    keys: set[str] = set()
    people: set[str] = set()
    owner = session.get(Model, mv.model_id)
    expected = {"model": owner.name if owner else None, "version": mv.version, "stage": stage,
                "evidence": evidence_digest, "policy": pack_ref(pack), "decision": "approve"}
    for row in rows:
        check = signoff.verify(statements.get(int(row.id or 0)))
        who = check.principal or row.approver
        label = f"approval {row.id} by {who}"
        predicate = check.predicate or {}
        if check.status not in ("verified", "unsigned"):
            ignored.append(f"{label}: {check.reason}")
            continue
        if check.status == "unsigned" and not optional:
            ignored.append(f"{label}: unsigned (pack {pack.name} requires signatures)")
            continue
        if check.predicate is None:
            ignored.append(f"{label}: no statement recorded")
            continue
        stale = [k for k, v in expected.items() if predicate.get(k) != v]
        if check.subject_digest != mv.artifact_hash:
            stale.insert(0, "artifact")
        if stale:
            ignored.append(f"{label}: given on another {', '.join(stale)} (changed since it was approved)")
            continue
        fingerprint = check.fingerprint
        person = str(who).casefold()
        if (fingerprint is not None and fingerprint == requester.fingerprint) or person == requester.principal:
            ignored.append(f"{label}: the requester cannot approve their own promotion")
            continue
        if allowed is not None and person not in allowed:
            roles_text = " or ".join(roles)
            hint = f" (roles not mapped in governance.toml [governance.roles]: {', '.join(missing_roles)})" \
                if missing_roles else ""
            ignored.append(f"{label}: {who} does not hold role {roles_text}{hint}")
            continue
        if (fingerprint is not None and fingerprint in keys) or person in people:
            ignored.append(f"{label}: {who} already counted (one person, one approval)")
            continue
        if fingerprint is not None:
            keys.add(fingerprint)
        people.add(person)
        status = "verified" if check.verified else "unsigned"
        counted.append(f"{who} ({fingerprint})" if fingerprint else f"{who} (unsigned)")
        signers.append({"approval_id": row.id, "principal": who, "key_fingerprint": fingerprint,
                        "verification": status})
    return ApprovalStatus(required, roles, tuple(counted), tuple(dict.fromkeys(ignored)), None, tuple(signers))


def approve(ref: str | Ref, *, stage: str, key: str | Path | SigningKey | None = None, policy: Any = None,
            role: str | None = None, comment: str | None = None, catalog: Catalog | None = None,
            actor: str | None = None, now: datetime | None = None) -> records.Approval:
    """Record that the holder of ``key`` approves ``MODEL@VERSION`` for ``stage`` on its current evidence
    under the stage's pack (``policy``, or the pack ``governance.toml`` binds to the stage).

    Without ``key`` the approval is unsigned: it counts only under a pack with ``signatures: optional``.
    Returns the :class:`~governance.registry.Approval` recorded.
    """
    from governance.policy import context_for_model_version
    from governance.registry._gate import load_policy

    stage = validate_stage(stage, "--stage")
    if role is not None:
        raise InputError("--role: roles come from the project configuration ([governance.roles] in "
                         "governance.toml maps each role to principals of the trust store), not the command line")
    cat = resolve_catalog(catalog)
    ctx = context_for_model_version(cat, ref)
    signoff = Signoff.load(now)
    bound = signoff.settings.stage_policy(stage)
    if policy is None and bound is None:
        raise InputError(f"--policy: name the pack the approval is given under (or bind stage {stage} to a pack "
                         "in governance.toml [governance.stages])")
    pack, _ = load_policy(policy if policy is not None else (bound.location if bound else ""))
    from governance.registry._signoff import check_stage_pack

    check_stage_pack(signoff.settings, stage, pack)
    signer = signoff.signer(resolve_who(actor), str(key) if isinstance(key, Path) else key)
    with audited(cat, signer.principal) as tx:
        model, mv = resolve_model_version(tx.session, parse_ref(ref))
        approval = Approval(model_version_id=int(mv.id or 0), stage=stage, approver=signer.principal,
                            role=None, comment=comment)
        tx.session.add(approval)
        tx.session.flush()
        row = signoff.record(tx, "approval", int(approval.id or 0), signer,
                             subject_name=f"{model.name}@{mv.version}", artifact_digest=mv.artifact_hash,
                             predicate={"decision": "approve", "model": model.name, "version": mv.version,
                                        "stage": stage, "evidence": ctx.sources.get("evidence_digest"),
                                        "policy": pack_ref(pack), "comment": comment})
        tx.record("approval.create", f"model:{model.name}@{mv.version}",
                  {"approval_id": approval.id, "stage": stage, "comment": comment, "statement_id": row.id,
                   "key_fingerprint": signer.fingerprint, "signed": signer.key is not None,
                   "evidence": ctx.sources.get("evidence_digest"), "policy": pack_ref(pack),
                   "trust_store": signoff.trust.digest})
        out = records.approval_record(approval, model.name, mv.version,
                                      records.DecisionSignature.of(signoff.verify(row)))
    return out


def approval_records(session: Session, rows: Sequence[Approval], model: str, version: int,
                     binding: records.Binding | None = None) -> list[records.Approval]:
    """Approval rows of ``model@version`` as :class:`~governance.registry.Approval` records, in their
    order, each with its signature verified now and, with ``binding``, whether it matches the audit log."""
    signatures = decision_signatures(session, "approval", [int(a.id or 0) for a in rows])
    return [records.approval_record(a, model, version, signatures[int(a.id or 0)],
                                    None if binding is None else binding.problem("approval", a)) for a in rows]


def list_approvals(ref: str | Ref, *, stage: str | None = None,
                   catalog: Catalog | None = None) -> list[records.Approval]:
    """Approvals recorded for ``MODEL@VERSION`` (optionally one stage), oldest first, each with its
    signature verified now; :meth:`~governance.registry.Approval.as_dict` is the listing's JSON form."""
    cat = resolve_catalog(catalog)
    with cat.read() as session:
        model, mv = resolve_model_version(session, parse_ref(ref))
        stmt = select(Approval).where(Approval.model_version_id == mv.id)
        if stage is not None:
            stmt = stmt.where(Approval.stage == stage)
        rows = session.exec(stmt.order_by(col(Approval.id))).all()
        return approval_records(session, rows, model.name, mv.version)
