"""Listing audit events for people (``gov audit log``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from governance.audit._chain import format_time
from governance.catalog import AuditEvent
from governance.domain import parse_utc
from governance.errors import InputError

__all__ = ["LoggedEvent", "list_events", "parse_since"]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One audit event as ``gov audit log`` lists it: ``time`` in the chain's canonical UTC spelling,
    ``data`` the payload's ``data`` (None when the stored payload does not parse)."""

    seq: int
    time: str
    actor: str
    action: str
    subject: str
    data: Any
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``gov audit log --format json``."""
        return asdict(self)


def parse_since(text: str) -> datetime:
    """``--since``: an ISO date or date-time (naive means UTC)."""
    try:
        return parse_utc(text)
    except ValueError:
        raise InputError(f"--since: expected an ISO date or time such as 2025-01-31 or "
                         f"2025-01-31T12:00:00Z, got {text!r}") from None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_events(session: Session, *, model: str | None = None, since: datetime | None = None,
                limit: int = 50) -> list[LoggedEvent]:
    """The latest ``limit`` events (oldest first) matching the filters.

    ``model`` matches events whose subject is ``model:NAME`` or ``model:NAME@...``.
    """
    if limit < 1:
        raise InputError(f"--limit: expected a positive number, got {limit}")
    query = sa.select(AuditEvent)
    if model is not None:
        query = query.where(sa.or_(
            col(AuditEvent.subject) == f"model:{model}",
            col(AuditEvent.subject).like(f"model:{_escape_like(model)}@%", escape="\\"),
        ))
    if since is not None:
        query = query.where(col(AuditEvent.time) >= since)
    query = query.order_by(col(AuditEvent.seq).desc()).limit(limit)
    events = list(session.execute(query).scalars())
    events.reverse()
    out = []
    for event in events:
        try:
            data = json.loads(event.payload).get("data", {})
        except (ValueError, AttributeError):
            data = None
        out.append(LoggedEvent(seq=event.seq, time=format_time(event.time), actor=event.actor,
                               action=event.action, subject=event.subject, data=data, hash=event.hash))
    return out
