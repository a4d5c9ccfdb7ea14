"""Full state replay for ``gov audit verify``: the log's state maps against the state tables.

Folding every event's state map gives the content the log says each bound row has now; every row of
every state table is then digested and compared.  Three kinds of finding, each counted and the first
of each named: rows without an event (written outside the audited path), events without rows (a row
the log says exists was deleted), and content mismatches (a row edited after its event).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from governance.audit._state import iter_rows, state_of
from governance.catalog import STATE_TABLES

__all__ = ["PARALLEL_FROM", "StateCollector", "StateReport", "TableScan", "replay_state"]


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
                state = state_of(bytes(payload))
                if state:
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
            state = state_of(payload)
            if state:
                self.add(int(row[0]), state)
            yield row


#: at least this many state-bearing rows before verify scans the tables in a second process
PARALLEL_FROM = 50_000


def scan_main() -> None:
    """Child process (``python -c``): read a catalog URL on stdin, write every state table's rows as
    ``TABLE N`` lines each followed by N 8-byte ids and N 32-byte digests, then ``END``."""
    from array import array

    from governance.catalog import Catalog

    url = sys.stdin.readline().strip()
    out = sys.stdout.buffer
    catalog = Catalog(url, upgrade=False, read_only=True)
    with catalog.read() as session:
        for table in STATE_TABLES:
            ids, digests = array("q"), bytearray()
            for row_id, digest in iter_rows(session, table):
                ids.append(row_id)
                digests += bytes.fromhex(digest)
            out.write(f"{table} {len(ids)}\n".encode())
            out.write(ids.tobytes())
            out.write(digests)
    out.write(b"END\n")
    out.flush()
    catalog.dispose()


class TableScan:
    """The state tables digested in a second process while the parent verifies the chain (2 cores:
    the two halves of verify overlap).  Its snapshot is its own, so every disagreement it reports is
    checked again in the parent's transaction before it is reported (:func:`replay_state`).  A plain
    subprocess of this interpreter, not ``multiprocessing``: the caller's ``__main__`` is never re-run."""

    def __init__(self, url: str) -> None:
        import subprocess

        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from governance.audit._replay import scan_main; scan_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        stdin = self._proc.stdin
        if stdin is not None:  # always: stdin=PIPE
            stdin.write(url.encode() + b"\n")
            stdin.close()

    def result(self) -> dict[str, dict[int, str]] | None:
        """``{table: {id: digest}}``, or None when the child failed (the parent then scans itself)."""
        from array import array

        out: dict[str, dict[int, str]] = {}
        stream = self._proc.stdout
        if stream is None:  # pragma: no cover - stdout=PIPE
            return None
        try:
            while True:
                header = stream.readline().decode().split()
                if header == ["END"]:
                    break
                if len(header) != 2 or header[0] not in STATE_TABLES:
                    return None
                table, count = header[0], int(header[1])
                ids = array("q")
                ids.frombytes(stream.read(8 * count))
                digests = stream.read(32 * count)
                if len(ids) != count or len(digests) != 32 * count:
                    return None
                out[table] = {row_id: digests[32 * n:32 * n + 32].hex() for n, row_id in enumerate(ids)}
        except (OSError, ValueError):
            return None
        finally:
            stream.close()
            if self._proc.wait(timeout=60) != 0:
                out = {}
        return out if set(out) == set(STATE_TABLES) else None


def replay_state(session: Session, collected: StateCollector | None = None,
                 scan: TableScan | None = None) -> StateReport:
    """Replay every state map of the log (or those ``collected`` while the chain was verified) and
    compare it with every row of the state tables."""
    if collected is None:
        collected = StateCollector()
        for seq, state in _state_maps(session):
            collected.add(seq, state)
    expected = collected.expected
    counts = {"rows": 0, "unbound": 0, "missing": 0, "mismatched": 0}
    first: dict[str, str] = {}
    scanned = scan.result() if scan is not None else None
    for table in STATE_TABLES:
        want = expected[table]
        for row_id, digest in (_checked(session, table, scanned[table], want) if scanned is not None
                               else iter_rows(session, table)):
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


def _checked(session: Session, table: str, scanned: dict[int, str],
             want: dict[int, tuple[int, str | None]]) -> Iterator[tuple[int, str]]:
    """The child's ``(id, digest)`` pairs, with every one that disagrees with the log (and every row
    the log expects that the child did not see) read and digested again in this transaction."""
    from governance.audit._state import read_rows, row_digest

    doubtful = {i for i, d in scanned.items() if (want.get(i) or (0, None))[1] != d}
    doubtful |= {i for i, (_s, d) in want.items() if d is not None and i not in scanned}
    fresh = read_rows(session, table, doubtful) if doubtful else {}
    for row_id, digest in scanned.items():
        if row_id not in doubtful:
            yield row_id, digest
    for row_id in sorted(fresh):
        yield row_id, row_digest(table, fresh[row_id])
