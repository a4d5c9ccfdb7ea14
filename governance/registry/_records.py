"""The records the registry's write functions return: what was registered, approved or waived.

Frozen dataclasses built from the catalog's rows inside the transaction that wrote them, so a caller
never holds an ORM row (no lazy loads, no detached-instance errors, no accidental writes).  Attribute
names are the rows' (``mv.version``, ``approval.approver``, ``waiver.expires_at``), plus the model's
name; times are aware UTC datetimes; :meth:`as_dict` is the JSON form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from governance.catalog import Approval as ApprovalRow
from governance.catalog import ModelVersion, Ref
from governance.catalog import Waiver as WaiverRow
from governance.domain import as_utc, iso

__all__ = ["Approval", "RegisteredVersion", "Waiver", "approval_record", "registered_version", "waiver_record"]


class _Record:
    """JSON form shared by the records: times as ISO-8601 UTC text, tuples as lists."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = iso(value)
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out


@dataclass(frozen=True)
class RegisteredVersion(_Record):
    """A model version as :func:`governance.register_model` recorded it.

    ``id`` is the version's catalog id; ``ref`` (``credit-scorer@3``) is accepted by every function
    that takes a model reference.  ``actor`` is who registered it."""

    id: int
    model: str
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
    actor: str
    created_at: datetime

    @property
    def ref(self) -> Ref:
        return Ref(self.model, version=self.version)


@dataclass(frozen=True)
class Approval(_Record):
    """A sign-off recorded by :func:`governance.approve`: ``approver`` approves ``model@version`` for
    ``stage``.  ``key_fingerprint`` is the signing key's (None: unsigned, which counts only under a pack
    with ``signatures: optional``)."""

    id: int
    model: str
    version: int
    model_version_id: int
    stage: str
    approver: str
    comment: str | None
    key_fingerprint: str | None
    created_at: datetime

    @property
    def signed(self) -> bool:
        return self.key_fingerprint is not None

    @property
    def ref(self) -> Ref:
        return Ref(self.model, version=self.version)


@dataclass(frozen=True)
class Waiver(_Record):
    """A waiver of check ``check_id`` for ``model`` (``versions``; None: every version) as
    :func:`governance.waive`, :func:`governance.approve_waiver` or ``revoke_waiver`` left it.

    ``state`` is ``active``, ``expired`` or ``revoked`` when the call returned.  ``approver`` is None
    while a signed request waits for another person's signed approval."""

    id: int
    model: str
    model_id: int
    versions: tuple[int, ...] | None
    check_id: str
    reason: str
    ticket: str | None
    requester: str
    approver: str | None
    state: str
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    created_at: datetime

    @property
    def awaiting_approval(self) -> bool:
        return self.approver is None


def registered_version(mv: ModelVersion, model: str, actor: str) -> RegisteredVersion:
    return RegisteredVersion(
        id=int(mv.id or 0), model=model, model_id=mv.model_id, version=mv.version, artifact_hash=mv.artifact_hash,
        hash_algo=mv.hash_algo, artifact_uri=mv.artifact_uri, flavor=mv.flavor, params=dict(mv.params or {}),
        metrics=dict(mv.metrics or {}), card=dict(mv.card or {}), features=tuple(mv.features or ()),
        training_run_id=mv.training_run_id, actor=actor, created_at=as_utc(mv.created_at),
    )


def approval_record(row: ApprovalRow, model: str, version: int, key_fingerprint: str | None) -> Approval:
    return Approval(
        id=int(row.id or 0), model=model, version=version, model_version_id=row.model_version_id, stage=row.stage,
        approver=row.approver, comment=row.comment, key_fingerprint=key_fingerprint,
        created_at=as_utc(row.created_at),
    )


def waiver_record(row: WaiverRow, model: str, state: str) -> Waiver:
    return Waiver(
        id=int(row.id or 0), model=model, model_id=row.model_id,
        versions=None if row.versions is None else tuple(row.versions), check_id=row.check_id, reason=row.reason,
        ticket=row.ticket, requester=row.requester, approver=row.approver, state=str(state),
        expires_at=as_utc(row.expires_at), revoked_at=None if row.revoked_at is None else as_utc(row.revoked_at),
        revoked_by=row.revoked_by, created_at=as_utc(row.created_at),
    )
