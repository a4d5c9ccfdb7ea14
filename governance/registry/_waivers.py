"""Waivers: a time-boxed, approved exception for one check of one model (some or all versions).

A waiver counts only with two signed statements from two people: the requester's (``gov waive ...
--key``) and the approver's (``gov waivers approve ID --key``), from different trusted keys of
different principals, both naming the waiver as stored.  Unsigned waivers count only under a pack
with ``signatures: optional``.  No waiver may outlive ``waiver_max_days`` (default 90).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from governance.audit import audited
from governance.catalog import (
    Catalog,
    Model,
    SignedStatement,
    Waiver,
    parse_ref,
    resolve_model,
    resolve_model_version,
)
from governance.domain import WaiverState, iso
from governance.domain import waiver_state as domain_waiver_state
from governance.errors import InputError, NotFoundError
from governance.registry import _records as records
from governance.registry._common import parse_expiry, resolve_catalog, resolve_who
from governance.registry._signoff import Signoff, statement_digest, statements_for
from governance.signing import Verification, normalise_identity

if TYPE_CHECKING:  # pragma: no cover
    from governance.catalog import Ref

__all__ = [
    "approve_waiver",
    "list_waivers",
    "revoke_waiver",
    "waive",
    "waiver_records",
    "waiver_signatures",
    "waiver_state",
    "waiver_verdicts",
    "waivers_for",
]

_CHECK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,254}$")


def waiver_state(waiver: Waiver, now: datetime | None = None) -> WaiverState:
    """``active``, ``expired`` or ``revoked`` at ``now`` (:func:`governance.domain.waiver_state`)."""
    return domain_waiver_state(waiver.expires_at, waiver.revoked_at, now or datetime.now(UTC))


def waive(
    ref: str | Ref,
    *,
    check_id: str,
    reason: str,
    expires: str | datetime,
    approver: str | None = None,
    ticket: str | None = None,
    catalog: Catalog | None = None,
    actor: str | None = None,
    now: datetime | None = None,
    key: str | Path | None = None,
) -> records.Waiver:
    """Record a waiver request for ``check_id`` on ``MODEL@VERSION`` (or ``MODEL``: every version).

    With ``key`` the request is signed by its holder, and the waiver waits for another person's
    signed approval (:func:`approve_waiver`).  Without ``key`` it is an unsigned waiver naming
    ``approver`` (who must be someone else), which counts only under ``signatures: optional``.
    ``expires`` must be in the future and within ``waiver_max_days``.  An alias
    (``MODEL@production``) is pinned to the version it points at now.  Returns the
    :class:`~governance.registry.Waiver` recorded.
    """
    if not _CHECK_ID.match(check_id or ""):
        raise InputError(f"--check: expected a check id such as fairness.selection_rate_ratio, "
                         f"got {check_id!r}")
    if not (reason or "").strip():
        raise InputError("--reason: a waiver needs a reason")
    signoff = Signoff.load(now)
    current = signoff.now
    expires_at = parse_expiry(expires, now=current)
    limit = signoff.settings.waiver_max_days
    if expires_at > current + timedelta(days=limit):
        raise InputError(f"--expires: {expires_at.date().isoformat()} is more than {limit} days away; waivers "
                         f"last at most {limit} days (waiver_max_days in governance.toml)")
    signer = signoff.signer(resolve_who(actor), None if key is None else str(key))
    requester = signer.principal
    if signer.key is not None and approver:
        raise InputError("--approver: a signed waiver is approved by the approver's own signature "
                         "(`gov waivers approve ID --key KEYFILE`), not by a name typed here")
    if signer.key is None:
        if not (approver or "").strip():
            raise InputError("--approver: an unsigned waiver needs an approver (or sign the request with --key)")
        approver = normalise_identity(str(approver), "--approver")
        if approver == requester:
            raise InputError(f"--approver: the approver must differ from the requester ({requester}); "
                             "ask someone else to approve the waiver")
    parsed = parse_ref(ref)
    cat = resolve_catalog(catalog)
    with audited(cat, requester) as tx:
        if parsed.version is None and parsed.alias is None:
            model, versions = resolve_model(tx.session, parsed.name), None
        else:
            model, mv = resolve_model_version(tx.session, parsed)
            versions = [mv.version]
        waiver = Waiver(
            model_id=int(model.id or 0), versions=versions, check_id=check_id, reason=reason.strip(),
            ticket=ticket, requester=requester, approver=approver, expires_at=expires_at,
        )
        tx.session.add(waiver)
        tx.session.flush()
        subject = f"model:{model.name}@{versions[0]}" if versions else f"model:{model.name}"
        artifact = mv.artifact_hash if versions else None
        row = signoff.record(tx, "waiver.request", int(waiver.id or 0), signer,
                             subject_name=f"{model.name}@{versions[0]}" if versions else model.name,
                             artifact_digest=artifact, predicate=_waiver_predicate(waiver, model.name, "request"))
        tx.record("waiver.create", subject, {
            "waiver_id": waiver.id, "check": check_id, "versions": versions, "reason": waiver.reason,
            "ticket": ticket, "approver": waiver.approver, "expires_at": expires_at, "statement_id": row.id,
            "key_fingerprint": signer.fingerprint, "trust_store": signoff.trust.digest,
        })
        out = _record(tx.session, waiver, model.name, signoff)
    return out


def _waiver_predicate(waiver: Waiver, model_name: str, decision: str) -> dict[str, Any]:
    return {"decision": decision, "waiver_id": waiver.id, "model": model_name, "versions": waiver.versions,
            "check": waiver.check_id, "reason": waiver.reason, "ticket": waiver.ticket,
            "expires_at": iso(waiver.expires_at)}


def approve_waiver(waiver_id: int, *, key: str | Path, catalog: Catalog | None = None, actor: str | None = None,
                   now: datetime | None = None) -> records.Waiver:
    """Sign the approval of a signed waiver request; the approver must be another key and principal."""
    signoff = Signoff.load(now)
    signer = signoff.signer(resolve_who(actor), str(key))
    cat = resolve_catalog(catalog)
    with audited(cat, signer.principal) as tx:
        waiver = tx.session.get(Waiver, waiver_id)
        if waiver is None:
            raise NotFoundError(f"unknown waiver {waiver_id}; list them with `gov waivers list`")
        state = waiver_state(waiver, signoff.now)
        if state is not WaiverState.ACTIVE:
            raise InputError(f"waiver {waiver_id} is {state}; it cannot be approved")
        request = statements_for(tx.session, "waiver.request", [waiver_id]).get(waiver_id)
        if request is None or request.signature is None:
            raise InputError(f"waiver {waiver_id} was not requested with a signature; ask the requester to "
                             "record a signed request (`gov waive ... --key KEYFILE`)")
        checked = signoff.verify(request)
        if not checked.verified:
            raise InputError(f"waiver {waiver_id}: the request does not verify ({checked.reason})")
        if checked.fingerprint == signer.fingerprint or checked.principal == signer.principal:
            raise InputError(f"waiver {waiver_id}: requested by {checked.principal} ({checked.fingerprint}); "
                             "the approver must be another person with another key")
        if statements_for(tx.session, "waiver.approval", [waiver_id]).get(waiver_id) is not None:
            raise InputError(f"waiver {waiver_id} is already approved")
        model = tx.session.get(Model, waiver.model_id)
        name = model.name if model else str(waiver.model_id)
        waiver.approver = signer.principal
        tx.session.add(waiver)
        predicate = {**_waiver_predicate(waiver, name, "approve"), "request": statement_digest(request.statement)}
        row = signoff.record(tx, "waiver.approval", waiver_id, signer, subject_name=name,
                             artifact_digest=checked.subject_digest, predicate=predicate)
        tx.record("waiver.approve", f"model:{name}", {
            "waiver_id": waiver_id, "check": waiver.check_id, "statement_id": row.id,
            "key_fingerprint": signer.fingerprint, "trust_store": signoff.trust.digest})
        out = _record(tx.session, waiver, name, signoff)
    return out


def waiver_verdicts(session: Session, waivers: Sequence[Waiver], signoff: Signoff, *,
                    optional: bool) -> dict[int, records.WaiverSignatures]:
    """For each waiver: whether it counts, who requested and approved it (verified), and why not."""
    ids = [int(w.id or 0) for w in waivers]
    requests = statements_for(session, "waiver.request", ids)
    approvals = statements_for(session, "waiver.approval", ids)
    models = {int(m.id or 0): m.name for m in session.exec(
        select(Model).where(col(Model.id).in_({w.model_id for w in waivers}))).all()} if waivers else {}
    out: dict[int, records.WaiverSignatures] = {}
    for w in waivers:
        wid = int(w.id or 0)
        request, approval = requests.get(wid), approvals.get(wid)
        req, app = signoff.verify(request), signoff.verify(approval)
        expected = _waiver_predicate(w, models.get(w.model_id, ""), "request")
        if request is None:  # recorded before signed waivers existed
            req = Verification("unsigned", principal=w.requester, predicate=expected)
        if approval is None and w.approver:  # an unsigned waiver names its approver
            app = Verification("unsigned", principal=w.approver, predicate={**expected, "decision": "approve"})
        reason = _why_not(w, req, app, expected, request, approval, optional)
        out[wid] = records.WaiverSignatures(
            counts=reason is None, reason=reason, requester=req.principal or w.requester,
            requester_key=req.fingerprint, requester_verification=req.status,
            approver=app.principal or w.approver, approver_key=app.fingerprint, approver_verification=app.status)
    return out


def _why_not(w: Waiver, req: Verification, app: Verification, expected: dict[str, Any],
             request: SignedStatement | None, approval: SignedStatement | None, optional: bool) -> str | None:
    """Why a waiver's signatures do not make it count (None: they do)."""
    if req.status not in ("verified", "unsigned") or app.status not in ("verified", "unsigned"):
        bad = req if req.status not in ("verified", "unsigned") else app
        return f"signature not accepted: {bad.reason}"
    if approval is None and w.approver is None:
        return "awaiting a signed approval (`gov waivers approve ID --key KEYFILE`)"
    if not optional and not (req.verified and app.verified):
        return "unsigned (the pack requires signatures: a signed request and a signed approval)"
    if any((req.predicate or {}).get(k) != v for k, v in expected.items() if k != "decision") or any(
            (app.predicate or {}).get(k) != v for k, v in expected.items() if k != "decision"):
        return "the stored waiver differs from what was signed"
    if approval is not None and req.verified and (app.predicate or {}).get("request") != statement_digest(
            request.statement if request else ""):
        return "the approval was given on another request"
    if (req.fingerprint is not None and req.fingerprint == app.fingerprint) or (
            req.principal or "").casefold() == (app.principal or "").casefold():
        return "requested and approved by the same person or key"
    return None


def waiver_signatures(session: Session, waivers: Sequence[Waiver],
                      now: datetime | None = None) -> dict[int, records.WaiverSignatures]:
    """:func:`waiver_verdicts` against the configured trust store, signatures required."""
    return waiver_verdicts(session, waivers, Signoff.load(now), optional=False)


def waiver_records(session: Session, rows: Sequence[tuple[Waiver, str]], signoff: Signoff,
                   binding: records.Binding | None = None) -> list[records.Waiver]:
    """``(row, model name)`` pairs as :class:`~governance.registry.Waiver` records, in their order: the
    state at ``signoff.now``, the signatures verified (signatures required), and, with ``binding``,
    whether each row matches the audit log."""
    verdicts = waiver_verdicts(session, [w for w, _ in rows], signoff, optional=False)
    return [records.waiver_record(w, name, signoff.now, verdicts[int(w.id or 0)],
                                  None if binding is None else binding.problem("waiver", w)) for w, name in rows]


def _record(session: Session, waiver: Waiver, name: str, signoff: Signoff) -> records.Waiver:
    session.flush()
    return waiver_records(session, [(waiver, name)], signoff)[0]


def revoke_waiver(waiver_id: int, *, reason: str | None = None, catalog: Catalog | None = None,
                  actor: str | None = None) -> records.Waiver:
    """Revoke a waiver now; it stops applying to every later evaluation.  Returns the revoked
    :class:`~governance.registry.Waiver`."""
    who = resolve_who(actor)
    cat = resolve_catalog(catalog)
    with audited(cat, who) as tx:
        waiver = tx.session.get(Waiver, waiver_id)
        if waiver is None:
            raise NotFoundError(f"unknown waiver {waiver_id}; list them with `gov waivers list`")
        if waiver.revoked_at is not None:
            raise InputError(f"waiver {waiver_id} was already revoked at {iso(waiver.revoked_at)} "
                             f"by {waiver.revoked_by}")
        model = tx.session.get(Model, waiver.model_id)
        waiver.revoked_at = tx.time
        waiver.revoked_by = who
        tx.session.add(waiver)
        name = model.name if model else str(waiver.model_id)
        tx.record("waiver.revoke", f"model:{name}",
                  {"waiver_id": waiver_id, "check": waiver.check_id, "reason": reason})
        out = _record(tx.session, waiver, name, Signoff.load(tx.time))
    return out


def waivers_for(session: Session, model_id: int, version: int | None) -> list[Waiver]:
    """Every waiver scoped to this model version (active, expired and revoked), oldest first.

    The engine decides which still apply at evaluation time, and reports the expired ones.
    """
    rows = session.exec(select(Waiver).where(Waiver.model_id == model_id).order_by(col(Waiver.id))).all()
    return [w for w in rows if w.versions is None or (version is not None and version in w.versions)]


def list_waivers(*, model: str | None = None, state: str | None = None, catalog: Catalog | None = None,
                 now: datetime | None = None) -> list[records.Waiver]:
    """Waivers (newest first), optionally of one model and in one state (active|expired|revoked) at
    ``now``, each with its signatures verified now; :meth:`~governance.registry.Waiver.as_dict` is the
    listing's JSON form."""
    states: Sequence[str] = tuple(WaiverState)
    if state is not None and state not in states:
        raise InputError(f"--state: expected one of {', '.join(states)}, got {state!r}")
    cat = resolve_catalog(catalog)
    with cat.read() as session:
        stmt = select(Waiver, Model).join(Model, col(Model.id) == Waiver.model_id)
        if model is not None:
            stmt = stmt.where(Model.id == resolve_model(session, parse_ref(model, "MODEL").name).id)
        rows = session.exec(stmt.order_by(col(Waiver.id).desc())).all()
        out = waiver_records(session, [(w, m.name) for w, m in rows], Signoff.load(now))
    return [w for w in out if state is None or w.state == state]
