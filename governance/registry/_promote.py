"""Promotion, rollback and promotion history.

An alias (stage) is a pointer in ``model_alias``; every move is an append-only ``promotion_event``
written in the same audited transaction as the pointer.  A promotion evaluates the pack first (no
lock held), then, in one transaction: stores the evaluation, checks sign-off, re-reads the stage
under the model's row lock and moves it only if it still points where it pointed when the promotion
started (compare-and-set).  Refusals and lost races are recorded too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.audit import AuditedTransaction, audited, check_bound, require_bound
from governance.catalog import (
    Approval,
    Catalog,
    Model,
    ModelAlias,
    ModelVersion,
    PolicyEvaluation,
    PromotionEvent,
    Ref,
    parse_ref,
    resolve_model,
)
from governance.errors import EvaluationError, InputError, NotFoundError, PolicyViolation
from governance.registry import _records as records
from governance.registry._approvals import ApprovalStatus, approvals_status
from governance.registry._common import resolve_catalog, resolve_who, validate_stage
from governance.registry._gate import (
    GateReport,
    Subject,
    evaluate_subject,
    load_policy,
    missing_evidence,
    pack_applicability,
    predictions_spec,
    resolve_subject,
    store,
)
from governance.registry._signoff import (
    Signer,
    Signoff,
    check_stage_pack,
    decision_signatures,
    pack_ref,
    statements_for,
)
from governance.registry._verdict import EXIT_ERROR, EXIT_OK, exit_code

if TYPE_CHECKING:  # pragma: no cover
    from governance.policy import PolicyPack

__all__ = [
    "OBSERVE",
    "PromotionConflict",
    "Rollback",
    "history",
    "promote",
    "promotion_records",
    "refusal_error",
    "rollback",
    "stage_version",
]


class PromotionConflict(PolicyViolation):
    """The stage moved to another version while this promotion was being evaluated (exit 1)."""


class _Observe:
    def __repr__(self) -> str:
        return "OBSERVE"


OBSERVE: Any = _Observe()
"""Default of ``if_current``: expect the stage to still point where it did when promotion started."""


def _lock_model(session: Session, model_id: int) -> Model:
    """The model row, locked for the rest of the transaction (``FOR UPDATE`` on PostgreSQL; SQLite's
    ``BEGIN IMMEDIATE`` already serialises writers)."""
    return session.exec(select(Model).where(Model.id == model_id).with_for_update()).one()


def _current(session: Session, model_id: int, stage: str) -> ModelAlias | None:
    stmt = select(ModelAlias).where(ModelAlias.model_id == model_id, ModelAlias.alias == stage)
    return session.exec(stmt).first()


@dataclass(frozen=True)
class Rollback:
    """What :func:`rollback` did: ``stage`` of ``model`` moved from ``from_version`` back to
    ``to_version``, for ``reason``; recorded as promotion event ``event_id`` by ``actor``, the last
    audit event of the transaction being ``audit_seq``.

    :meth:`as_dict` is the JSON form (``gov rollback --format json``).  Reading by key
    (``outcome["to_version"]``, ``outcome.get("audit_seq")``) still works, as when this was a dict."""

    model: str
    stage: str
    from_version: int | None
    to_version: int | None
    reason: str
    event_id: int | None
    actor: str
    audit_seq: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        if key not in _ROLLBACK_FIELDS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in _ROLLBACK_FIELDS else default


_ROLLBACK_FIELDS = frozenset(f.name for f in fields(Rollback))


def _version_number(session: Session, version_id: int | None) -> int | None:
    if version_id is None:
        return None
    mv = session.get(ModelVersion, version_id)
    return None if mv is None else mv.version


def stage_version(catalog: Catalog, model: str, stage: str) -> int | None:
    """The version number ``MODEL@STAGE`` points at, or None."""
    with catalog.read() as session:
        found = resolve_model(session, model)
        alias = _current(session, int(found.id or 0), stage)
        return None if alias is None else _version_number(session, alias.model_version_id)


def _move(tx: AuditedTransaction, model_id: int, stage: str, expected_id: int | None, target_id: int) -> bool:
    """Compare-and-set the stage pointer; False when it no longer points at ``expected_id``."""
    session = tx.session
    if expected_id is None:
        if _current(session, model_id, stage) is not None:
            return False
        session.add(ModelAlias(model_id=model_id, alias=stage, model_version_id=target_id,
                               updated_at=tx.time))
        session.flush()
        return True
    table = ModelAlias.__table__  # type: ignore[attr-defined]
    moved = session.execute(
        sa.update(table)
        .where(table.c.model_id == model_id, table.c.alias == stage, table.c.model_version_id == expected_id)
        .values(model_version_id=target_id, updated_at=tx.time)
    )
    tx.mutated = True
    return bool(moved.rowcount)  # type: ignore[attr-defined]


def _event(tx: AuditedTransaction, model: Model, stage: str, action: str, *, from_id: int | None,
           to_id: int | None, reason: str | None, evaluation_id: int | None,
           data: dict[str, Any]) -> PromotionEvent:
    row = PromotionEvent(model_id=int(model.id or 0), alias=stage, action=action, from_version_id=from_id,
                         to_version_id=to_id, actor=tx.actor, reason=reason, evaluation_id=evaluation_id,
                         created_at=tx.time)
    tx.session.add(row)
    tx.session.flush()
    tx.record(f"promotion.{action}", f"model:{model.name}@{stage}", {"event_id": row.id, **data})
    return row


def promote(
    ref: str | Ref,
    *,
    to: str,
    policy: str | Path | PolicyPack | None = None,
    predictions: str | Path | None = None,
    label: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    sensitive: Sequence[str] | str | None = None,
    reason: str | None = None,
    if_current: Any = OBSERVE,
    catalog: Catalog | None = None,
    actor: str | None = None,
    now: datetime | None = None,
    raise_on_refusal: bool = True,
    force: bool = False,
    key: str | Path | None = None,
    after_pass: Callable[[GateReport], None] | None = None,
) -> GateReport:
    """Gate ``MODEL@VERSION`` with ``policy`` and, if it passes and is signed off, move ``to`` to it.

    ``if_current`` is the version number (or None: no version) the stage must point at for the move
    to happen; by default, wherever it pointed when this call started.  The evaluation and the
    decision (promote, refused or conflict) are stored and audited either way.  With
    ``raise_on_refusal`` a refusal raises :class:`PolicyViolation` (blocked, missing approvals),
    :class:`PromotionConflict` (the stage moved meanwhile) or :class:`EvaluationError` (a check could
    not be evaluated) after it was recorded; otherwise read ``report.decision``.  A pack whose
    ``appliesTo.riskTier`` leaves out the model's risk tier is refused (:class:`InputError`, nothing
    recorded) unless ``force``.  A pack other than the one ``governance.toml`` binds to the stage is an
    :class:`InputError`.  With ``key`` the decision is signed by the promoter (needed where the pack
    requires signed approvals: approvers are told apart from the promoter by key).
    ``after_pass`` is called with the report once a promotion committed (never on a refusal); e.g. the
    MLflow bridge sets the alias there.
    """
    stage = validate_stage(to)
    spec = predictions_spec(predictions, label, prediction, score, sensitive)
    signoff = Signoff.load(now)
    pack, source = load_policy(_stage_pack(signoff, stage) if policy is None else policy)
    stage_binding = check_stage_pack(signoff.settings, stage, pack)
    signer = signoff.signer(resolve_who(actor), None if key is None else str(key))
    who = signer.principal
    cat = resolve_catalog(catalog)
    subject = resolve_subject(cat, ref, spec)
    override = pack_applicability(pack, subject, force=force)
    model_id = int(subject.model_id or 0)
    expected_id = _expected_version_id(cat, subject, stage, if_current)
    result, document = evaluate_subject(cat, subject, pack, now=now)
    gate_code = exit_code(document)
    evidence = str(document.get("evidence_digest") or "")
    with audited(cat, who) as tx:
        evaluation_id = store(tx, result, subject, "promote", {"stage": stage, **override})
        model = _lock_model(tx.session, model_id)
        current = _current(tx.session, model_id, stage)
        current_id = None if current is None else current.model_version_id
        target = _target(tx.session, subject)
        target_id = int(target.id or 0)
        approvals = approvals_status(tx.session, target, stage, requester=signer, pack=pack,
                                     evidence_digest=evidence, signoff=signoff)
        _bind_approvals_read(tx.session, target_id, stage, current)
        why: str | None
        if gate_code != EXIT_OK:
            action, why = "refused", _refusal_reason(document, gate_code, subject)
        elif not approvals.satisfied:
            action, why = "refused", approvals.message(stage, who)
        elif current_id != expected_id or not _move(tx, model_id, stage, expected_id, target_id):
            action, why = "conflict", _conflict_reason(tx.session, stage, expected_id, current_id, subject)
        else:
            action, why = "promote", reason
        decision = _record_decision(
            tx, _Decision(action, why, stage, subject, model, target, current_id, evaluation_id),
            document=document, pack=pack, stage_binding=stage_binding, approvals=approvals,
            signoff=signoff, signer=signer)
    report = GateReport(document, subject, source, evaluation_id, decision, result)
    if action == "promote" and after_pass is not None:
        after_pass(report)
    if raise_on_refusal and action != "promote":
        raise refusal_error(report)
    return report


@dataclass(frozen=True)
class _Decision:
    """What :func:`promote` decided, before it is recorded."""

    action: str
    why: str | None
    stage: str
    subject: Subject
    model: Model
    target: ModelVersion
    current_id: int | None
    evaluation_id: int


def _record_decision(tx: AuditedTransaction, d: _Decision, *, document: dict[str, Any], pack: PolicyPack,
                     stage_binding: Any, approvals: ApprovalStatus, signoff: Signoff, signer: Signer) -> dict[str, Any]:
    """Store and sign the promotion event of ``d``; the decision document of the gate report."""
    subject, evidence = d.subject, str(document.get("evidence_digest") or "")
    who = signer.principal
    from_version = _version_number(tx.session, d.current_id)
    base = {"version": subject.version, "stage": d.stage, "evaluation_id": d.evaluation_id,
            "status": document.get("status"), "policy": document.get("policy"),
            "stage_policy": stage_binding, "evidence": evidence, "trust_store": signoff.trust.digest,
            "key_fingerprint": signer.fingerprint}
    row = _event(tx, d.model, d.stage, d.action, from_id=d.current_id, to_id=int(d.target.id or 0), reason=d.why,
                 evaluation_id=d.evaluation_id,
                 data={**base, "from_version": from_version, "reason": d.why, "approvals": approvals.as_dict()})
    signed = signoff.record(tx, "promotion", int(row.id or 0), signer, subject_name=subject.label,
                            artifact_digest=d.target.artifact_hash,
                            predicate={"decision": d.action, "model": subject.model, "version": subject.version,
                                       "stage": d.stage, "evidence": evidence, "policy": pack_ref(pack),
                                       "evaluation_id": d.evaluation_id,
                                       "approvals": [s["approval_id"] for s in approvals.signers]})
    return {"action": d.action, "stage": d.stage, "model": subject.model, "version": subject.version,
            "from_version": from_version, "reason": d.why,
            "approvals": approvals.as_dict(), "actor": who, "audit_seq": tx.events[-1].seq,
            "signer": {"principal": who, "key_fingerprint": signer.fingerprint,
                       "verification": "signed" if signer.key else "unsigned",
                       "statement_id": signed.id}}


def _target(session: Session, subject: Subject) -> ModelVersion:
    target = session.get(ModelVersion, int(subject.model_version_id or 0))
    if target is None:
        raise NotFoundError(f"{subject.label}: the model version disappeared during the evaluation")
    return target


def _stage_pack(signoff: Signoff, stage: str) -> str | Path:
    """The pack ``governance.toml`` binds to ``stage`` (the default of ``promote(policy=None)``)."""
    bound = signoff.settings.stage_policy(stage)
    if bound is None:
        raise InputError(f"--policy: give the pack to gate with (or bind stage {stage} to a pack in "
                         "governance.toml [governance.stages])")
    return bound.location


def _expected_version_id(cat: Catalog, subject: Subject, stage: str, if_current: Any) -> int | None:
    """The model version id ``stage`` must still point at for the move (``if_current`` of :func:`promote`)."""
    model_id = int(subject.model_id or 0)
    with cat.read() as session:
        if if_current is OBSERVE:
            observed = _current(session, model_id, stage)
            return None if observed is None else observed.model_version_id
        if if_current is None:
            return None
        expected = session.exec(select(ModelVersion).where(
            ModelVersion.model_id == model_id, ModelVersion.version == int(if_current))).first()
        if expected is None:
            raise NotFoundError(f"--if-current: model {subject.model!r} has no version {if_current}")
        return expected.id


def _bind_approvals_read(session: Session, target_id: int, stage: str, current: ModelAlias | None) -> None:
    """Bind every approval the decision read, counted or not, and the alias it read, to the audit log."""
    read = [int(i or 0) for i in session.exec(select(Approval.id).where(
        Approval.model_version_id == target_id, Approval.stage == stage)).all()]
    check_bound(session, None, {
        "approval": read, "model_alias": [None if current is None else current.id],
        "signed_statement": [r.id for r in statements_for(session, "approval", read).values()]})


def _conflict_reason(session: Session, stage: str, expected_id: int | None, current_id: int | None,
                     subject: Subject) -> str:
    return (f"{stage} moved from {_label(session, expected_id)} to {_label(session, current_id)} while "
            f"{subject.label} was being evaluated; re-run the promotion")


def refusal_error(report: GateReport) -> PolicyViolation | EvaluationError:
    """The exception that says why a recorded promotion did not happen."""
    decision = report.decision or {}
    message = f"{report.subject.label} not promoted to {decision.get('stage')}: {decision.get('reason')}"
    if decision.get("action") == "conflict":
        return PromotionConflict(message)
    if exit_code(report.document) == EXIT_ERROR:
        return EvaluationError(message)
    return PolicyViolation(message)


def _label(session: Session, version_id: int | None) -> str:
    number = _version_number(session, version_id)
    return "no version" if number is None else f"version {number}"


def _gate_reason(document: dict[str, Any], code: int) -> str:
    from governance.registry._verdict import Outcome, classify, result_message

    wanted = Outcome.ERROR if code == EXIT_ERROR else Outcome.FAILURE
    bad = [r for r in document.get("results", []) if classify(r) is wanted]
    head = "could not be evaluated" if code == EXIT_ERROR else "blocked by policy"
    if not bad:
        return f"{head} (status {document.get('status')})"
    return f"{head}: " + "; ".join(f"{r.get('id')} {r.get('status')}: {result_message(r)}" for r in bad)


def _refusal_reason(document: dict[str, Any], code: int, subject: Subject) -> str:
    reason = _gate_reason(document, code)
    missing = missing_evidence(document, subject) if code == EXIT_ERROR else None
    return f"{reason}. {missing[0].upper()}{missing[1:]}" if missing else reason


def _previous_passed(session: Session, model_id: int, stage: str, current_id: int | None) -> int | None:
    """The version to roll back to: the latest one promoted to ``stage`` through its gate, other than
    the current one and not rolled back away from since."""
    events = session.exec(
        select(PromotionEvent).where(PromotionEvent.model_id == model_id, PromotionEvent.alias == stage)
        .order_by(col(PromotionEvent.id).desc())
    ).all()
    rolled_back_from: set[int] = set()
    for event in events:  # newest first
        if event.action == "rollback" and event.from_version_id is not None:
            rolled_back_from.add(event.from_version_id)
        elif event.action == "promote" and event.to_version_id is not None:
            target = event.to_version_id
            if target != current_id and target not in rolled_back_from:
                return target
    return None


def rollback(model: str, *, stage: str, reason: str | None = None, catalog: Catalog | None = None,
             actor: str | None = None, key: str | Path | None = None,
             after: Callable[[Rollback], None] | None = None) -> Rollback:
    """Move ``stage`` back to the previous version that passed its gate there; records why (signed
    by the holder of ``key`` when given).  ``after`` is called with the outcome (a :class:`Rollback`) once
    the rollback committed."""
    stage = validate_stage(stage, "--stage")
    name = parse_ref(model, "MODEL").name
    signoff = Signoff.load()
    signer = signoff.signer(resolve_who(actor), None if key is None else str(key))
    who = signer.principal
    cat = resolve_catalog(catalog)
    require_bound(cat, {}, actor=who)  # a fresh state snapshot, checked against inside the transaction
    with audited(cat, who) as tx:
        found = resolve_model(tx.session, name)
        tx.record("promotion.rollback.request", f"model:{name}@{stage}", {"reason": reason})
        locked = _lock_model(tx.session, int(found.id or 0))
        current = _current(tx.session, int(found.id or 0), stage)
        if current is None:
            raise NotFoundError(f"model {name!r} has no {stage!r} stage to roll back")
        history_ids = list(tx.session.exec(select(PromotionEvent.id).where(
            PromotionEvent.model_id == found.id, PromotionEvent.alias == stage)).all())
        check_bound(tx.session, None, {"model": [found.id], "model_alias": [current.id],
                                       "promotion_event": history_ids})
        target = _previous_passed(tx.session, int(found.id or 0), stage, current.model_version_id)
        if target is not None:
            check_bound(tx.session, None, {"model_version": [target]})
        if target is None:
            raise InputError(f"{name}@{stage}: no earlier version passed its gate for {stage}; "
                             "nothing to roll back to")
        from_id = current.model_version_id
        current.model_version_id = target
        current.updated_at = tx.time
        tx.session.add(current)
        why = reason or "rollback"
        row = _event(tx, locked, stage, "rollback", from_id=from_id, to_id=target, reason=why,
                     evaluation_id=None, data={"from_version": _version_number(tx.session, from_id),
                      "version": _version_number(tx.session, target), "reason": why,
                      "key_fingerprint": signer.fingerprint, "trust_store": signoff.trust.digest})
        back = tx.session.get(ModelVersion, target)
        signoff.record(tx, "rollback", int(row.id or 0), signer, subject_name=f"{name}@{back.version if back else '?'}",
                       artifact_digest=back.artifact_hash if back else None,
                       predicate={"decision": "rollback", "model": name, "stage": stage,
                                  "from_version": _version_number(tx.session, from_id),
                                  "version": back.version if back else None, "reason": why})
        out = Rollback(model=name, stage=stage, from_version=_version_number(tx.session, from_id),
                       to_version=_version_number(tx.session, target), reason=why, event_id=row.id,
                       actor=who, audit_seq=tx.events[-1].seq)
    if after is not None:
        after(out)
    return out


def promotion_records(session: Session, model_id: int, model: str, *, stage: str | None = None,
                      binding: records.Binding | None = None) -> list[records.Promotion]:
    """The moves of the model's stage aliases (optionally one stage), oldest first, as
    :class:`~governance.registry.Promotion` records with their signatures verified now and, with
    ``binding``, whether each matches the audit log."""
    stmt = select(PromotionEvent).where(PromotionEvent.model_id == model_id)
    if stage is not None:
        stmt = stmt.where(PromotionEvent.alias == stage)
    events = session.exec(stmt.order_by(col(PromotionEvent.id))).all()
    numbers = dict(session.exec(select(ModelVersion.id, ModelVersion.version)
                                .where(ModelVersion.model_id == model_id)).all())
    ids = [e.evaluation_id for e in events if e.evaluation_id is not None]
    statuses = dict(session.exec(select(PolicyEvaluation.id, PolicyEvaluation.status)
                                 .where(col(PolicyEvaluation.id).in_(ids))).all()) if ids else {}
    signatures = decision_signatures(session, ("promotion", "rollback"), [int(e.id or 0) for e in events])
    return [records.promotion_record(e, model, numbers, statuses.get(e.evaluation_id) if e.evaluation_id else None,
                                     signatures[int(e.id or 0)],
                                     None if binding is None else binding.problem("promotion_event", e))
            for e in events]


def history(model: str | Ref, *, stage: str | None = None,
            catalog: Catalog | None = None) -> list[records.Promotion]:
    """Promotion history of ``MODEL`` (oldest first): promotions, refusals, conflicts and rollbacks;
    :meth:`~governance.registry.Promotion.as_dict` is the history's JSON form."""
    name = parse_ref(model, "MODEL").name
    cat = resolve_catalog(catalog)
    with cat.read() as session:
        found = resolve_model(session, name)
        return promotion_records(session, int(found.id or 0), found.name, stage=stage)
