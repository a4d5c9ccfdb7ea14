"""Sign-off: signed decisions recorded with the catalog and re-verified by every gate (design 7a).

A decision (approval, waiver request, waiver approval, promotion, rollback) is stored as the exact
canonical statement bytes and their SSHSIG signature (:class:`SignedStatement`).  The gate believes
nothing the catalog says about who decided: it verifies each statement against the trust store
(``allowed_signers``) now, checks that the statement names this version's artifact, the evidence and
pack the gate is using, and counts people by key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from governance.audit import AuditedTransaction, format_time
from governance.catalog import SignedStatement
from governance.config import Settings, load_settings
from governance.errors import InputError
from governance.registry._records import DecisionSignature, SignedDecision, signed_decision
from governance.signing import (
    SigningKey,
    TrustStore,
    Verification,
    load_signing_key,
    load_trust_store,
    make_statement,
    normalise_identity,
    sign_statement,
    signer_principal,
    verify_statement,
)

if TYPE_CHECKING:  # pragma: no cover
    from governance.policy import PolicyPack

__all__ = ["Signer", "Signoff", "check_stage_pack", "decision_signatures", "pack_ref", "signed_decisions",
           "statement_digest", "statements_for"]


def statement_digest(statement: str) -> str:
    return "sha256:" + hashlib.sha256(statement.encode("utf-8")).hexdigest()


def pack_ref(pack: PolicyPack) -> dict[str, str]:
    return {"name": pack.name, "version": pack.version, "digest": pack.digest}


@dataclass(frozen=True)
class Signer:
    """Who is deciding: a principal, and the key when the decision is signed."""

    principal: str
    key: SigningKey | None = None

    @property
    def fingerprint(self) -> str | None:
        return None if self.key is None else self.key.fingerprint

    def describe(self) -> str:
        return f"{self.principal} ({self.fingerprint})" if self.key else f"{self.principal} (unsigned)"


@dataclass(frozen=True)
class Signoff:
    """Settings and trust store for one operation, read once."""

    settings: Settings
    trust: TrustStore
    now: datetime

    @classmethod
    def load(cls, now: datetime | None = None) -> Signoff:
        settings = load_settings()
        return cls(settings, load_trust_store(settings.allowed_signers), now or datetime.now(UTC))

    def signer(self, actor: str, key: str | SigningKey | None) -> Signer:
        """The deciding person: the key's principal in the trust store, or the (normalised) actor unsigned."""
        if key is None:
            return Signer(normalise_identity(actor, "actor"))
        loaded = key if isinstance(key, SigningKey) else load_signing_key(key)
        return Signer(signer_principal(loaded, self.trust, actor, self.now), loaded)

    def record(self, tx: AuditedTransaction, kind: str, target_id: int, signer: Signer, *, subject_name: str,
               artifact_digest: str | None, predicate: dict[str, Any]) -> SignedStatement:
        """Build, sign (when the signer has a key) and store a statement; returns the row."""
        body = {**predicate, "action": kind, "principal": signer.principal, "time": format_time(tx.time),
                "trust_store": self.trust.digest}
        statement = make_statement(subject_name=subject_name, artifact_digest=artifact_digest, predicate=body)
        signature = None if signer.key is None else sign_statement(statement, signer.key)
        row = SignedStatement(kind=kind, target_id=target_id, statement=statement.decode("utf-8"),
                              signature=signature, key_fingerprint=signer.fingerprint,
                              principal=signer.principal, trust_digest=self.trust.digest, created_at=tx.time)
        tx.session.add(row)
        tx.session.flush()
        return row

    def verify(self, row: SignedStatement | None) -> Verification:
        if row is None:
            return Verification("unsigned", reason="no statement recorded")
        return verify_statement(row.statement, row.signature, self.trust, self.now)


def statements_for(session: Session, kind: str, target_ids: Iterable[int]) -> dict[int, SignedStatement]:
    """The newest statement of ``kind`` for each target id."""
    ids = sorted(set(target_ids))
    if not ids:
        return {}
    rows = session.exec(select(SignedStatement).where(SignedStatement.kind == kind,
                                                      col(SignedStatement.target_id).in_(ids))
                        .order_by(col(SignedStatement.id))).all()
    return {r.target_id: r for r in rows}


def _version_tuple(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        raise InputError(f"{what}: expected a version like 1.2.0, got {text!r}") from None


def check_stage_pack(settings: Settings, stage: str, pack: PolicyPack) -> dict[str, Any] | None:
    """Refuse a pack other than the one the configuration binds to ``stage``; what was required."""
    bound = settings.stage_policy(stage)
    if bound is None:
        return None
    required = {"pack": bound.pack, "digest": bound.digest, "min_version": bound.min_version}
    what = f"stage {stage} requires pack {bound.pack}"
    if pack.name != bound.pack:
        raise InputError(f"--policy: {what} (governance.toml [stages.{stage}]), not {pack.name}")
    if bound.digest is not None and pack.digest != bound.digest:
        raise InputError(f"--policy: {what} with digest {bound.digest}; this {pack.name} {pack.version} is "
                         f"{pack.digest}")
    if bound.min_version is not None and _version_tuple(pack.version, "pack version") < _version_tuple(
            bound.min_version, f"stages.{stage}.min_version"):
        raise InputError(f"--policy: {what} at version {bound.min_version} or later; got {pack.version}")
    return required


def decision_signatures(session: Session, kinds: str | tuple[str, ...], target_ids: Iterable[int],
                        now: datetime | None = None) -> dict[int, DecisionSignature]:
    """Each decision's signature (signer principal, key fingerprint, verification status now:
    ``verified``, ``unsigned``, ``untrusted`` or ``invalid``) against the configured trust store."""
    signoff = Signoff.load(now)
    ids = list(target_ids)
    statements: dict[int, SignedStatement] = {}
    for kind in (kinds,) if isinstance(kinds, str) else kinds:
        statements.update(statements_for(session, kind, ids))
    return {target: DecisionSignature.of(signoff.verify(statements.get(target))) for target in set(ids)}


def signed_decisions(session: Session, model: str | None = None,
                     now: datetime | None = None) -> list[SignedDecision]:
    """For the audit report: every recorded decision (oldest first), optionally about one model, with
    its signature verified now."""
    signoff = Signoff.load(now)
    out: list[SignedDecision] = []
    for row in session.exec(select(SignedStatement).order_by(col(SignedStatement.id))).all():
        try:
            predicate = dict(json.loads(row.statement).get("predicate") or {})
        except (ValueError, AttributeError):
            predicate = {}
        if model is not None and predicate.get("model") != model:
            continue
        out.append(signed_decision(row, predicate, signoff.verify(row)))
    return out
