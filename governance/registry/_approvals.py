"""Sign-off: approvals of a model version for a stage, and whether a pack's requirement is met."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from governance.audit import audited
from governance.catalog import Approval, Catalog, parse_ref, resolve_model_version
from governance.catalog._views import iso
from governance.errors import InputError
from governance.registry._common import resolve_catalog, resolve_who, validate_stage

__all__ = ["ApprovalStatus", "approval_requirement", "approvals_status", "approve", "list_approvals"]


@dataclass(frozen=True)
class ApprovalStatus:
    """Whether the approvals recorded for a version and stage meet a pack's requirement."""

    required: int
    roles: tuple[str, ...]
    counted: tuple[str, ...] = ()
    ignored: tuple[str, ...] = field(default=())

    @property
    def satisfied(self) -> bool:
        return len(self.counted) >= self.required

    def message(self, stage: str, requester: str) -> str:
        roles = f" with role {' or '.join(self.roles)}" if self.roles else ""
        have = f"have {len(self.counted)}" + (f" ({', '.join(self.counted)})" if self.counted else "")
        role_option = f" --role {self.roles[0]}" if self.roles else ""
        why = f"; not counted: {'; '.join(self.ignored)}" if self.ignored else ""
        return (f"promotion to {stage} needs {self.required} approval(s){roles} from someone other than "
                f"the requester {requester}; {have}{why}. Record one with "
                f"`gov approve MODEL@VERSION --stage {stage}{role_option}`")

    def as_dict(self) -> dict[str, Any]:
        return {"required": self.required, "roles": list(self.roles), "approvers": list(self.counted),
                "ignored": list(self.ignored), "satisfied": self.satisfied}


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


def approvals_status(session: Session, model_version_id: int, stage: str, *, requester: str,
                     required: int, roles: Sequence[str]) -> ApprovalStatus:
    """Count distinct approvers for this version and stage, excluding the requester and wrong roles."""
    rows = session.exec(
        select(Approval).where(Approval.model_version_id == model_version_id, Approval.stage == stage)
        .order_by(col(Approval.id))
    ).all()
    counted: list[str] = []
    ignored: list[str] = []
    wanted = {r.casefold() for r in roles}
    for row in rows:
        if row.approver.casefold() == requester.casefold():
            ignored.append(f"{row.approver} is the requester")
        elif wanted and (row.role or "").casefold() not in wanted:
            ignored.append(f"{row.approver} has role {row.role or 'none'}")
        elif row.approver not in counted:
            counted.append(row.approver)
    return ApprovalStatus(required, tuple(roles), tuple(counted), tuple(dict.fromkeys(ignored)))


def approve(ref: str, *, stage: str, role: str | None = None, comment: str | None = None,
            catalog: Catalog | None = None, actor: str | None = None) -> Approval:
    """Record that ``actor`` approves ``MODEL@VERSION`` for ``stage`` (an alias is pinned now)."""
    stage = validate_stage(stage, "--stage")
    if role is not None and not role.strip():
        raise InputError("--role: empty role")
    who = resolve_who(actor)
    cat = resolve_catalog(catalog)
    with audited(cat, who) as tx:
        model, mv = resolve_model_version(tx.session, parse_ref(ref))
        approval = Approval(model_version_id=int(mv.id or 0), stage=stage, approver=who,
                            role=role.strip() if role else None, comment=comment)
        tx.session.add(approval)
        tx.session.flush()
        tx.record("approval.create", f"model:{model.name}@{mv.version}",
                  {"approval_id": approval.id, "stage": stage, "role": approval.role, "comment": comment})
    return approval


def list_approvals(ref: str, *, stage: str | None = None,
                   catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """Approvals recorded for ``MODEL@VERSION`` (optionally one stage), oldest first."""
    cat = resolve_catalog(catalog)
    with cat.read() as session:
        model, mv = resolve_model_version(session, parse_ref(ref))
        stmt = select(Approval).where(Approval.model_version_id == mv.id)
        if stage is not None:
            stmt = stmt.where(Approval.stage == stage)
        rows = session.exec(stmt.order_by(col(Approval.id))).all()
    return [{"id": a.id, "model": model.name, "version": mv.version, "stage": a.stage, "approver": a.approver,
             "role": a.role, "comment": a.comment, "created_at": iso(a.created_at)} for a in rows]
