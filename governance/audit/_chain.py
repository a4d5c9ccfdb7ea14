"""The hash chain: canonical payload bytes, link hashes, appends and verification.

Each event's ``payload`` is the canonical JSON (sorted keys, no spaces, UTF-8, no NaN) of
``{"action", "actor", "data", "subject", "time"}``; those bytes are stored as they were hashed and
never re-serialised.  The link hash is

    sha256(b"governance-audit-v1\\n" + f"{alg}\\n{seq}\\n{prev_hash}\\n".encode() + payload)

with ``prev_hash`` the previous link's hash (64 zeros for seq 1).  Editing any field, deleting,
reordering or inserting a row breaks the recomputation at that seq.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from governance.catalog import AuditEvent, RawConnection, Statement, insert_statement, lock_wait_ms
from governance.errors import InputError

__all__ = [
    "ALGORITHM",
    "GENESIS_HASH",
    "AuditLink",
    "ChainHead",
    "VerifyReport",
    "append_event",
    "canonical_json",
    "chain_head",
    "format_time",
    "hash_at",
    "insert_events",
    "iter_chain",
    "link_hash",
    "lock_chain",
    "new_event",
    "verify_events",
]

ALGORITHM = "sha256"
GENESIS_HASH = "0" * 64
_PREFIX = b"governance-audit-v1\n"
_encode_string: Any = json.encoder.encode_basestring  # C speedup; what dumps uses
_ADVISORY_KEY = 0x676F76_617564  # "gov" "aud": one chain, one advisory lock


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"audit payload value of type {type(value).__name__} is not JSON-serialisable")


def _check_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _check_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_check_finite(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, compact, UTF-8; NaN and infinities become null."""
    return json.dumps(
        _check_finite(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        allow_nan=False, default=_default,
    ).encode("utf-8")


def format_time(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and a ``Z`` (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def link_hash(seq: int, prev_hash: str, payload: bytes, algorithm: str = ALGORITHM) -> str:
    """The hash of one link of the chain."""
    if algorithm != ALGORITHM:
        raise InputError(f"audit chain: unsupported hash algorithm {algorithm!r}")
    digest = hashlib.sha256(_PREFIX)
    digest.update(f"{algorithm}\n{seq}\n{prev_hash}\n".encode())
    digest.update(payload)
    return digest.hexdigest()


_TABLE: sa.Table = AuditEvent.__table__  # type: ignore[attr-defined]
_COLUMNS = ("seq", "time", "actor", "action", "subject", "payload", "prev_hash", "hash")
_INSERT = insert_statement(_TABLE, _COLUMNS)
_HEAD = Statement(sa.select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1))


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class AuditLink:
    """One link as written: the ``audit_event`` row's values (a plain value, not an ORM object)."""

    seq: int
    time: datetime
    actor: str
    action: str
    subject: str
    payload: bytes
    prev_hash: str
    hash: str


def chain_head(session: Session | RawConnection) -> ChainHead:
    """The last link (seq 0 and the genesis hash for an empty log)."""
    raw = session if isinstance(session, RawConnection) else RawConnection(session)
    row = _HEAD.first(raw)
    return ChainHead(0, GENESIS_HASH) if row is None else ChainHead(int(row[0]), str(row[1]))


# Two statements in one simple-query round trip: in READ COMMITTED each statement takes its own
# snapshot, so the head is read *after* the lock is granted and sees the previous holder's commit.
# (A single ``SELECT pg_advisory_xact_lock(k), (SELECT ... LIMIT 1)`` would not: its snapshot is
# taken before it waits for the lock, so it returns a stale head.)
_LOCK_AND_HEAD = (f"SELECT pg_advisory_xact_lock({_ADVISORY_KEY:d}); "
                  "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")


def lock_chain(session: Session) -> ChainHead | None:
    """Serialise appends and return the head read under the lock when that is free.

    On PostgreSQL this takes the advisory transaction lock (released at commit or rollback) and reads
    the head in the same round trip.  SQLite is already serialised by the write session's
    ``BEGIN IMMEDIATE``; there it returns None and the head is read on the first append.
    """
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return None
    bounded = lock_wait_ms()
    if bounded is not None:  # capture's bound: a held chain lock must not hang the step
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {bounded:d}")
    with _driver_errors(conn, _LOCK_AND_HEAD):
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_LOCK_AND_HEAD)
            if not cursor.nextset():  # pragma: no cover - the server always answers both statements
                raise RuntimeError("audit chain: no result for the head query")
            row = cursor.fetchone()
        finally:
            cursor.close()
    return ChainHead(0, GENESIS_HASH) if row is None else ChainHead(int(row[0]), str(row[1]))


@contextmanager
def _driver_errors(conn: sa.Connection, statement: str) -> Iterator[None]:
    """Raise driver errors from raw-cursor statements as SQLAlchemy's (as ``conn.execute`` would),
    so callers see ``IntegrityError``/``OperationalError`` whichever path wrote."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi.Error,
                                         dialect=conn.dialect) from exc


def new_event(
    head: ChainHead,
    *,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, Any],
    time: datetime,
    state: dict[str, Any] | None = None,
) -> AuditLink:
    """The link after ``head``: canonical payload and hash computed, nothing written.  ``state`` is the
    transaction's state map (``{table: {id: digest}}``), carried by its last event."""
    body: dict[str, Any] = {"action": action, "actor": actor, "data": data, "subject": subject,
                            "time": format_time(time)}
    if state:
        body["state"] = state
    payload = canonical_json(body)
    seq = head.seq + 1
    return AuditLink(seq, time, actor, action, subject, payload, head.hash, link_hash(seq, head.hash, payload))


def insert_events(session: Session | RawConnection, events: list[AuditLink]) -> None:
    """Insert links inside the caller's (locked) transaction: one precompiled ``INSERT`` on the
    transaction's own driver connection (no unit-of-work round trip; prepared by psycopg after five
    uses on PostgreSQL).  Driver errors are raised as SQLAlchemy's."""
    if not events:
        return
    raw = session if isinstance(session, RawConnection) else RawConnection(session)
    rows = [{name: getattr(e, name) for name in _COLUMNS} for e in events]
    if len(rows) == 1:
        _INSERT.execute(raw, **rows[0])
    else:
        _INSERT.executemany(raw, rows)


def append_event(
    session: Session | RawConnection,
    head: ChainHead,
    *,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, Any],
    time: datetime,
) -> AuditLink:
    """Append one event after ``head`` inside the caller's (locked) transaction; returns what was
    written."""
    event = new_event(head, actor=actor, action=action, subject=subject, data=data, time=time)
    insert_events(session, [event])
    return event


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of recomputing the chain (and, when given, of checking a signed checkpoint).

    ``first_bad_seq`` names the first link that does not verify (None when the chain is intact);
    ``checkpoint_ok`` is None when no checkpoint was checked.  ``ok`` is the overall verdict.
    """

    count: int
    head: ChainHead
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoint_seq: int | None = None
    checkpoint_ok: bool | None = None
    checkpoint_reason: str | None = None
    #: the state replay (:class:`governance.audit._replay.StateReport`); None when it was not run
    state: Any = None

    @property
    def ok(self) -> bool:
        return (self.first_bad_seq is None and self.checkpoint_ok is not False
                and (self.state is None or self.state.ok))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (the ``--format json`` document of ``gov audit verify``)."""
        return {
            "ok": self.ok,
            "count": self.count,
            "head": {"seq": self.head.seq, "hash": self.head.hash},
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "checkpoint": None if self.checkpoint_ok is None else {
                "seq": self.checkpoint_seq, "ok": self.checkpoint_ok, "reason": self.checkpoint_reason},
            "state": None if self.state is None else self.state.as_dict(),
        }


_Row = tuple[int, Any, str, str, str, bytes, str, str]


def _time_matches(stored: Any, text: Any) -> bool:
    """The ``time`` column against the hashed ``time`` text (SQLite hands back its stored string)."""
    if not isinstance(text, str) or len(text) != 27:
        return False
    if isinstance(stored, str):  # raw SQLite storage, normally "YYYY-MM-DD HH:MM:SS.ffffff"
        if stored == text[:10] + " " + text[11:26]:
            return True
        try:  # another ISO spelling of the same instant (e.g. written with an offset)
            stored = datetime.fromisoformat(stored)
        except ValueError:
            return False
    if isinstance(stored, datetime):
        return format_time(stored) == text
    return False


def verify_events(rows: Iterable[_Row]) -> VerifyReport:
    """Recompute the chain over rows ``(seq, time, actor, action, subject, payload, prev_hash, hash)``
    in ascending ``seq`` order and name the first bad seq.

    * a gap in ``seq`` (a deleted row) names the first missing seq;
    * a row whose ``prev_hash`` is not the previous link names that row (moved, swapped, renumbered),
      except when it points to the link *before* the previous one: then the previous row was inserted
      into the chain and that row is named;
    * a hash that does not match ``(seq, prev_hash, payload)`` names the row (edited payload or hash);
    * ``time``/``actor``/``action``/``subject`` columns that differ from the hashed payload name the row.
    """
    sha256 = hashlib.sha256
    enc = _encode_string
    prefix = _PREFIX + ALGORITHM.encode() + b"\n"
    expected, prev, before_prev = 1, GENESIS_HASH, ""

    def broken(seq: int, reason: str) -> VerifyReport:
        good = seq - 1
        head = ChainHead(good, prev if good == expected - 1 else before_prev)
        return VerifyReport(good, head, seq, reason)

    for seq, time, actor, action, subject, payload, prev_hash, stored_hash in rows:
        if seq != expected:
            if seq > expected:
                return broken(expected, f"seq {expected} is missing (next row is seq {seq}): row deleted")
            return broken(seq, f"seq {seq} appears again after seq {expected - 1}: row inserted or moved")
        if prev_hash != prev:
            if before_prev and prev_hash == before_prev:
                return broken(seq - 1, f"seq {seq} links to seq {seq - 2}: seq {seq - 1} was inserted")
            return broken(seq, "prev_hash is not the previous link's hash: row deleted, inserted or moved")
        body = payload if type(payload) is bytes else bytes(payload)
        if sha256(prefix + f"{seq}\n{prev}\n".encode() + body).hexdigest() != stored_hash:
            return broken(seq, "hash does not match (seq, prev_hash, payload): payload or hash edited")
        # Fast path: the canonical payload starts with action and actor and ends with subject and
        # time (sorted keys), so the columns can be checked without parsing the JSON.
        if type(time) is str and len(time) == 26:
            when = f"{time[:10]}T{time[11:]}Z"
        elif isinstance(time, datetime):
            when = format_time(time)
        else:
            when = ""
        try:
            fast = (body.startswith(f'{{"action":{enc(action)},"actor":{enc(actor)},"data":'.encode())
                    and body.endswith(f',"subject":{enc(subject)},"time":"{when}"}}'.encode()))
        except TypeError:
            fast = False
        if not fast and not _columns_match(body, time, actor, action, subject):
            return broken(seq, "time/actor/action/subject columns differ from the hashed payload")
        before_prev, prev = prev, stored_hash
        expected += 1
    return VerifyReport(expected - 1, ChainHead(expected - 1, prev))


def _columns_match(payload: bytes, time: Any, actor: Any, action: Any, subject: Any) -> bool:
    try:
        body = json.loads(payload)
    except ValueError:
        return False
    return (isinstance(body, dict) and body.get("actor") == actor and body.get("action") == action
            and body.get("subject") == subject and _time_matches(time, body.get("time")))


_SELECT = "SELECT seq, {time}, actor, action, subject, payload, prev_hash, hash FROM audit_event"
# PostgreSQL hands ``time`` back as the UTC text SQLite stores ("YYYY-MM-DD HH:MM:SS.ffffff"): the
# column check in verify_events is then a string comparison instead of a datetime parse + format per
# row (about half of verify's time on PostgreSQL).  Only the column check uses it; hashes are over
# the stored payload bytes.
_PG_TIME = "to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"


def iter_chain(session: Session, batch: int = 50_000) -> Iterator[_Row]:
    """Stream the log in seq order in batches (keyset pagination; memory stays flat).

    Rows come straight from the driver cursor as plain tuples (no ORM or type processing); ``time``
    is text: the stored text on SQLite, the UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` on PostgreSQL
    (:func:`verify_events` also accepts datetimes).
    """
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    select = _SELECT.format(time=_PG_TIME if postgres else "time")
    sql = f"{select} WHERE seq > {mark} ORDER BY seq LIMIT {int(batch)}"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        last = 0
        while True:
            with _driver_errors(conn, sql):
                cursor.execute(sql, (last,))
                rows = cursor.fetchall()
            if not rows:
                return
            yield from rows
            if len(rows) < batch:
                return
            last = int(rows[-1][0])
    finally:
        cursor.close()


def hash_at(session: Session, seq: int) -> str | None:
    """The stored hash of link ``seq`` (None when there is no such row)."""
    row = session.execute(sa.select(col(AuditEvent.hash)).where(col(AuditEvent.seq) == seq)).first()
    return None if row is None else str(row[0])
