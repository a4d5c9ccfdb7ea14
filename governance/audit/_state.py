"""State bound to the log: which tables are state, a row's canonical digest, and the rows a transaction wrote.

Every audited transaction ends with a *state map* on its last event: ``{table: {id: digest}}`` for
each row it inserted or updated (``null`` for a row it deleted).  The digest is SHA-256 over the table
name and the canonical JSON of the row's non-null columns, ids included, read back from the database
in the same transaction, so it is exactly what a later reader of that row sees.  Columns that are
NULL are left out: a nullable column added by a later migration does not change old digests.

Which rows a transaction wrote is recorded by triggers, whatever path wrote them (the ORM, Core
statements, precompiled statements): on SQLite, TEMP triggers that the audited transaction installs on
its own connection (a writer on another connection, e.g. the ``sqlite3`` shell, records nothing, so
its rows stay unbound); on PostgreSQL, triggers from migration 0006 that write ``audit_touch`` rows
keyed by the transaction id.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from governance.audit._chain import canonical_json
from governance.catalog import STATE_TABLES, RawConnection, Statement, state_table
from governance.domain import UTCDateTime, as_utc

__all__ = ["STATE_TABLES", "StateMap", "collect_state", "install_touch_log", "row_digest", "row_values", "supply_rows"]

#: ``{table: {str(id): digest or None}}``
StateMap = dict[str, dict[str, str | None]]

#: column types holding timestamps (digested in their canonical UTC spelling)
_TIME_TYPES = (sa.DateTime, UTCDateTime)

_INSTALLED = "governance.touch_log"
_SUPPLIED = "governance.supplied_rows"
_PG_TABLE = "governance.touch_table"


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        value = as_utc(value)
        return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
                f"{value.second:02d}.{value.microsecond:06d}Z")  # years below 1000 padded, as SQLite stores them
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


class _Digester:
    """The digest of one table's rows: the generic canonical form, computed with one C ``json.dumps``
    over the row when its values are plain (the common case), else through :func:`canonical_json`."""

    def __init__(self, table: sa.Table) -> None:
        self.prefix = table.name.encode() + b"\n"
        self.columns = tuple(c.key for c in table.columns)  # the order rows come in
        self.keys = tuple(sorted(self.columns))
        self.times = frozenset(c.key for c in table.columns if isinstance(c.type, _TIME_TYPES))
        self.plan = tuple((key, self.columns.index(key), key in self.times) for key in self.keys)

    def __call__(self, values: Mapping[str, Any]) -> str:
        return self.row(tuple(values[key] for key in self.columns))

    def row(self, row: Sequence[Any]) -> str:
        """The digest of a row given as values in column order (what a cursor returns)."""
        body = {}
        for key, index, is_time in self.plan:
            value = row[index]
            if value is None:
                continue
            if is_time:
                # SQLite's stored text "YYYY-MM-DD HH:MM:SS.ffffff" is the canonical spelling, respelled
                if type(value) is str and len(value) == 26 and value[10] == " " and value[19] == ".":
                    value = f"{value[:10]}T{value[11:]}Z"
                else:
                    value = _norm(datetime.fromisoformat(value) if isinstance(value, str) else value)
            body[key] = value
        try:
            text = _dumps(body)
        except (TypeError, ValueError):  # NaN, infinities, numpy or other non-JSON values
            return hashlib.sha256(self.prefix + canonical_json({k: _norm(v) for k, v in body.items()})).hexdigest()
        return hashlib.sha256(self.prefix + text.encode()).hexdigest()


def _encoder() -> Any:
    """``json.dumps`` with the canonical settings, as one C encoder made once (``JSONEncoder.encode``
    makes a new one per call, a third of the cost of a small row); the same bytes either way."""
    encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return encoder.encode
    encode = make(None, encoder.default, json.encoder.encode_basestring, None, ":", ",", True, False, False)
    return lambda body: "".join(encode(body, 0))


_dumps = _encoder()
_DIGESTERS: Mapping[str, _Digester] = MappingProxyType({name: _Digester(state_table(name)) for name in STATE_TABLES})


def row_digest(table: str, values: Mapping[str, Any]) -> str:
    """The digest of one row's content: table name plus the canonical JSON of its non-null columns
    (the same bytes :func:`~governance.audit.canonical_json` gives)."""
    digester = _DIGESTERS.get(table)
    if digester is None or any(k not in values for k in digester.keys):
        body = {k: _norm(v) for k, v in values.items() if v is not None}
        return hashlib.sha256(table.encode() + b"\n" + canonical_json(body)).hexdigest()
    return digester(values)


def row_values(obj: Any) -> dict[str, Any]:
    """The column values of an ORM object of a state table (as the database returned them)."""
    table: sa.Table = obj.__table__
    return {c.key: getattr(obj, c.key) for c in table.columns}


def _sqlite_install(cursor: Any) -> None:
    # op: i(nsert), u(pdate), d(elete); rowid keeps the order rows were written in
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS gov_touch (tbl TEXT NOT NULL, row_id INTEGER NOT NULL, "
                   "op TEXT NOT NULL)")
    cursor.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")
    present = {str(row[0]) for row in cursor.fetchall()}
    for name in STATE_TABLES:
        if name not in present:  # an older schema (a catalog being upgraded)
            continue
        cursor.execute(f'CREATE TEMP TRIGGER IF NOT EXISTS "gov_touch_{name}_i" AFTER INSERT ON main."{name}" '
                       f"BEGIN INSERT INTO gov_touch VALUES ('{name}', NEW.id, 'i'); END")
        cursor.execute(f'CREATE TEMP TRIGGER IF NOT EXISTS "gov_touch_{name}_u" AFTER UPDATE ON main."{name}" '
                       f"BEGIN INSERT INTO gov_touch VALUES ('{name}', NEW.id, 'u'); "
                       f"INSERT INTO gov_touch SELECT '{name}', OLD.id, 'u' WHERE OLD.id <> NEW.id; END")
        cursor.execute(f'CREATE TEMP TRIGGER IF NOT EXISTS "gov_touch_{name}_d" AFTER DELETE ON main."{name}" '
                       f"BEGIN INSERT INTO gov_touch VALUES ('{name}', OLD.id, 'd'); END")


def install_touch_log(session: Session) -> dict[str, Any]:
    """Make sure this session's connection records the state rows it writes (once per connection);
    returns the connection's info dict (give it to :func:`forget_touch_log` if the transaction that
    installed the log rolls back: SQLite's DDL rolls back with it)."""
    session.info.pop(_SUPPLIED, None)
    conn = session.connection()
    info = conn.connection.info
    if info.get(_INSTALLED):
        if conn.dialect.name == "sqlite":
            # rows written on this pooled connection outside an audited transaction are not this
            # transaction's to bind: they stay unbound (and the gate refuses them)
            conn.connection.driver_connection.execute("DELETE FROM temp.gov_touch")  # type: ignore[union-attr]
        return info
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "sqlite":
            _sqlite_install(cursor)
        else:  # PostgreSQL: migration 0006's triggers write audit_touch (absent before it)
            cursor.execute("SELECT to_regclass('audit_touch') IS NOT NULL")
            info[_PG_TABLE] = bool(cursor.fetchone()[0])
    finally:
        cursor.close()
    info[_INSTALLED] = True
    return info


def forget_touch_log(info: dict[str, Any]) -> None:
    """The transaction that installed the touch log rolled back: install it again next time."""
    info.pop(_INSTALLED, None)


_PG_TOUCHED = ("SELECT tbl, row_id FROM audit_touch WHERE xid = pg_current_xact_id()::text "
               "AND tbl <> 'audit_event'")
# the same, with whether this role may clear them (not on a hardened catalog), in the same round trip
_PG_TOUCHED_CLEARABLE = ("SELECT tbl, row_id, has_table_privilege('audit_touch', 'DELETE') FROM audit_touch "
                         "WHERE xid = pg_current_xact_id()::text AND tbl <> 'audit_event'")
_PG_CLEAR = "DELETE FROM audit_touch WHERE xid = pg_current_xact_id()::text"


def _touched(session: Session) -> tuple[dict[str, set[int]], list[tuple[str, int, str]]]:
    """The rows this transaction wrote, per table, and on SQLite the touches in the order they happened
    (``(table, id, op)``; empty elsewhere)."""
    conn = session.connection()
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    out: dict[str, set[int]] = {}
    ordered: list[tuple[str, int, str]] = []
    try:
        if conn.dialect.name == "sqlite":
            # not deleted here: the next audited transaction on this connection starts by emptying the
            # log (install_touch_log), and a rollback takes its rows with it
            cursor.execute("SELECT tbl, row_id, op FROM temp.gov_touch ORDER BY rowid")
            ordered = cursor.fetchall()
            rows = ordered
        elif not conn.connection.info.get(_PG_TABLE):
            rows = []
        else:
            hardened = conn.connection.info.get("governance.touch_hardened")
            cursor.execute(_PG_TOUCHED if hardened else _PG_TOUCHED_CLEARABLE)
            rows = cursor.fetchall()
            if rows and not hardened:
                if rows[0][2]:
                    cursor.execute(_PG_CLEAR)  # hardened catalogs clear them in the commit-time check
                else:
                    conn.connection.info["governance.touch_hardened"] = True
        for tbl, row_id, *_op in rows:
            found = out.get(tbl)
            if found is None:
                found = out[tbl] = set()
            found.add(row_id)
    finally:
        cursor.close()
    return out, ordered


def supply_rows(session: Session, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """The values of rows a writer just inserted into ``table`` of this session's audited transaction,
    in the order it inserted them, as it bound them (every column it set; ``id`` when it knows it).

    :func:`collect_state` digests them without reading them back: on SQLite, where the touch log keeps
    the order rows were written in, the table's inserts are matched to the supplied rows one to one
    (ids must agree where given); a row updated or deleted after its insert, or a table whose inserts
    do not match the rows supplied (another writer inserted too), is read back as before.  Elsewhere
    the rows are read back.  So the state map is the same either way; supplying only saves the reads.
    Rows are kept as flat tuples until then (lists as tuples: nothing for the garbage collector to
    walk in a large ingest batch).
    """
    if not rows or session.get_bind().dialect.name != "sqlite":
        return
    supplied = session.info.get(_SUPPLIED)
    if supplied is None:
        supplied = session.info[_SUPPLIED] = {}
    columns = _DIGESTERS[table].columns
    found = supplied.setdefault(table, [])
    for row in rows:
        found.append(tuple([tuple(v) if type(v) is list else v for v in map(row.get, columns)]))


def _wall_time(value: Any) -> Any:
    """A timestamp as SQLite's plain ``DATETIME`` stores it: its wall time, the offset dropped."""
    return value.replace(tzinfo=None) if isinstance(value, datetime) else value


@functools.lru_cache(maxsize=64)
def _stored_form(table: str, dialect: Any) -> tuple[tuple[int, Any, Any], ...]:
    """Per column that has them: ``(index, bind processor, result processor)`` turning a value as bound
    into the value a reader of the stored row sees.  A plain SQLite ``DATETIME`` stores the wall time
    (:func:`_wall_time`, which the digest spells as SQLite stores it, see :meth:`_Digester.row`)."""
    out: list[tuple[int, Any, Any]] = []
    for index, column in enumerate(state_table(table).columns):
        if type(column.type) is sa.DateTime and dialect.name == "sqlite":
            out.append((index, _wall_time, None))
            continue
        impl = column.type.dialect_impl(dialect)
        bind = impl.bind_processor(dialect)
        result = impl.result_processor(dialect, None)
        if bind is not None or result is not None:
            out.append((index, bind, result))
    return tuple(out)


def _supplied_digests(dialect: Any, table: str, rows: list[tuple[Any, ...]] | None,
                      touches: list[tuple[int, str]]) -> dict[int, str]:
    """Digests of the supplied rows of ``table`` matched to its inserts (see :func:`supply_rows`)."""
    inserted = [row_id for row_id, op in touches if op == "i"]
    if not rows or len(rows) != len(inserted):
        return {}
    changed = {row_id for row_id, op in touches if op != "i"}
    digester = _DIGESTERS[table]
    forms = _stored_form(table, dialect)
    at = digester.columns.index("id")
    out: dict[int, str] = {}
    for row_id, row in zip(inserted, rows, strict=True):
        if row[at] is not None and row[at] != row_id:
            return {}
        if row_id in changed:
            continue
        values = list(row)
        values[at] = row_id
        for index, bind, result in forms:
            value = values[index]
            if value is not None:
                if value == () and type(value) is tuple:  # an empty JSON list (see supply_rows)
                    values[index] = []
                    continue
                if bind is not None:
                    value = bind(value)
                values[index] = result(value) if result is not None else value
        out[row_id] = digester.row(values)
    return out


def _by_ids(table: str) -> sa.Select[Any]:
    t = state_table(table)
    return sa.select(t).where(t.c.id.in_(sa.bindparam("ids", expanding=True)))


#: one statement per table, built once (SQLAlchemy's compiled cache then finds it at once; building
#: ``select(...).where(id.in_(...))`` per call cost more than the query on PostgreSQL)
_BY_IDS: Mapping[str, sa.Select[Any]] = MappingProxyType({name: _by_ids(name) for name in STATE_TABLES})


def read_rows(session: Session, table: str, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The rows of ``table`` with these ids, as typed values (what any reader of the row sees)."""
    statement = _BY_IDS[table]
    wanted = sorted(set(ids))
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for row in session.connection().execute(statement, {"ids": chunk}).mappings():
            out[int(row["id"])] = dict(row)
    return out


_BATCH = 20_000


def state_of(payload: bytes) -> dict[str, Any] | None:
    """The state map of a canonical payload, parsing only its own bytes: keys are sorted, so it sits
    between ``"state":`` and the last ``,"subject":`` (a string value cannot hold an unescaped quote,
    and a state map holds table names, ids and hex digests only).  Anything unexpected: full parse."""
    end = payload.rfind(b',"subject":')
    start = payload.rfind(b',"state":{', 0, end) if end > 0 else -1
    if start < 0:
        return None
    try:
        state = json.loads(payload[start + 9:end])
    except ValueError:
        state = json.loads(payload).get("state")
    return state if isinstance(state, dict) else None


def _text_time_columns(t: sa.Table) -> list[Any]:
    """The table's columns, timestamps as SQLite's stored text (see :meth:`_Digester.row`)."""
    return [sa.type_coerce(c, sa.String).label(c.key) if isinstance(c.type, _TIME_TYPES) else c for c in t.columns]


def _scan_statement(table: str) -> Statement:
    """Every column in id order, in batches; timestamps as the text SQLite stores (no parse and
    re-format per row: :meth:`_Digester.__call__` turns the stored text into the canonical spelling)."""
    t = state_table(table)
    columns = _text_time_columns(t)
    return Statement(sa.select(*columns).where(t.c.id > sa.bindparam("after")).order_by(t.c.id).limit(_BATCH),
                     {"after": t.c.id.type})


_SCANS: Mapping[str, Statement] = MappingProxyType({name: _scan_statement(name) for name in STATE_TABLES})


def iter_rows(session: Session, table: str) -> Iterator[tuple[int, str]]:
    """``(id, digest)`` of every row of ``table`` in id order, streamed in batches (typed values as any
    reader sees them; no ORM or Row objects)."""
    raw = RawConnection(session)
    t = state_table(table)
    keys = [c.key for c in t.columns]
    digest = _DIGESTERS[table]
    after = 0
    while True:
        if raw.dialect.name == "sqlite":
            rows = _SCANS[table].all(raw, plain=True, after=after)
        else:  # typed through SQLAlchemy (its numeric processors need the driver's column types)
            rows = list(session.connection().execute(sa.select(t).where(t.c.id > after).order_by(t.c.id).limit(_BATCH)))
        at = keys.index("id")
        for row in rows:
            yield int(row[at]), digest.row(row)
        if len(rows) < _BATCH:
            return
        after = int(rows[-1][keys.index("id")])


def _range_statement(table: str) -> Statement:
    """The rows with ids in ``[lo, hi]``, timestamps as SQLite's stored text (see :func:`_scan_statement`)."""
    t = state_table(table)
    columns = _text_time_columns(t)
    return Statement(sa.select(*columns).where(t.c.id >= sa.bindparam("lo"), t.c.id <= sa.bindparam("hi")),
                     {"lo": t.c.id.type, "hi": t.c.id.type})


_RANGE: Mapping[str, Statement] = MappingProxyType({name: _range_statement(name) for name in STATE_TABLES})


def _digests(session: Session, table: str, ids: set[int]) -> dict[str, str | None]:
    """``{id: digest}`` of rows just written (None: deleted).  On SQLite the ids one transaction wrote
    are read with one precompiled range statement (the capture budget is a millisecond)."""
    lo, hi = min(ids), max(ids)
    if session.get_bind().dialect.name == "sqlite" and hi - lo < 2 * len(ids) + 8:  # ids of one write are dense
        raw = RawConnection(session)
        keys = [c.key for c in state_table(table).columns]
        at = keys.index("id")
        digester = _DIGESTERS[table]
        found = {int(row[at]): row for row in _RANGE[table].all(raw, plain=True, lo=lo, hi=hi)}
        return {str(i): (digester.row(found[i]) if i in found else None) for i in sorted(ids)}
    rows = read_rows(session, table, ids)
    return {str(i): (row_digest(table, rows[i]) if i in rows else None) for i in sorted(ids)}


def collect_state(session: Session) -> StateMap:
    """The state map of the rows this transaction has written (once, when it ends).  Rows a writer
    supplied (:func:`supply_rows`) are digested from the values it wrote; the rest are read back."""
    supplied: dict[str, list[tuple[Any, ...]]] = session.info.pop(_SUPPLIED, None) or {}
    touched, ordered = _touched(session)
    by_table: dict[str, list[tuple[int, str]]] = {}
    dialect = session.get_bind().dialect
    if supplied:
        for tbl, row_id, op in ordered:
            by_table.setdefault(tbl, []).append((row_id, op))
    state: StateMap = {}
    for table, ids in sorted(touched.items()):
        known = _supplied_digests(dialect, table, supplied.get(table), by_table.get(table, [])) if supplied else {}
        rest = ids - known.keys()
        digests = _digests(session, table, rest) if rest else {}
        digests.update((str(i), d) for i, d in known.items())
        state[table] = digests
    return state
