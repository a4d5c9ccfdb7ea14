"""Build the audit report context: events in order, the chain's verification, the last checkpoint.

The checkpoint shown is the exported file given with the signer's public key, verified signature
included; without them, the last checkpoint recorded in the catalog, checked against the log but
not its signature (a catalog's own copy is only as trustworthy as the catalog).

Verification always covers the whole chain (a filter by model or time only narrows what is listed).
Long logs are listed in part: the most recent ``max_events`` events in full and the older ones
summarised by action, actor and day, and the report says so; the JSON export lists every event.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.audit import GENESIS_HASH, VerifyReport, load_public_key, read_checkpoint, verify_audit
from governance.catalog import AuditCheckpoint, AuditEvent, Catalog, resolve_model
from governance.domain import as_utc, iso
from governance.errors import InputError
from governance.mlflow import latest_reconcile
from governance.reporting._format import parse_time
from governance.reporting._model_card_context import audit_subject_filter

__all__ = ["build_audit_context", "checkpoint_status", "parse_since", "verify_chain"]

_EPOCH = "1970-01-01T00:00:00Z"


def parse_since(since: datetime | str | None) -> datetime | None:
    """``--since``: an ISO-8601 date or time (UTC unless it says otherwise)."""
    if since is None or isinstance(since, datetime):
        return None if since is None else parse_time(since)
    try:
        return parse_time(since)
    except ValueError as exc:
        raise InputError(
            f"--since: expected an ISO-8601 date or time such as 2026-01-31 or "
            f"2026-01-31T12:00:00Z, got {since!r}"
        ) from exc


def verify_chain(
    catalog: Catalog, checkpoint: Path | str | None = None, pubkey: Path | str | None = None
) -> tuple[dict[str, Any], VerifyReport]:
    """Recompute the whole chain and, given a checkpoint file and the signer's public key, check the
    signed head against it (:func:`~governance.audit.verify_audit`; a bad file or key is an
    :class:`~governance.errors.InputError`)."""
    report = verify_audit(catalog, checkpoint, pubkey)
    return {
        "ok": bool(report.first_bad_seq is None),
        "count": int(report.count),
        "head_seq": int(report.head.seq),
        "head_hash": str(report.head.hash),
        "first_bad_seq": report.first_bad_seq,
        "reason": report.reason,
        "method": "verify_audit",
        "state": None if report.state is None else {**report.state.as_dict(), "lines": report.state.lines()},
    }, report


def _signed_checkpoint(path: Path | str, pubkey: Path | str, report: VerifyReport) -> dict[str, Any]:
    """The checkpoint file given to the report, as verified by ``verify_audit`` (signature included)."""
    cp = read_checkpoint(Path(path))
    signed = cp.signature_valid(load_public_key(Path(pubkey)))
    return {
        "seq": cp.seq,
        "hash": cp.hash,
        "algorithm": cp.signed_fields()["algorithm"],
        "key_id": cp.key_id,
        "created_at": cp.created_at,
        "state": "ok" if report.checkpoint_ok else "bad",
        "detail": report.checkpoint_reason or "",
        "signature": (
            f"verified with the public key given (key {cp.key_id})"
            if signed
            else f"does NOT match the checkpoint's contents (key {cp.key_id}): the file was altered"
        ),
        "source": "file",
    }


def checkpoint_status(session: Session, verification: dict[str, Any]) -> dict[str, Any] | None:
    """The newest checkpoint recorded in the catalog and whether the log still extends it (None: none)."""
    cp = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc())).first()
    if cp is None:
        return None
    at = session.get(AuditEvent, cp.seq)
    bad = verification["first_bad_seq"]
    if at is None:
        state, detail = (
            "bad",
            f"seq {cp.seq} is no longer in the log (truncated or restored from an older backup)",
        )
    elif at.hash != cp.hash:
        state, detail = (
            "bad",
            f"the log's hash at seq {cp.seq} differs from the checkpoint (history rewritten)",
        )
    elif bad is not None and bad <= cp.seq:
        state, detail = "bad", f"the chain breaks at seq {bad}, inside the checkpointed range"
    else:
        state, detail = "ok", f"the log extends the checkpoint at seq {cp.seq}"
    return {
        "seq": cp.seq,
        "hash": cp.hash,
        "algorithm": cp.algorithm,
        "key_id": cp.key_id,
        "created_at": iso(cp.created_at),
        "state": state,
        "detail": detail,
        "signature": "not checked: give the exported checkpoint file and the public key "
        "(gov report audit --checkpoint FILE --pubkey FILE)",
        "source": "catalog",
    }


def _event_doc(row: AuditEvent) -> dict[str, Any]:
    try:
        body = json.loads(bytes(row.payload))
        data = body.get("data", {}) if isinstance(body, dict) else {}
    except ValueError:
        data = {"_unreadable_payload": True}
    return {
        "seq": row.seq,
        "time": iso(row.time),
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "data": data,
        "hash": row.hash,
        "prev_hash": row.prev_hash,
    }


def _brief(data: Any, limit: int = 140) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str, separators=(", ", ": "))
    if text in ("{}", "null"):
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_audit_context(
    catalog: Catalog,
    *,
    model: str | None,
    since: datetime | str | None,
    max_events: int | None,
    checkpoint: Path | str | None = None,
    pubkey: Path | str | None = None,
) -> dict[str, Any]:
    since_dt = parse_since(since)
    if max_events is not None and max_events < 0:
        raise InputError(f"max_events: expected a number >= 0, got {max_events}")
    verification, report = verify_chain(catalog, checkpoint, pubkey)
    with catalog.read() as session:
        stmt = select(AuditEvent)
        if model is not None:
            resolve_model(session, model)
            stmt = stmt.where(audit_subject_filter(model))
        if since_dt is not None:
            stmt = stmt.where(col(AuditEvent.time) >= since_dt)
        rows = session.exec(stmt.order_by(col(AuditEvent.seq))).all()
        checkpoint_doc = (
            _signed_checkpoint(checkpoint, pubkey, report)
            if checkpoint is not None and pubkey is not None
            else checkpoint_status(session, verification)
        )
        head_time = session.exec(
            select(AuditEvent.time).order_by(col(AuditEvent.seq).desc()).limit(1)
        ).first()
        total_chain = session.exec(select(sa.func.count()).select_from(AuditEvent)).one()
        from governance.registry import signed_decisions

        decisions = [d.as_dict() for d in signed_decisions(session, model)]
        mlflow_reconcile = latest_reconcile(session)
    events = [_event_doc(r) for r in rows]
    for e in events:
        e["brief"] = _brief(e["data"])
    shown = events if max_events is None or len(events) <= max_events else events[len(events) - max_events :]
    older = events[: len(events) - len(shown)]
    summary = None
    if older:
        summary = {
            "count": len(older),
            "first_seq": older[0]["seq"],
            "last_seq": older[-1]["seq"],
            "by_action": Counter(e["action"] for e in older).most_common(),
            "by_actor": Counter(e["actor"] for e in older).most_common(),
            "by_day": sorted(Counter(str(e["time"])[:10] for e in older).items()),
        }
    if rows:
        as_of = iso(rows[-1].time)
    elif head_time is not None:
        as_of = iso(as_utc(head_time))
    else:
        as_of = _EPOCH
    scope = "all events" if model is None else f"events about model {model}"
    if since_dt is not None:
        scope += f" since {iso(since_dt)}"
    return {
        "kind": "audit",
        "title": "Audit trail" + (f": {model}" if model else ""),
        "as_of": as_of,
        "filters": {"model": model, "since": iso(since_dt)},
        "scope": scope,
        "verification": verification,
        "checkpoint": checkpoint_doc,
        "chain_events": int(total_chain),
        "genesis": GENESIS_HASH,
        "total": len(events),
        "events": events,
        "shown": shown,
        "summary": summary,
        "max_events": max_events,
        "decisions": decisions,
        "mlflow_reconcile": mlflow_reconcile,
    }
