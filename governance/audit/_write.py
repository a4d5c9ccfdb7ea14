"""The audited write API: every mutation of the catalog goes through :func:`audited`.

    with audited(catalog, actor="alice") as tx:
        tx.session.add(model_version)
        tx.session.flush()
        tx.record("model_version.register", f"model:{name}@{version}", {"artifact_hash": ...})

The change and its audit events commit in one transaction: both land or neither does.  A transaction
that changed rows but recorded no event is refused at commit, so no write can skip the trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from governance.audit._chain import ChainHead, append_event, chain_head, lock_chain
from governance.catalog import AuditEvent, Catalog, utcnow
from governance.errors import GovernanceError

__all__ = ["AuditedTransaction", "audited"]


class AuditedTransaction:
    """A write session plus :meth:`record`; use through :func:`audited`."""

    def __init__(self, session: Session, actor: str) -> None:
        self.session = session
        self.actor = actor
        self.events: list[AuditEvent] = []
        self._head: ChainHead | None = None
        self._time: datetime | None = None
        self.mutated = False

    @property
    def time(self) -> datetime:
        """One timestamp for the whole transaction (events and rows agree)."""
        if self._time is None:
            self._time = utcnow()
        return self._time

    def record(self, action: str, subject: str, data: dict[str, Any] | None = None, *,
               actor: str | None = None) -> AuditEvent:
        """Append an audit event in this transaction."""
        if self._head is None:
            lock_chain(self.session)
            self._head = chain_head(self.session)
        entry = append_event(self.session, self._head, actor=actor or self.actor, action=action,
                             subject=subject, data=data or {}, time=self.time)
        self._head = ChainHead(entry.seq, entry.hash)
        self.events.append(entry)
        self.session.flush()
        return entry


@contextmanager
def audited(catalog: Catalog, actor: str) -> Iterator[AuditedTransaction]:
    """Open a write transaction whose changes must be recorded with :meth:`AuditedTransaction.record`."""
    with catalog.write() as session:
        tx = AuditedTransaction(session, actor)

        def _before_flush(sess: OrmSession, _ctx: Any, _instances: Any) -> None:
            if any(not isinstance(obj, AuditEvent) for obj in (*sess.new, *sess.dirty, *sess.deleted)):
                tx.mutated = True

        event.listen(session, "before_flush", _before_flush)
        try:
            yield tx
            session.flush()
            if tx.mutated and not tx.events:
                raise GovernanceError("internal: a catalog write was not recorded in the audit trail")
        finally:
            event.remove(session, "before_flush", _before_flush)
