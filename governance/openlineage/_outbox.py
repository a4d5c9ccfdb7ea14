"""Draining the outbox: deliver pending events in order, with retries and exponential backoff.

A row a step wrote has no document yet: it is built from the run's catalog rows when the row is
first handled (:func:`~governance.openlineage.outbox_documents`) and stored on the row with that
round's bookkeeping, so a retry after a recorded failure delivers the same document.  (A process
killed between delivering a row and that bookkeeping builds it again next time: the same run, event
type and time, see :mod:`governance.openlineage._events` for what a later build may add.)  A row
whose document cannot be built, or whose stored document is damaged, is recorded as a failed attempt
like a transport error, never dropped; like one it holds back the rows after it until it goes.

One shipper at a time drains a catalog's outbox, across processes (:meth:`Catalog.try_lock`): the
others find it taken, do nothing and look again a second later (their rows are in the same outbox,
so the one shipping delivers them too).

Delivery is at-least-once.  A row is marked ``sent_at`` only after the transport accepted it; a
process killed between delivery and marking re-sends it later (OpenLineage consumers key events on
``runId``/``eventType``/``eventTime``).  Rows are tried in id order, a run's later events wait while
an earlier one waits for its retry (a ``COMPLETE`` never overtakes its ``START``), and a round stops
at the first failure, so a dead backend costs one timeout per round, not one per event.  With the
file transport a round's lines are appended in one write: if it fails, none of them counts as sent
(the first row carries the error) and the next round writes them all again.  With the HTTP
transport the client's request is sent by :class:`~governance.openlineage._post.HttpPoster` on one
kept-alive connection (same URL, headers and body; see there for when the client's transport is used).  A failed row
gets ``attempts + 1``, ``last_error`` and
``next_attempt_at = now + min(BASE * 2**(attempts-1), CAP)``; nothing is ever deleted or dropped.

Audit: marking rows sent is operational bookkeeping of the delivery queue, not a governance decision
(the run, its datasets and the outbox row itself were audited when the step committed).  The audit
API still refuses unrecorded writes, and an unaudited table would be a hole in "every mutation is
audited", so each shipping round records exactly one ``openlineage.ship`` event (counts, documents
built and stored, id range, transport type) in the same transaction as the bookkeeping: one chain
entry per batch of up to ``batch_size`` events rather than one per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from governance.audit import audited, resolve_actor
from governance.catalog import Catalog, OutboxEvent, RawConnection, Statement, utcnow
from governance.domain import as_utc
from governance.openlineage._config import TransportConfig, load_transport_config, make_transport
from governance.openlineage._events import dumps_document, outbox_documents, serialised
from governance.openlineage._post import http_poster

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "Round",
    "SyncReport",
    "backoff",
    "close_emitter",
    "emitter",
    "pending_count",
    "serialised",
    "ship_round",
    "sync",
    "to_client_event",
]

BACKOFF_BASE = 0.5
BACKOFF_CAP = 300.0
SHIP_LOCK = "openlineage-ship"
BUSY_RETRY = 1.0  # seconds before a shipper that found the outbox taken looks again

_o = cast(sa.Table, sa.inspect(OutboxEvent).local_table)


_DUE_PAGE = Statement(
    sa.select(_o.c.id, _o.c.run_uuid, _o.c.event_type, _o.c.payload, _o.c.attempts, _o.c.next_attempt_at)
    .where(_o.c.sent_at.is_(None), _o.c.id > sa.bindparam("after"))
    .order_by(_o.c.id).limit(sa.bindparam("page"))
)
# a delivered row: its document (unless one is stored already) and its delivery, in one write of the row
_MARK_SENT = Statement(  # sent_at is bound as the driver takes it (converted once per round: _bound_time)
    sa.update(_o).where(_o.c.id == sa.bindparam("row_id"))
    .values(payload=sa.func.coalesce(_o.c.payload, sa.bindparam("payload", type_=sa.Text())),
            sent_at=sa.bindparam("sent_at"), attempts=_o.c.attempts + 1, last_error=sa.null()),
)
# a document built for a row that was not delivered: kept for its retry
_STORE_PAYLOAD = Statement(
    sa.update(_o).where(_o.c.id == sa.bindparam("row_id"), _o.c.payload.is_(None))
    .values(payload=sa.bindparam("payload", type_=sa.Text()))
)
_MARK_FAILED = Statement(
    sa.update(_o).where(_o.c.id == sa.bindparam("row_id"))
    .values(attempts=sa.bindparam("attempts"), last_error=sa.bindparam("last_error"),
            next_attempt_at=sa.bindparam("next_attempt_at")),
    {"next_attempt_at": _o.c.next_attempt_at.type},
)


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
    from openlineage.client import event_v2

    def datasets(kind: Any, items: list[dict[str, Any]], extra: str) -> list[Any]:
        return [kind(namespace=d["namespace"], name=d["name"], facets=d.get("facets"),
                     **{extra: d.get(extra)}) for d in items]

    return event_v2.RunEvent(
        eventType=event_v2.RunState(doc["eventType"]),
        eventTime=doc["eventTime"],
        producer=doc["producer"],
        run=event_v2.Run(runId=doc["run"]["runId"], facets=doc["run"].get("facets")),
        job=event_v2.Job(namespace=doc["job"]["namespace"], name=doc["job"]["name"],
                         facets=doc["job"].get("facets")),
        inputs=datasets(event_v2.InputDataset, doc.get("inputs") or [], "inputFacets"),
        outputs=datasets(event_v2.OutputDataset, doc.get("outputs") or [], "outputFacets"),
    )


def pending_count(catalog: Catalog) -> int:
    with catalog.read() as session:
        return int(session.execute(sa.select(sa.func.count()).where(_o.c.sent_at.is_(None))).scalar_one())


@dataclass(frozen=True)
class Round:
    """One shipping round: delivered, failed (0 or 1: a round stops there), the error, and when the
    earliest held row becomes due (None: nothing is waiting for a retry).  ``busy``: another shipper
    (this process or another) was draining the outbox, so this round did nothing; ``next_due`` is then
    when to look again."""

    sent: int
    failed: int
    error: str | None
    next_due: datetime | None
    busy: bool = False


def _due(catalog: Catalog, now: datetime, limit: int,
         *, ignore_backoff: bool) -> tuple[list[Any], list[dict[str, Any] | Exception], datetime | None]:
    """Unsent rows in id order with their documents (built now for rows that have none); a run whose
    earlier event is waiting for its retry waits too."""
    due: list[Any] = []
    held: set[str] = set()
    earliest: datetime | None = None
    with catalog.read() as session:
        raw = RawConnection(session)
        after = 0
        for _ in range(4):  # up to 4 * limit rows looked at past held runs; one page when none is held
            rows = _DUE_PAGE.all(raw, after=after, page=limit)
            for row in rows:
                if row.run_uuid in held:
                    continue
                when = as_utc(row.next_attempt_at)
                if not ignore_backoff and when > now:
                    held.add(row.run_uuid)
                    earliest = when if earliest is None else min(earliest, when)
                    continue
                due.append(row)
                if len(due) == limit:
                    break
            if len(due) == limit or len(rows) < limit:
                break
            after = rows[-1].id
        docs = outbox_documents(session, due)
    return due, docs, earliest


def ship_round(catalog: Catalog, emit: Callable[[dict[str, Any]], None], *, actor: str, transport_type: str,
               batch_size: int = 100, ignore_backoff: bool = False) -> Round:
    """Deliver up to ``batch_size`` due rows in id order; stop at the first failure.

    The bookkeeping and its audit event commit together.  One shipper drains a catalog's outbox at a
    time, across processes (the catalog's ``openlineage-ship`` lock): two processes shipping at once
    would deliver the same rows twice.
    """
    with catalog.try_lock(SHIP_LOCK) as taken:
        if not taken:
            return Round(0, 0, None, utcnow() + timedelta(seconds=BUSY_RETRY), busy=True)
        return _ship_round(catalog, emit, actor=actor, transport_type=transport_type, batch_size=batch_size,
                           ignore_backoff=ignore_backoff)


def _ship_round(catalog: Catalog, emit: Callable[[dict[str, Any]], None], *, actor: str, transport_type: str,
                batch_size: int, ignore_backoff: bool) -> Round:
    now = utcnow()
    rows, docs, held_until = _due(catalog, now, batch_size, ignore_backoff=ignore_backoff)
    if not rows:
        return Round(0, 0, None, held_until)
    sent_ids: list[int] = []
    built: list[dict[str, Any]] = []  # documents built in this round, stored on their rows
    failure: tuple[int, int, str] | None = None
    lines = getattr(emit, "lines", None)
    post = getattr(emit, "post", None)
    texts: list[str] = []  # the file transport's lines, encoded once for the row and the file
    memo: dict[int, tuple[Any, str]] = {}  # the round's documents share parts: each encoded once
    for row, doc in zip(rows, docs, strict=True):
        if isinstance(doc, Exception):
            failure = (row.id, row.attempts + 1, f"cannot build the event: {type(doc).__name__}: {doc}"[:2000])
            break
        # the text the file or the HTTP body gets is the text stored on the row: serialised once
        text = serialised(doc, memo) if lines is not None or post is not None else None
        if row.payload is None:
            built.append({"row_id": row.id, "payload": text if text is not None else dumps_document(doc)})
        if lines is not None and text is not None:
            texts.append(text)
            sent_ids.append(row.id)
            continue
        try:
            if post is not None and text is not None:
                post(doc, text)
            else:
                emit(doc)
        except Exception as exc:  # noqa: BLE001 - any transport failure is recorded on the row and retried
            failure = (row.id, row.attempts + 1, f"{type(exc).__name__}: {exc}"[:2000])
            break
        sent_ids.append(row.id)
    if texts and lines is not None:
        try:
            lines(texts)  # one append of the round's lines, in row order
        except Exception as exc:  # noqa: BLE001 - none of them counts as delivered; all are tried again
            first = next(row for row in rows if row.id == sent_ids[0])
            failure = (first.id, first.attempts + 1, f"{type(exc).__name__}: {exc}"[:2000])
            sent_ids = []
    done = utcnow()
    with audited(catalog, actor) as tx:
        _bookkeeping(tx.raw, sent_ids, built, failure, done)
        tx.record("openlineage.ship", "openlineage:outbox", {
            "sent": len(sent_ids), "failed": 0 if failure is None else 1, "built": len(built),
            "first_id": rows[0].id, "last_id": sent_ids[-1] if sent_ids else rows[0].id,
            "transport": transport_type, **({} if failure is None else {"error": failure[2][:200]}),
        })
    if failure is None:
        return Round(len(sent_ids), 0, None, held_until)
    retry = done + timedelta(seconds=backoff(failure[1]))
    return Round(len(sent_ids), 1, failure[2], retry if held_until is None else min(retry, held_until))


def _bound_time(raw: RawConnection, value: datetime) -> Any:
    """``value`` as the ``sent_at`` column binds it on this connection (the column type's processor)."""
    process = _o.c.sent_at.type.dialect_impl(raw.dialect).bind_processor(raw.dialect)
    return value if process is None else process(value)


def _bookkeeping(raw: RawConnection, sent_ids: list[int], built: list[dict[str, Any]],
                 failure: tuple[int, int, str] | None, done: datetime) -> None:
    """A round's writes: each delivered row marked sent, with the document built for it this round (a
    document is stored once, when first handled: retries and re-sends use those bytes); documents of
    rows not delivered stored for their retry; the failed row's attempt and its next one."""
    documents = {item["row_id"]: item["payload"] for item in built}
    sent_at = _bound_time(raw, done)
    _MARK_SENT.executemany(raw, [{"row_id": row_id, "payload": documents.pop(row_id, None), "sent_at": sent_at}
                                 for row_id in sent_ids])
    _STORE_PAYLOAD.executemany(raw, [{"row_id": row_id, "payload": payload} for row_id, payload in documents.items()])
    if failure is not None:
        row_id, attempts, error = failure
        _MARK_FAILED.execute(raw, row_id=row_id, attempts=attempts, last_error=error,
                             next_attempt_at=done + timedelta(seconds=backoff(attempts)))


#: transports that only serialise the event (``Serde.to_json`` accepts a dictionary): the stored
#: document goes as is; every other transport (Kafka's partition key, composite...) gets the client's
#: ``RunEvent`` object
_SERIALISING = frozenset({"file", "http", "console", "noop"})


def _file_emitter(transport: Any) -> Callable[[dict[str, Any]], None] | None:
    """For the client's file transport in append mode on a local path: append the line the transport
    would write (same path, same text), without the client's per-event serialisation walk, which cost
    more than building the document."""
    config = getattr(transport, "config", None)
    path = getattr(config, "log_file_path", None)
    if getattr(transport, "kind", None) != "file" or not getattr(config, "append", False) or \
            getattr(config, "debug_mode", False) or not isinstance(path, str) or "://" in path:
        return None

    return _FileLines(path)


class _FileLines:
    """Appends event lines to a local file as the client's file transport does (see :func:`emitter`);
    :meth:`lines` takes texts already serialised by :func:`serialised` and appends them with one open
    (a round's events), the same bytes as one open per event."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, doc: dict[str, Any]) -> None:
        self.lines([serialised(doc)])

    def lines(self, texts: list[str]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as handle:  # noqa: PTH123 - the client's own call
                handle.write("\n".join(texts) + "\n" if texts else "")
        except OSError as error:
            raise RuntimeError(f"Failed to write to log file `{self.path}`: {error}") from error


def close_emitter(emit: Callable[[dict[str, Any]], None]) -> None:
    """Close what :func:`emitter` opened (the poster's kept-alive connection), if anything."""
    close = getattr(emit, "close", None)
    if close is not None:
        close()


def emitter(transport: Any) -> Callable[[dict[str, Any]], None]:
    """A function that hands one stored document to the client's ``transport``."""
    fast = _file_emitter(transport)
    if fast is not None:
        return fast
    poster = http_poster(transport)
    if poster is not None:
        return poster
    if getattr(transport, "kind", None) in _SERIALISING and not getattr(getattr(transport, "config", None),
                                                                          "debug_mode", False):
        return cast(Callable[[dict[str, Any]], None], transport.emit)

    def emit(doc: dict[str, Any]) -> None:
        transport.emit(to_client_event(doc))

    return emit


def sync(catalog: Catalog, *, actor: str | None = None, config: TransportConfig | None = None,
         max_rounds: int = 1000, batch_size: int = 200, wait_for_lock: float = 30.0) -> SyncReport:
    """Drain the outbox now, ignoring backoff; stops at the first delivery failure.  While another
    shipper holds the outbox it waits up to ``wait_for_lock`` seconds for its turn.

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
    waited_until = time.monotonic() + wait_for_lock
    try:
        for _ in range(max_rounds):
            result = ship_round(catalog, emit, actor=who, transport_type=report.transport,
                                batch_size=batch_size, ignore_backoff=True)
            if result.busy:
                if time.monotonic() >= waited_until:
                    report.errors.append("another process is shipping this outbox; its events stay pending")
                    break
                time.sleep(0.1)
                continue
            report.sent += result.sent
            report.failed += result.failed
            if result.error is not None:
                report.errors.append(result.error)
                break
            if result.sent == 0:
                break
    finally:
        close_emitter(emit)
        transport.close(5.0)
    report.pending = pending_count(catalog)
    return report
