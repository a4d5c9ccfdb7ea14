"""Incremental verification of bound state: a Merkle snapshot of the projection plus the log's tail.

The state projection maps each bound row ``(table, id)`` to ``(seq, digest)``: the digest the newest
event that wrote the row recorded.  Replaying the whole log to know it costs seconds on a large
catalog, so the projection is kept as a *snapshot*: the ``audit_state`` table holds it as of an
``audit.snapshot`` event, whose payload (inside the hash chain) carries the Merkle root over it.

    root = H("r" + group_0 + ... + group_63)         64 groups
    group_g = H("g" + bucket_64g + ... + bucket_64g+63)   of 64 buckets each (4,096 buckets)
    bucket_b = H("b" + sorted "table\\tid\\tseq\\tdigest\\n" lines of the rows hashed into b)

The gate proves the rows it reads against that root (the entries of their buckets, the sibling
nodes from ``audit_state_node``) and replays only the events after the snapshot, whose links it
verifies.  Editing ``audit_state`` or the nodes therefore cannot vouch for a row: the recomputed root
no longer matches the one in the log.  The snapshot is advanced (the tail folded in, only the touched
buckets rehashed) when the tail grows past :data:`ADVANCE_AFTER` events, and rebuilt from genesis
when the stored projection does not match its root.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from governance.audit._chain import GENESIS_HASH, ChainHead, chain_head, link_hash
from governance.audit._state import state_of
from governance.catalog import AuditState, AuditStateNode, Catalog
from governance.errors import AuditIntegrityError

__all__ = [
    "ADVANCE_AFTER",
    "SNAPSHOT_ACTION",
    "BoundState",
    "StateVerdicts",
    "advance_snapshot",
    "bucket_of",
    "check_bound",
    "load_bound_state",
    "replay_projection",
    "require_bound",
]

SNAPSHOT_ACTION = "audit.snapshot"
BUCKETS = 4096
GROUP = 64
GROUPS = BUCKETS // GROUP
#: the gate folds the tail into a new snapshot when more events than this follow the newest one
ADVANCE_AFTER = 1000

Key = tuple[str, int]
Entry = tuple[int, str | None]  # (seq, digest or None for a deleted row)

_EMPTY_BUCKET = hashlib.sha256(b"b").hexdigest()
_EMPTY_GROUP = hashlib.sha256(b"g" + _EMPTY_BUCKET.encode() * GROUP).hexdigest()


def bucket_of(table: str, row_id: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{table}:{row_id}".encode()).digest()[:2], "big") % BUCKETS


def _bucket_digest(entries: Iterable[tuple[str, int, int, str]]) -> str:
    lines = sorted(f"{t}\t{i}\t{s}\t{d}\n" for t, i, s, d in entries)
    return hashlib.sha256(b"b" + "".join(lines).encode()).hexdigest() if lines else _EMPTY_BUCKET


def _join(prefix: bytes, digests: Iterable[str]) -> str:
    return hashlib.sha256(prefix + "".join(digests).encode()).hexdigest()


# ------------------------------------------------------------------------------------------ events
@dataclass(frozen=True)
class _Event:
    seq: int
    prev_hash: str
    hash: str
    action: str
    payload: bytes


# A closed range of seqs, its bounds ints written into the text.  A parameter would let PostgreSQL
# reuse a generic plan (after psycopg prepares the statement) that scans the whole log; an open
# ``seq >= N ... LIMIT n`` is planned as a parallel scan and sort of the whole log while the table has
# no statistics yet (a new or bulk-loaded catalog, before autovacuum analyses it: 33 ms at 100k
# events for the gate's one-event tail).  A range is estimated as a small part of the table with or
# without statistics, so it is always read through the primary key.
_EVENTS_FROM = ("SELECT seq, prev_hash, hash, action, payload FROM audit_event WHERE seq >= {start:d} "
                "AND seq < {end:d} ORDER BY seq")
_NEXT_SEQ = "SELECT min(seq) FROM audit_event WHERE seq >= {start:d}"
_LATEST_SNAPSHOT = ("SELECT seq, prev_hash, hash, action, payload FROM audit_event WHERE action = {m} "
                    "ORDER BY seq DESC LIMIT 1")


def _cursor(session: Session) -> tuple[Any, str]:
    conn = session.connection()
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    return conn.connection.driver_connection.cursor(), mark  # type: ignore[union-attr]


def _events_from(session: Session, start: int, batch: int = 20_000) -> Iterator[_Event]:
    """Every event from ``start`` on, in seq order, read ``batch`` seqs at a time (after an empty range,
    the next stored seq is looked up, so a gap of any length reaches the caller's chain walk)."""
    cursor, _mark = _cursor(session)
    try:
        while True:
            cursor.execute(_EVENTS_FROM.format(start=int(start), end=int(start) + int(batch)))
            rows = cursor.fetchall()
            if not rows:
                cursor.execute(_NEXT_SEQ.format(start=int(start)))
                found = cursor.fetchone()
                if found is None or found[0] is None:
                    return
                start = int(found[0])
                continue
            for seq, prev, digest, action, payload in rows:
                yield _Event(int(seq), str(prev), str(digest), str(action), bytes(payload))
            start += int(batch)
    finally:
        cursor.close()


def _latest_snapshot(session: Session) -> _Event | None:
    cursor, mark = _cursor(session)
    try:
        cursor.execute(_LATEST_SNAPSHOT.format(m=mark), (SNAPSHOT_ACTION,))
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    return _Event(int(row[0]), str(row[1]), str(row[2]), str(row[3]), bytes(row[4]))


class _ChainWalk:
    """Checks links one after another from a starting link whose predecessor hash is given."""

    def __init__(self, first_seq: int, prev_hash: str) -> None:
        self.expected, self.prev = first_seq, prev_hash

    def step(self, event: _Event) -> None:
        if event.seq != self.expected:
            raise AuditIntegrityError(f"audit log: seq {self.expected} is missing (next row is seq {event.seq})")
        if event.prev_hash != self.prev:
            raise AuditIntegrityError(f"audit log: seq {event.seq} does not link to seq {event.seq - 1}")
        if link_hash(event.seq, event.prev_hash, event.payload) != event.hash:
            raise AuditIntegrityError(f"audit log: seq {event.seq} was edited (its hash does not match)")
        self.prev, self.expected = event.hash, event.seq + 1


# --------------------------------------------------------------------------------------- projection
def replay_projection(events: Iterable[_Event], walk: _ChainWalk,
                      into: dict[Key, Entry] | None = None) -> tuple[dict[Key, Entry], int]:
    """Fold the state maps of ``events`` (checked link by link) into a projection; the last seq seen."""
    projection: dict[Key, Entry] = {} if into is None else into
    last = walk.expected - 1
    for event in events:
        walk.step(event)
        last = event.seq
        state = state_of(event.payload)
        if not state:
            continue
        for table, rows in state.items():
            for row_id, digest in rows.items():
                projection[(table, int(row_id))] = (event.seq, digest)
    return projection, last


@dataclass
class BoundState:
    """What the gate trusts: the snapshot's root and the tail of the log after it (links verified)."""

    snapshot_seq: int
    root: str
    head: ChainHead
    tail: dict[Key, Entry] = field(default_factory=dict)
    tail_events: int = 0

    def check(self, session: Session, rows: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> list[str]:
        """Problems with ``rows`` (``{table: {id: column values}}``), one line each; empty when every row
        matches the content the log recorded for it last."""
        from governance.audit._state import row_digest

        problems: list[str] = []
        pending: dict[Key, str] = {}
        for table, by_id in rows.items():
            for row_id, values in by_id.items():
                digest = row_digest(table, values)
                recorded = self.tail.get((table, int(row_id)))
                if recorded is None:
                    pending[(table, int(row_id))] = digest
                else:
                    problems.extend(_compare(table, int(row_id), digest, recorded))
        if pending:
            snapshot = self._snapshot_entries(session, {bucket_of(t, i) for t, i in pending})
            for (table, row_id), digest in sorted(pending.items()):
                recorded = snapshot.get((table, row_id))
                if recorded is None:
                    problems.append(f"{table} {row_id} has no audit event")
                else:
                    problems.extend(_compare(table, row_id, digest, recorded))
        return problems

    def _snapshot_entries(self, session: Session, buckets: set[int]) -> dict[Key, Entry]:
        """The snapshot entries of ``buckets``, proved against the root (else AuditIntegrityError)."""
        return _flatten(self._proved_buckets(session, buckets)[0])

    def _proved_buckets(self, session: Session, buckets: set[int]
                        ) -> tuple[dict[int, dict[Key, Entry]], dict[tuple[int, int], str]]:
        """The entries of ``buckets`` (by bucket) and the stored nodes, proved against the root."""
        grouped = _bucket_entries(session, buckets)
        groups = {b // GROUP for b in buckets}
        stored = _nodes(session, groups)
        computed = {b: _bucket_digest((t, i, s, d) for (t, i), (s, d) in grouped.get(b, {}).items())  # type: ignore[misc]
                    for b in buckets}
        group_digests = {}
        for g in groups:
            children = [computed.get(b) or stored.get((1, b), _EMPTY_BUCKET) for b in range(g * GROUP, (g + 1) * GROUP)]
            group_digests[g] = _join(b"g", children)
        top = [group_digests.get(g) or stored.get((2, g), _EMPTY_GROUP) for g in range(GROUPS)]
        if _join(b"r", top) != self.root:
            raise _IndexAltered(f"the state index does not match the root recorded at seq {self.snapshot_seq}")
        return grouped, stored


def _flatten(grouped: Mapping[int, Mapping[Key, Entry]]) -> dict[Key, Entry]:
    out: dict[Key, Entry] = {}
    for entries in grouped.values():
        out.update(entries)
    return out


class _IndexAltered(AuditIntegrityError):
    """The stored projection or its nodes do not prove against the snapshot root (rebuilt from the log)."""


def _compare(table: str, row_id: int, digest: str, recorded: Entry) -> list[str]:
    seq, expected = recorded
    if expected is None:
        return [f"{table} {row_id} was deleted at seq {seq} but is present"]
    if expected != digest:
        return [f"{table} {row_id} differs from the content recorded at seq {seq}"]
    return []


def _bucket_entries(session: Session, buckets: set[int]) -> dict[int, dict[Key, Entry]]:
    """The stored entries of ``buckets``, by bucket."""
    out: dict[int, dict[Key, Entry]] = {}
    wanted = sorted(buckets)
    cursor, mark = _cursor(session)
    try:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ", ".join([mark] * len(chunk))
            cursor.execute(f"SELECT bucket, tbl, row_id, seq, digest FROM audit_state WHERE bucket IN ({marks})", chunk)
            for b, t, i, s, d in cursor.fetchall():
                out.setdefault(int(b), {})[(str(t), int(i))] = (int(s), str(d))
    finally:
        cursor.close()
    return out


def _nodes(session: Session, groups: Iterable[int]) -> dict[tuple[int, int], str]:
    """The stored level-2 nodes and the level-1 nodes of ``groups`` (one indexed range per group)."""
    cursor, mark = _cursor(session)
    out: dict[tuple[int, int], str] = {}
    try:
        cursor.execute("SELECT level, idx, digest FROM audit_state_node WHERE level = 2")
        rows = list(cursor.fetchall())
        wanted = sorted(set(groups))
        for start in range(0, len(wanted), 100):
            chunk = wanted[start:start + 100]
            ranges = " OR ".join([f"(idx >= {mark} AND idx < {mark})"] * len(chunk))
            params = [v for g in chunk for v in (g * GROUP, (g + 1) * GROUP)]
            cursor.execute(f"SELECT level, idx, digest FROM audit_state_node WHERE level = 1 AND ({ranges})", params)
            rows += cursor.fetchall()
    finally:
        cursor.close()
    for level, idx, digest in rows:
        out[(int(level), int(idx))] = str(digest)
    return out


def _snapshot_root(event: _Event) -> str:
    body = json.loads(event.payload)
    root = (body.get("data") or {}).get("root")
    if not isinstance(root, str) or len(root) != 64:
        raise AuditIntegrityError(f"audit log: snapshot seq {event.seq} has no root")
    return root


def load_bound_state(session: Session) -> BoundState | None:
    """The newest snapshot and the verified tail after it; None when the log has no snapshot yet."""
    snapshot = _latest_snapshot(session)
    if snapshot is None:
        return None
    before = _hash_at(session, snapshot.seq - 1) if snapshot.seq > 1 else GENESIS_HASH
    if before != snapshot.prev_hash:
        raise AuditIntegrityError(f"audit log: snapshot seq {snapshot.seq} does not link to seq {snapshot.seq - 1}")
    walk = _ChainWalk(snapshot.seq, snapshot.prev_hash)
    tail, last = replay_projection(_events_from(session, snapshot.seq), walk)
    head = chain_head(session)
    if head.seq != last:
        raise AuditIntegrityError(f"audit log: the chain ends at seq {last} but the head is seq {head.seq}")
    return BoundState(snapshot.seq, _snapshot_root(snapshot), head, tail, last - snapshot.seq)


def _hash_at(session: Session, seq: int) -> str | None:
    cursor, mark = _cursor(session)
    try:
        cursor.execute(f"SELECT hash FROM audit_event WHERE seq = {mark}", (seq,))
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else str(row[0])


# ------------------------------------------------------------------------------------------ advance
def advance_snapshot(catalog: Catalog, actor: str, *, rebuild: bool = False) -> int:
    """Fold the tail into a new snapshot (rebuild it from genesis when asked, when there is none, or
    when the stored projection no longer proves against its root); the new snapshot's seq."""
    from governance.audit._write import audited

    with audited(catalog, actor) as tx:
        session = tx.session
        snapshot = None if rebuild else _latest_snapshot(session)
        reason = "rebuild requested" if rebuild else None
        if snapshot is not None:
            try:
                root, count = _fold_tail(session, snapshot)
            except _IndexAltered as exc:
                snapshot, reason = None, str(exc)
        if snapshot is None:
            root, count = _rebuild(session)
            reason = reason or "first snapshot"
        data: dict[str, Any] = {"root": root, "rows": count,
                                "previous": None if snapshot is None else snapshot.seq}
        if snapshot is None:
            data["rebuilt"] = reason
        return tx.record(SNAPSHOT_ACTION, "audit:state", data).seq


def _rebuild(session: Session) -> tuple[str, int]:
    walk = _ChainWalk(1, GENESIS_HASH)
    projection, _last = replay_projection(_events_from(session, 1), walk)
    live = {k: v for k, v in projection.items() if v[1] is not None}
    conn = session.connection()
    state: sa.Table = AuditState.__table__  # type: ignore[attr-defined]
    nodes: sa.Table = AuditStateNode.__table__  # type: ignore[attr-defined]
    conn.execute(sa.delete(state))
    conn.execute(sa.delete(nodes))
    rows = [{"tbl": t, "row_id": i, "bucket": bucket_of(t, i), "seq": s, "digest": d}
            for (t, i), (s, d) in live.items()]
    for start in range(0, len(rows), 10_000):
        conn.execute(sa.insert(state), rows[start:start + 10_000])
    by_bucket: dict[int, list[tuple[str, int, int, str]]] = {}
    for (t, i), (s, d) in live.items():
        by_bucket.setdefault(bucket_of(t, i), []).append((t, i, s, str(d)))
    level1 = {b: _bucket_digest(entries) for b, entries in by_bucket.items()}
    level2 = {g: _join(b"g", [level1.get(b, _EMPTY_BUCKET) for b in range(g * GROUP, (g + 1) * GROUP)])
              for g in {b // GROUP for b in level1}}
    _write_nodes(session, level1, level2)
    root = _join(b"r", [level2.get(g, _EMPTY_GROUP) for g in range(GROUPS)])
    return root, len(rows)


def _fold_tail(session: Session, snapshot: _Event) -> tuple[str, int]:
    bound = load_bound_state(session)
    if bound is None:  # pragma: no cover - the caller found the snapshot in the same transaction
        raise _IndexAltered("the snapshot to fold onto has gone")
    touched: dict[int, dict[Key, Entry]] = {}
    for key, entry in bound.tail.items():
        touched.setdefault(bucket_of(*key), {})[key] = entry
    grouped, stored = bound._proved_buckets(session, set(touched)) if touched else ({}, {})
    if not touched:
        stored = _nodes(session, ())
    stored_root = _join(b"r", [stored.get((2, g), _EMPTY_GROUP) for g in range(GROUPS)])
    if stored_root != bound.root:
        raise _IndexAltered(f"the state index does not match the root recorded at seq {bound.snapshot_seq}")
    level1 = {}
    for b, changes in touched.items():
        entries = dict(grouped.get(b, {}))
        for key, entry in changes.items():
            if entry[1] is None:
                entries.pop(key, None)
            else:
                entries[key] = entry
        level1[b] = _bucket_digest((t, i, s, d) for (t, i), (s, d) in entries.items())  # type: ignore[misc]
    conn = session.connection()
    state: sa.Table = AuditState.__table__  # type: ignore[attr-defined]
    keys = list(bound.tail)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        conn.execute(sa.delete(state).where(sa.tuple_(state.c.tbl, state.c.row_id).in_(chunk)))
    inserts = [{"tbl": t, "row_id": i, "bucket": bucket_of(t, i), "seq": s, "digest": d}
               for (t, i), (s, d) in bound.tail.items() if d is not None]
    for start in range(0, len(inserts), 10_000):
        conn.execute(sa.insert(state), inserts[start:start + 10_000])
    level2 = {}
    for g in {b // GROUP for b in touched}:
        level2[g] = _join(b"g", [level1.get(b) or stored.get((1, b), _EMPTY_BUCKET)
                                 for b in range(g * GROUP, (g + 1) * GROUP)])
    _write_nodes(session, level1, level2)
    root = _join(b"r", [level2.get(g) or stored.get((2, g), _EMPTY_GROUP) for g in range(GROUPS)])
    count = conn.execute(sa.select(sa.func.count()).select_from(state)).scalar_one()
    return root, int(count)


def _write_nodes(session: Session, level1: Mapping[int, str], level2: Mapping[int, str]) -> None:
    nodes: sa.Table = AuditStateNode.__table__  # type: ignore[attr-defined]
    conn = session.connection()
    pairs = [(1, b, d) for b, d in level1.items()] + [(2, g, d) for g, d in level2.items()]
    for start in range(0, len(pairs), 500):
        chunk = pairs[start:start + 500]
        keys = [(lv, ix) for lv, ix, _ in chunk]
        conn.execute(sa.delete(nodes).where(sa.tuple_(nodes.c.level, nodes.c.idx).in_(keys)))
        conn.execute(sa.insert(nodes), [{"level": lv, "idx": ix, "digest": d} for lv, ix, d in chunk])


# ---------------------------------------------------------------------------------------- the gate
Wanted = Mapping[str, Iterable[int | None]]


def require_bound(catalog: Catalog, wanted: Wanted, *, actor: str) -> BoundState:
    """Fail closed unless every row named in ``wanted`` (``{table: ids}``) matches the content the
    verified log recorded for it last: :class:`~governance.errors.UnboundStateError` naming the first
    row and what is wrong.  Folds a long tail into a new snapshot first (an audited write), and
    rebuilds the snapshot from the log once when the stored projection does not prove against it."""
    for attempt in range(3):
        with catalog.read() as session:
            _repeatable(session)
            bound = load_bound_state(session)
            if bound is not None and bound.tail_events <= ADVANCE_AFTER:
                try:
                    check_bound(session, bound, wanted)
                    return bound
                except _IndexAltered:
                    if attempt == 2:
                        raise
                    rebuild = True
            else:
                rebuild = False
        advance_snapshot(catalog, actor, rebuild=rebuild)
    raise AuditIntegrityError("the state snapshot could not be brought up to date")  # pragma: no cover


def check_bound(session: Session, bound: BoundState | None, wanted: Wanted) -> None:
    """Read the rows named in ``wanted`` in ``session`` and raise
    :class:`~governance.errors.UnboundStateError` unless each matches the log (``bound`` None: load it
    in ``session``, e.g. inside the gate's own write transaction after :func:`require_bound`)."""
    from governance.audit._state import read_rows
    from governance.errors import UnboundStateError

    if bound is None:
        bound = load_bound_state(session)
        if bound is None:
            raise UnboundStateError("the gate trusts only state bound to the audit log, and the log has no "
                                    "state snapshot yet (run the gate again)")

    ids = {t: sorted({int(i) for i in v if i is not None}) for t, v in wanted.items()}
    rows = {t: read_rows(session, t, v) for t, v in ids.items() if v}
    problems = [f"{t} {i} does not exist" for t, v in ids.items() for i in v if i not in rows.get(t, {})]
    problems += bound.check(session, rows)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UnboundStateError(f"the gate trusts only state bound to the audit log: {problems[0]}{more}; "
                                "`gov audit verify` lists every unbound row", problems)


def _repeatable(session: Session) -> None:
    """One snapshot for every statement of the verification (PostgreSQL defaults to READ COMMITTED)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


# ----------------------------------------------------------------------------------------- reports
class StateVerdicts:
    """Read-only binding verdicts for reports: :meth:`problem` says why a row is not a fact (None when
    it matches the log).  Uses the newest snapshot and its tail; with no snapshot yet, the whole log is
    replayed in memory (reports never write).  A log that does not verify makes every row unverified."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._bound: BoundState | None = None
        self._failure: str | None = None
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        try:
            bound = load_bound_state(self.session)
            if bound is None:
                walk = _ChainWalk(1, GENESIS_HASH)
                tail, last = replay_projection(_events_from(self.session, 1), walk)
                empty_root = _join(b"r", [_EMPTY_GROUP] * GROUPS)
                bound = BoundState(0, empty_root, ChainHead(last, walk.prev), tail, last)
            self._bound = bound
        except AuditIntegrityError as exc:
            self._failure = f"the audit log does not verify ({exc})"

    def problem(self, table: str, obj: Any) -> str | None:
        from governance.audit._state import row_values

        if not self._loaded:
            self._load()
        if self._failure is not None or self._bound is None:
            return self._failure or "the audit log does not verify"
        try:
            found = self._bound.check(self.session, {table: {int(obj.id): row_values(obj)}})
        except _IndexAltered as exc:
            return f"{exc} (run a gate or `gov audit verify`)"
        return found[0] if found else None
