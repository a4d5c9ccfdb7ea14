"""Read-side queries of the registry for reports: a model version's facts and its decisions (waivers,
approvals, promotions), as the registry's records (:mod:`governance.registry._records`) with their
signatures and whether each matches the audit log.

Reports read the registry through these functions, never its tables: the rules (which waivers apply
to a version, a waiver's state, who signed what) stay here.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from governance.catalog import Approval, ModelAlias, Ref, Waiver, resolve_model_version
from governance.registry import _records as records
from governance.registry._approvals import approval_records
from governance.registry._promote import promotion_records
from governance.registry._records import Binding, VersionFacts
from governance.registry._signoff import Signoff
from governance.registry._waivers import waiver_records

__all__ = [
    "version_approvals",
    "version_facts",
    "version_promotions",
    "version_waivers",
]


def version_facts(session: Session, ref: Ref | str) -> VersionFacts:
    """The facts of ``MODEL@VERSION`` (an alias resolves to its version); :class:`NotFoundError` else."""
    model, mv = resolve_model_version(session, ref)
    aliases = session.exec(
        select(ModelAlias.alias).where(ModelAlias.model_version_id == mv.id).order_by(col(ModelAlias.alias))
    ).all()
    return records.version_facts_record(model, mv, tuple(aliases))


def version_waivers(session: Session, facts: VersionFacts, binding: Binding,
                    now: datetime | None = None) -> list[records.Waiver]:
    """The waivers of the model that cover this version (every version, or this one), oldest first, in
    their state at ``now`` (default: now)."""
    rows = session.exec(select(Waiver).where(Waiver.model_id == facts.model_id).order_by(col(Waiver.id))).all()
    covering = [(w, facts.name) for w in rows if w.versions is None or facts.version in w.versions]
    return waiver_records(session, covering, Signoff.load(now), binding)


def version_approvals(session: Session, facts: VersionFacts, binding: Binding) -> list[records.Approval]:
    """The approvals of this version, oldest first."""
    rows = session.exec(
        select(Approval).where(Approval.model_version_id == facts.model_version_id).order_by(col(Approval.id))
    ).all()
    return approval_records(session, rows, facts.name, facts.version, binding)


def version_promotions(session: Session, facts: VersionFacts, binding: Binding) -> list[records.Promotion]:
    """The alias history of the version's model (every version), oldest first."""
    return promotion_records(session, facts.model_id, facts.name, binding=binding)
