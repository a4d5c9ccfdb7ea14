"""Waivers: a time-boxed, approved exception for one check of one model (some or all versions)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from governance.audit import audited
from governance.catalog import Catalog, Model, Waiver, parse_ref, resolve_model, resolve_model_version
from governance.catalog._views import as_utc, iso
from governance.errors import InputError, NotFoundError
from governance.registry._common import parse_expiry, resolve_catalog, resolve_who

__all__ = ["list_waivers", "revoke_waiver", "waive", "waiver_state", "waiver_view", "waivers_for"]

_CHECK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,254}$")


def waiver_state(waiver: Waiver, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked`` at ``now``."""
    current = now or datetime.now(UTC)
    if waiver.revoked_at is not None and as_utc(waiver.revoked_at) <= current:
        return "revoked"
    if as_utc(waiver.expires_at) <= current:
        return "expired"
    return "active"


def waiver_view(waiver: Waiver, model_name: str, now: datetime | None = None) -> dict[str, Any]:
    """A JSON-safe description of a waiver."""
    return {
        "id": waiver.id, "model": model_name, "versions": waiver.versions, "check": waiver.check_id,
        "state": waiver_state(waiver, now), "reason": waiver.reason, "ticket": waiver.ticket,
        "requester": waiver.requester, "approver": waiver.approver, "expires_at": iso(waiver.expires_at),
        "revoked_at": iso(waiver.revoked_at), "revoked_by": waiver.revoked_by,
        "created_at": iso(waiver.created_at),
    }


def waive(
    ref: str,
    *,
    check_id: str,
    reason: str,
    approver: str,
    expires: str | datetime,
    ticket: str | None = None,
    catalog: Catalog | None = None,
    actor: str | None = None,
    now: datetime | None = None,
) -> Waiver:
    """Record a waiver for ``check_id`` on ``MODEL@VERSION`` (or ``MODEL``: every version).

    The requester is ``actor``; ``approver`` must be someone else, and ``expires`` must be in the
    future.  An alias (``MODEL@production``) is pinned to the version it points at now.
    """
    if not _CHECK_ID.match(check_id or ""):
        raise InputError(f"--check: expected a check id such as fairness.selection_rate_ratio, "
                         f"got {check_id!r}")
    if not (reason or "").strip():
        raise InputError("--reason: a waiver needs a reason")
    if not (approver or "").strip():
        raise InputError("--approver: a waiver needs an approver")
    expires_at = parse_expiry(expires, now=now)
    requester = resolve_who(actor)
    if approver.strip().casefold() == requester.strip().casefold():
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
            ticket=ticket, requester=requester, approver=approver.strip(), expires_at=expires_at,
        )
        tx.session.add(waiver)
        tx.session.flush()
        subject = f"model:{model.name}@{versions[0]}" if versions else f"model:{model.name}"
        tx.record("waiver.create", subject, {
            "waiver_id": waiver.id, "check": check_id, "versions": versions, "reason": waiver.reason,
            "ticket": ticket, "approver": waiver.approver, "expires_at": expires_at,
        })
    return waiver


def revoke_waiver(waiver_id: int, *, reason: str | None = None, catalog: Catalog | None = None,
                  actor: str | None = None) -> Waiver:
    """Revoke a waiver now; it stops applying to every later evaluation."""
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
        tx.record("waiver.revoke", f"model:{model.name if model else waiver.model_id}",
                  {"waiver_id": waiver_id, "check": waiver.check_id, "reason": reason})
    return waiver


def waivers_for(session: Session, model_id: int, version: int | None) -> list[Waiver]:
    """Every waiver scoped to this model version (active, expired and revoked), oldest first.

    The engine decides which still apply at evaluation time, and reports the expired ones.
    """
    rows = session.exec(select(Waiver).where(Waiver.model_id == model_id).order_by(col(Waiver.id))).all()
    return [w for w in rows if w.versions is None or (version is not None and version in w.versions)]


def list_waivers(*, model: str | None = None, state: str | None = None, catalog: Catalog | None = None,
                 now: datetime | None = None) -> list[dict[str, Any]]:
    """Waivers (newest first), optionally of one model and in one state (active|expired|revoked)."""
    states: Sequence[str] = ("active", "expired", "revoked")
    if state is not None and state not in states:
        raise InputError(f"--state: expected one of {', '.join(states)}, got {state!r}")
    cat = resolve_catalog(catalog)
    with cat.read() as session:
        stmt = select(Waiver, Model).join(Model, col(Model.id) == Waiver.model_id)
        if model is not None:
            stmt = stmt.where(Model.id == resolve_model(session, parse_ref(model, "MODEL").name).id)
        rows = session.exec(stmt.order_by(col(Waiver.id).desc())).all()
    views = [waiver_view(w, m.name, now) for w, m in rows]
    return [v for v in views if state is None or v["state"] == state]
