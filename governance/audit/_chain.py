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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from governance.catalog import AuditEvent
from governance.errors import InputError

__all__ = [
    "ALGORITHM",
    "GENESIS_HASH",
    "ChainHead",
    "VerifyReport",
    "append_event",
    "canonical_json",
    "chain_head",
    "link_hash",
    "verify_events",
]

ALGORITHM = "sha256"
GENESIS_HASH = "0" * 64
_PREFIX = b"governance-audit-v1\n"
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


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str


def chain_head(session: Session) -> ChainHead:
    """The last link (seq 0 and the genesis hash for an empty log)."""
    row = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).order_by(sa.desc(AuditEvent.seq)).limit(1)  # type: ignore[arg-type]
    ).first()
    return ChainHead(0, GENESIS_HASH) if row is None else ChainHead(int(row[0]), str(row[1]))


def lock_chain(session: Session) -> None:
    """Serialise appends: an advisory transaction lock on PostgreSQL; SQLite is already
    serialised by the write session's ``BEGIN IMMEDIATE``."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})


def append_event(
    session: Session,
    head: ChainHead,
    *,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, Any],
    time: datetime,
) -> AuditEvent:
    """Append one event after ``head`` inside the caller's (locked) transaction."""
    body = {"action": action, "actor": actor, "data": data, "subject": subject, "time": format_time(time)}
    payload = canonical_json(body)
    seq = head.seq + 1
    event = AuditEvent(
        seq=seq, time=time, actor=actor, action=action, subject=subject, payload=payload,
        prev_hash=head.hash, hash=link_hash(seq, head.hash, payload),
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of recomputing the chain.  ``first_bad_seq`` is None when the chain is intact."""

    count: int
    head: ChainHead
    first_bad_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


_Row = tuple[int, datetime, str, str, str, bytes, str, str]


def verify_events(rows: Iterable[_Row]) -> VerifyReport:
    """Recompute the chain over rows ``(seq, time, actor, action, subject, payload, prev_hash, hash)``
    in ascending ``seq`` order and name the first bad seq."""
    expected_seq, prev = 1, GENESIS_HASH
    count = 0
    for seq, _time, actor, action, subject, payload, prev_hash, stored_hash in rows:
        payload = bytes(payload)
        if seq != expected_seq:
            # a deleted row shows as a gap; an inserted or swapped row as a seq out of place
            bad = min(seq, expected_seq)
            return VerifyReport(count, ChainHead(expected_seq - 1, prev), bad,
                                f"expected seq {expected_seq}, found {seq} (row missing or out of order)")
        if prev_hash != prev:
            return VerifyReport(count, ChainHead(seq - 1, prev), seq,
                                "prev_hash does not match the previous link (row deleted, inserted or moved)")
        if link_hash(seq, prev_hash, payload) != stored_hash:
            return VerifyReport(count, ChainHead(seq - 1, prev), seq, "hash does not match the payload")
        try:
            body = json.loads(payload)
        except ValueError:
            return VerifyReport(count, ChainHead(seq - 1, prev), seq, "payload is not JSON")
        if (body.get("actor"), body.get("action"), body.get("subject")) != (actor, action, subject):
            return VerifyReport(count, ChainHead(seq - 1, prev), seq,
                                "actor/action/subject columns differ from the hashed payload")
        prev = stored_hash
        expected_seq += 1
        count += 1
    return VerifyReport(count, ChainHead(expected_seq - 1, prev))


def iter_chain(session: Session, batch: int = 10_000) -> Iterator[_Row]:
    """Stream the log in seq order, in batches (keyset pagination; memory stays flat)."""
    last = 0
    columns = (AuditEvent.seq, AuditEvent.time, AuditEvent.actor, AuditEvent.action, AuditEvent.subject,
               AuditEvent.payload, AuditEvent.prev_hash, AuditEvent.hash)
    while True:
        rows = session.execute(
            sa.select(*columns).where(AuditEvent.seq > last).order_by(AuditEvent.seq).limit(batch)  # type: ignore[arg-type,operator]
        ).all()
        if not rows:
            return
        for row in rows:
            yield tuple(row)  # type: ignore[misc]
        last = int(rows[-1][0])
