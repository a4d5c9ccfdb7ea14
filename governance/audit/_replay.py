"""Full state replay for ``gov audit verify``: the log's state maps against the state tables.

Folding every event's state map gives the content the log says each bound row has now; every row of
every state table is then digested and compared.  Three kinds of finding, each counted and the first
of each named: rows without an event (written outside the audited path), events without rows (a row
the log says exists was deleted), and content mismatches (a row edited after its event).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from governance.audit._state import iter_rows
from governance.catalog import STATE_TABLES

__all__ = ["StateCollector", "StateReport", "replay_state"]


@dataclass(frozen=True)
class StateReport:
    """Outcome of replaying the log's state maps against the state tables."""

    rows: int = 0
    unbound: int = 0
    missing: int = 0
    mismatched: int = 0
    first_unbound: str | None = None
    first_missing: str | None = None
    first_mismatch: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.unbound or self.missing or self.mismatched)

    def lines(self) -> list[str]:
        """One line per kind of finding (empty when the state matches the log)."""
        out = []
        if self.unbound:
            out.append(f"{self.unbound} row(s) without an audit event, first: {self.first_unbound}")
        if self.missing:
            out.append(f"{self.missing} audit event row(s) without their row, first: {self.first_missing}")
        if self.mismatched:
            out.append(f"{self.mismatched} row(s) differ from the content the log recorded, first: "
                       f"{self.first_mismatch}")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "without_event": self.unbound, "event_without_row": self.missing,
                "mismatched": self.mismatched, "first_without_event": self.first_unbound,
                "first_event_without_row": self.first_missing, "first_mismatch": self.first_mismatch}


def _state_maps(session: Session, batch: int = 50_000) -> Iterator[tuple[int, dict[str, Any]]]:
    conn = session.connection()
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    sql = f"SELECT seq, payload FROM audit_event WHERE seq > {mark} ORDER BY seq LIMIT {int(batch)}"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    last = 0
    try:
        while True:
            cursor.execute(sql, (last,))
            rows = cursor.fetchall()
            for seq, payload in rows:
                body = bytes(payload)
                if b'"state":{' in body:
                    state = json.loads(body).get("state")
                    if isinstance(state, dict):
                        yield int(seq), state
            if len(rows) < batch:
                return
            last = int(rows[-1][0])
    finally:
        cursor.close()


Expected = dict[str, dict[int, tuple[int, str | None]]]


class StateCollector:
    """Folds the state maps of chain rows as they stream past (``verify_audit`` reads the log once for
    both the chain and the state): wrap the row iterator with :meth:`watch`."""

    def __init__(self) -> None:
        self.expected: Expected = {t: {} for t in STATE_TABLES}

    def add(self, seq: int, state: dict[str, Any]) -> None:
        for table, rows in state.items():
            into = self.expected.get(table)
            if into is None:
                continue
            for row_id, digest in rows.items():
                into[int(row_id)] = (seq, digest)

    def watch(self, rows: Iterator[Any]) -> Iterator[Any]:
        for row in rows:
            payload = row[5] if type(row[5]) is bytes else bytes(row[5])
            if b'"state":{' in payload:
                state = json.loads(payload).get("state")
                if isinstance(state, dict):
                    self.add(int(row[0]), state)
            yield row


def replay_state(session: Session, collected: StateCollector | None = None) -> StateReport:
    """Replay every state map of the log (or those ``collected`` while the chain was verified) and
    compare it with every row of the state tables."""
    if collected is None:
        collected = StateCollector()
        for seq, state in _state_maps(session):
            collected.add(seq, state)
    expected = collected.expected
    counts = {"rows": 0, "unbound": 0, "missing": 0, "mismatched": 0}
    first: dict[str, str] = {}
    for table in STATE_TABLES:
        want = expected[table]
        for row_id, digest in iter_rows(session, table):
            counts["rows"] += 1
            recorded = want.pop(row_id, None)
            if recorded is None or recorded[1] is None:
                counts["unbound"] += 1
                first.setdefault("unbound", f"{table} {row_id} has no audit event" if recorded is None
                                 else f"{table} {row_id} was deleted at seq {recorded[0]} but is present")
            elif recorded[1] != digest:
                counts["mismatched"] += 1
                first.setdefault("mismatch", f"{table} {row_id} differs from the content recorded at seq {recorded[0]}")
        for row_id, (seq, digest_) in sorted(want.items()):
            if digest_ is not None:
                counts["missing"] += 1
                first.setdefault("missing", f"{table} {row_id} recorded at seq {seq} is missing")
    return StateReport(counts["rows"], counts["unbound"], counts["missing"], counts["mismatched"],
                       first.get("unbound"), first.get("missing"), first.get("mismatch"))
