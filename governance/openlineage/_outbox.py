"""Draining the outbox: deliver pending events in order, with retries and exponential backoff.

Delivery is at-least-once.  A row is marked ``sent_at`` only after the transport accepted it; a
process killed between delivery and marking re-sends it later (OpenLineage consumers key events on
``runId``/``eventType``/``eventTime``).  Rows are tried in id order and a batch stops at the first
failure, so a ``COMPLETE`` never overtakes its ``START`` and a dead backend costs one timeout per
round, not one per event.  A failed row gets ``attempts + 1``, ``last_error`` and
``next_attempt_at = now + min(BASE * 2**(attempts-1), CAP)``; nothing is ever deleted or dropped.

Audit: marking rows sent is operational bookkeeping of the delivery queue, not a governance decision
(the run, its datasets and the outbox row itself were audited when the step committed).  The audit
API still refuses unrecorded writes, and an unaudited table would be a hole in "every mutation is
audited", so each shipping round records exactly one ``openlineage.ship`` event (counts, id range,
transport type) in the same transaction as the bookkeeping: one chain entry per batch of up to
``batch_size`` events rather than one per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from governance.audit import audited, resolve_actor
from governance.catalog import Catalog, OutboxEvent, utcnow
from governance.openlineage._config import TransportConfig, load_transport_config, make_transport

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "SyncReport", "backoff", "emitter", "next_due", "pending_count",
           "ship_round", "sync", "to_client_event"]

BACKOFF_BASE = 0.5
BACKOFF_CAP = 300.0

_o = cast(sa.Table, sa.inspect(OutboxEvent).local_table)


def backoff(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1`` of a row that failed ``attempts`` times."""
    return float(min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP))


@dataclass
class SyncReport:
    """What a drain did.  ``pending`` counts rows still unsent afterwards."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    replayed: int = 0
    transport: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def configured(self) -> bool:
        return self.transport is not None


def to_client_event(doc: dict[str, Any]) -> Any:
    """The stored document as openlineage-python's ``RunEvent`` (facets stay dictionaries).

    Transports that look at the event's attributes (Kafka's partition key, the file transport's
    debug file names) then work as with the client's own events; ``Serde.to_json`` of the result
    gives back ``doc``.
    """
    from openlineage.client import event_v2  # noqa: PLC0415 - heavy, only in the shipper

    def datasets(kind: Any, items: list[dict[str, Any]], extra: str) -> list[Any]:
        return [kind(namespace=d["namespace"], name=d["name"], facets=d.get("facets") or {},
                     **{extra: d.get(extra) or {}}) for d in items]

    return event_v2.RunEvent(
        eventType=event_v2.RunState(doc["eventType"]),
        eventTime=doc["eventTime"],
        producer=doc["producer"],
        run=event_v2.Run(runId=doc["run"]["runId"], facets=doc["run"].get("facets") or {}),
        job=event_v2.Job(namespace=doc["job"]["namespace"], name=doc["job"]["name"],
                         facets=doc["job"].get("facets") or {}),
        inputs=datasets(event_v2.InputDataset, doc.get("inputs") or [], "inputFacets"),
        outputs=datasets(event_v2.OutputDataset, doc.get("outputs") or [], "outputFacets"),
    )


def pending_count(catalog: Catalog) -> int:
    with catalog.read() as session:
        return int(session.execute(sa.select(sa.func.count()).where(_o.c.sent_at.is_(None))).scalar_one())


def _due(catalog: Catalog, now: datetime, limit: int, *, ignore_backoff: bool) -> list[Any]:
    stmt = sa.select(_o.c.id, _o.c.payload, _o.c.attempts).where(_o.c.sent_at.is_(None))
    if not ignore_backoff:
        stmt = stmt.where(_o.c.next_attempt_at <= now)
    with catalog.read() as session:
        return list(session.execute(stmt.order_by(_o.c.id).limit(limit)).all())


def next_due(catalog: Catalog) -> datetime | None:
    """When the earliest unsent row becomes due (None: nothing pending)."""
    with catalog.read() as session:
        value = session.execute(sa.select(sa.func.min(_o.c.next_attempt_at)).where(_o.c.sent_at.is_(None))
                                ).scalar_one()
    if value is None:
        return None
    when = cast(datetime, value)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def ship_round(catalog: Catalog, emit: Callable[[dict[str, Any]], None], *, actor: str, transport_type: str,
               batch_size: int = 100, ignore_backoff: bool = False) -> tuple[int, int, str | None]:
    """Deliver up to ``batch_size`` due rows in id order; stop at the first failure.

    Returns ``(sent, failed, error)``.  The bookkeeping and its audit event commit together.
    """
    now = utcnow()
    rows = _due(catalog, now, batch_size, ignore_backoff=ignore_backoff)
    if not rows:
        return 0, 0, None
    sent_ids: list[int] = []
    failure: tuple[int, int, str] | None = None
    for row in rows:
        try:
            emit(json.loads(row.payload))
        except Exception as exc:  # noqa: BLE001 - any transport failure is recorded on the row and retried
            failure = (row.id, row.attempts + 1, f"{type(exc).__name__}: {exc}"[:2000])
            break
        sent_ids.append(row.id)
    done = utcnow()
    with audited(catalog, actor) as tx:
        if sent_ids:
            tx.session.execute(sa.update(_o).where(_o.c.id.in_(sent_ids))
                               .values(sent_at=done, attempts=_o.c.attempts + 1, last_error=None))
        if failure is not None:
            row_id, attempts, error = failure
            retry_at = done + timedelta(seconds=backoff(attempts))
            tx.session.execute(sa.update(_o).where(_o.c.id == row_id).values(
                attempts=attempts, last_error=error, next_attempt_at=retry_at))
        tx.record("openlineage.ship", "openlineage:outbox", {
            "sent": len(sent_ids), "failed": 0 if failure is None else 1,
            "first_id": rows[0].id, "last_id": sent_ids[-1] if sent_ids else rows[0].id,
            "transport": transport_type, **({} if failure is None else {"error": failure[2][:200]}),
        })
    return len(sent_ids), 0 if failure is None else 1, None if failure is None else failure[2]


def emitter(transport: Any) -> Callable[[dict[str, Any]], None]:
    """A function that hands one stored document to the client's ``transport``."""

    def emit(doc: dict[str, Any]) -> None:
        transport.emit(to_client_event(doc))

    return emit


def sync(catalog: Catalog, *, actor: str | None = None, config: TransportConfig | None = None,
         max_rounds: int = 1000, batch_size: int = 100) -> SyncReport:
    """Drain the outbox now, ignoring backoff; stops at the first delivery failure.

    With no OpenLineage configuration (or ``OPENLINEAGE_DISABLED``) nothing is shipped and the
    report says how many events wait (``transport`` is None).
    """
    resolved = config if config is not None else load_transport_config()
    report = SyncReport()
    if resolved is None:
        report.pending = pending_count(catalog)
        return report
    report.transport = str(resolved.transport.get("type"))
    transport = make_transport(resolved)
    emit = emitter(transport)
    who = resolve_actor(actor)
    try:
        for _ in range(max_rounds):
            sent, failed, error = ship_round(catalog, emit, actor=who, transport_type=report.transport,
                                             batch_size=batch_size, ignore_backoff=True)
            report.sent += sent
            report.failed += failed
            if error is not None:
                report.errors.append(error)
                break
            if sent == 0:
                break
    finally:
        transport.close(5.0)
    report.pending = pending_count(catalog)
    return report
