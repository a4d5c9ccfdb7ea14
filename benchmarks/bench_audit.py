"""Audit trail with state bound to the log: appends/s with 8 writer processes (SQLite, PostgreSQL),
full verify (chain and state replay) of 1M events, and the time the gate adds on 100k events.

    python -m benchmarks.bench_audit [--quick]

Appends go through the real write path (``audited(...)``, one transaction per event, each writing
one state row, so the event carries that row's digest) in 8 spawned processes that start together
behind a barrier; the chain and the state are verified afterwards.  The PostgreSQL leg runs when
``GOVERNANCE_TEST_POSTGRES_URL`` is set (a fresh database is created and dropped).  The verify leg
bulk-inserts rows and a chain of precomputed links binding them (the real ``row_digest`` and
``link_hash``), then times ``verify_audit`` (chain + state replay) end to end; quick mode uses 100k
events and extrapolates linearly (both passes are streamed, so they are linear in events).  The gate
leg times :func:`governance.audit.require_bound` for 30 rows on 100k bound events, with the newest
snapshot 0, 500 and 1,000 events (the most before the gate folds the tail) behind the head, plus
the fold and a cold rebuild.
There is no peer: no comparable open tool keeps a verifiable hash-chained audit log bound to its state.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from benchmarks._common import Result
from governance.audit import advance_snapshot, audited, canonical_json, link_hash, require_bound, verify_audit
from governance.audit._chain import GENESIS_HASH, format_time
from governance.audit._index import ADVANCE_AFTER
from governance.audit._state import row_digest
from governance.catalog import Catalog, insert_statement, state_table

__all__ = ["build_bound_chain", "build_chain", "run"]

WRITERS = 8


def _append_worker(url: str, n: int, worker: int, barrier: Any, queue: Any) -> None:
    try:
        catalog = Catalog(url)
        barrier.wait()
        insert = insert_statement(state_table("job"), ("namespace", "name", "kind", "created_at"))
        for i in range(n):
            with audited(catalog, f"writer-{worker}") as tx:
                # one state row per event (a precompiled insert, as capture writes), bound by its digest
                insert.execute(tx.raw, namespace=f"writer-{worker}", name=f"job-{i}", kind="task",
                               created_at=datetime.now(UTC))
                tx.record("bench.append", f"bench:{worker}", {"worker": worker, "i": i})
        catalog.dispose()
        queue.put((worker, None))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the leg
        queue.put((worker, f"{type(exc).__name__}: {exc}"))


def _append_rate(url: str, per_writer: int) -> tuple[float, int, bool]:
    Catalog(url).dispose()  # migrate once, outside the timing
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(WRITERS + 1), ctx.Queue()
    procs = [ctx.Process(target=_append_worker, args=(url, per_writer, w, barrier, queue))
             for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    barrier.wait()
    start = time.perf_counter()
    errors = [err for _ in procs for _w, err in [queue.get(timeout=600)] if err]
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join()
    if errors:
        raise RuntimeError(f"append workers failed: {errors[0]}")
    catalog = Catalog(url)
    report = verify_audit(catalog)
    catalog.dispose()
    total = WRITERS * per_writer
    bound = report.state is not None and report.state.rows == total
    return total / elapsed, report.count, report.ok and report.count == total and bound


def build_chain(catalog: Catalog, n: int, chunk: int = 50_000) -> None:
    """Bulk-insert ``n`` valid links (precomputed with the real chain functions) into ``catalog``.

    On SQLite the rows go through the driver's ``executemany`` with ``time`` in the text form the ORM
    stores; on PostgreSQL through ``COPY`` (typed values: ``timestamptz``, ``bytea``).
    """
    start = datetime(2025, 1, 1, tzinfo=UTC)
    prev = GENESIS_HASH
    seq = 0
    sqlite = catalog.backend == "sqlite"
    columns = "seq, time, actor, action, subject, payload, prev_hash, hash"
    with catalog.engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        while seq < n:
            rows: list[tuple[Any, ...]] = []
            for _ in range(min(chunk, n - seq)):
                seq += 1
                when = start + timedelta(milliseconds=seq)
                text = format_time(when)
                actor, subject = f"user{seq % 7}", f"model:credit-scorer@{seq % 13 + 1}"
                payload = canonical_json({"action": "model_version.evaluate", "actor": actor,
                                          "data": {"i": seq, "status": "PASS", "score": 0.8125},
                                          "subject": subject, "time": text})
                digest = link_hash(seq, prev, payload)
                stored = f"{text[:10]} {text[11:26]}" if sqlite else when
                rows.append((seq, stored, actor, "model_version.evaluate", subject, payload, prev, digest))
                prev = digest
            if sqlite:
                marks = ", ".join("?" * 8)
                cursor.executemany(f"INSERT INTO audit_event ({columns}) VALUES ({marks})", rows)
            else:
                with cursor.copy(f"COPY audit_event ({columns}) FROM STDIN") as copy:
                    for item in rows:
                        copy.write_row(item)


def build_bound_chain(catalog: Catalog, n: int, chunk: int = 50_000) -> None:
    """Append ``n`` events after the current head, each binding one new ``job`` row it "wrote"
    (rows bulk-inserted, read back typed, digested with the real :func:`row_digest`)."""
    table = state_table("job")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    sqlite = catalog.backend == "sqlite"
    columns = "seq, time, actor, action, subject, payload, prev_hash, hash"
    with catalog.engine.begin() as conn:
        head = conn.execute(sa.text("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")).first()
        seq, prev = (0, GENESIS_HASH) if head is None else (int(head[0]), str(head[1]))
        first_id = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()) + 1
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        done = 0
        while done < n:
            size = min(chunk, n - done)
            ids = range(first_id + done, first_id + done + size)
            conn.execute(sa.insert(table), [{"id": i, "namespace": "bench", "name": f"job-{i}", "kind": "task",
                                             "created_at": start + timedelta(milliseconds=i)} for i in ids])
            rows = {int(r["id"]): dict(r) for r in conn.execute(
                sa.select(table).where(table.c.id >= ids[0], table.c.id <= ids[-1])).mappings()}
            events: list[tuple[Any, ...]] = []
            for i in ids:
                seq += 1
                when = start + timedelta(milliseconds=seq)
                text = format_time(when)
                payload = canonical_json({"action": "job.create", "actor": "bench", "data": {"i": i},
                                          "state": {"job": {str(i): row_digest("job", rows[i])}},
                                          "subject": f"job:{i}", "time": text})
                digest = link_hash(seq, prev, payload)
                stored = f"{text[:10]} {text[11:26]}" if sqlite else when
                events.append((seq, stored, "bench", "job.create", f"job:{i}", payload, prev, digest))
                prev = digest
            if sqlite:
                cursor.executemany(f"INSERT INTO audit_event ({columns}) VALUES ({', '.join('?' * 8)})", events)
            else:
                with cursor.copy(f"COPY audit_event ({columns}) FROM STDIN") as copy:
                    for item in events:
                        copy.write_row(item)
            done += size
        if not sqlite:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('job', 'id'), (SELECT max(id) FROM job))")


def _verify_time(url: str, n: int) -> tuple[float, bool]:
    """Build ``n`` bound events at ``url``, then time ``verify_audit`` (chain and state) end to end."""
    catalog = Catalog(url)
    build_bound_chain(catalog, n)
    catalog.dispose()
    catalog = Catalog(url)
    start = time.perf_counter()
    report = verify_audit(catalog)
    elapsed = time.perf_counter() - start
    catalog.dispose()
    return elapsed, report.ok and report.count == n and report.state is not None and report.state.rows == n


def _gate_times(url: str, n: int) -> dict[str, float]:
    """Milliseconds :func:`require_bound` takes for 30 rows on ``n`` bound events, by tail length."""
    out: dict[str, float] = {}
    catalog = Catalog(url)
    tails = (0, ADVANCE_AFTER // 2, ADVANCE_AFTER)
    build_bound_chain(catalog, n - sum(tails))
    start = time.perf_counter()
    advance_snapshot(catalog, "bench", rebuild=True)
    out["rebuild"] = (time.perf_counter() - start) * 1000
    rng = random.Random(7)
    for index, tail in enumerate(tails):
        if tail:
            build_bound_chain(catalog, tail - tails[index - 1] if index else tail)
        with catalog.read() as session:
            top = int(session.execute(sa.text("SELECT max(id) FROM job")).scalar_one())
        samples = []
        for _ in range(15):
            wanted = {"job": rng.sample(range(1, top + 1), 30)}
            began = time.perf_counter()
            require_bound(catalog, wanted, actor="bench")
            samples.append((time.perf_counter() - began) * 1000)
        out[f"tail {tail}"] = statistics.median(samples)
    build_bound_chain(catalog, 1)  # one past the limit: the next gate folds the tail first
    began = time.perf_counter()
    require_bound(catalog, {"job": [1, 2, 3]}, actor="bench")
    out["fold"] = (time.perf_counter() - began) * 1000
    catalog.dispose()
    return out


def _gate_rows(backend: str, n: int, times: dict[str, float]) -> list[Result]:
    worst = max(v for k, v in times.items() if k.startswith("tail"))
    detail = ", ".join(f"{k} {v:.1f} ms" for k, v in times.items() if k.startswith("tail"))
    return [Result(
        name=f"gate: bound-state check, 30 rows, {n // 1000}k events, {backend}", measured=worst, unit="ms",
        target=50.0,
        note=f"worst of tails 0/{ADVANCE_AFTER // 2:,}/{ADVANCE_AFTER:,} (median of 15 each): {detail}; folding "
             f"{ADVANCE_AFTER + 1:,} events into the snapshot {times['fold']:.0f} ms once per "
             f"{ADVANCE_AFTER:,} events; cold first snapshot "
             f"{times['rebuild'] / 1000:.1f} s")]


def _verify_row(backend: str, n: int, seconds: float, intact: bool) -> Result:
    scaled = seconds * (1_000_000 / n)
    return Result(
        name=f"audit verify with state replay, 1M events, {backend}", measured=scaled, unit="s", target=20.0,
        note=(f"measured {seconds:.2f} s on {n:,} events, each binding one row" +
              (", extrapolated linearly to 1M" if n != 1_000_000 else "") +
              f"; chain and state {'intact' if intact else 'BROKEN'}"))


def _pg_database(base: str) -> tuple[str, str]:
    name = f"govbench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return name, make_url(base).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(base: str, name: str) -> None:
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def run(quick: bool = False) -> list[Result]:
    results: list[Result] = []
    per_writer = 60 if quick else 250
    with tempfile.TemporaryDirectory() as tmp:
        rate, count, intact = _append_rate(f"sqlite:///{Path(tmp) / 'append.db'}", per_writer)
    results.append(Result(
        name="audit append, 8 writer processes, SQLite file", measured=rate, unit="appends/s",
        target=1500, higher_is_better=True,
        note=f"{count} events, seq contiguous, chain and state {'intact' if intact else 'BROKEN'}; "
             "one transaction per event, each binding the row it wrote"))

    base = os.environ.get("GOVERNANCE_TEST_POSTGRES_URL")
    if base:
        name, url = _pg_database(base)
        try:
            rate, count, intact = _append_rate(url, per_writer)
        finally:
            _drop_pg_database(base, name)
        results.append(Result(
            name="audit append, 8 writer processes, PostgreSQL", measured=rate, unit="appends/s",
            target=1500, higher_is_better=True,
            note=f"{count} events, chain and state {'intact' if intact else 'BROKEN'}; advisory-lock serialised"))
    else:
        results.append(Result(name="audit append, 8 writer processes, PostgreSQL", measured=0.0,
                              unit="appends/s", target=None, higher_is_better=True,
                              note="skipped: set GOVERNANCE_TEST_POSTGRES_URL to run the PostgreSQL leg"))

    with tempfile.TemporaryDirectory() as tmp:
        results.extend(_gate_rows("SQLite file", 100_000, _gate_times(f"sqlite:///{Path(tmp) / 'gate.db'}", 100_000)))
    if base:
        name, url = _pg_database(base)
        try:
            results.extend(_gate_rows("PostgreSQL", 100_000, _gate_times(url, 100_000)))
        finally:
            _drop_pg_database(base, name)

    n = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        seconds, intact = _verify_time(f"sqlite:///{Path(tmp) / 'verify.db'}", n)
    results.append(_verify_row("SQLite file", n, seconds, intact))
    if base:
        name, url = _pg_database(base)
        try:
            seconds, intact = _verify_time(url, n)
        finally:
            _drop_pg_database(base, name)
        results.append(_verify_row("PostgreSQL", n, seconds, intact))
    else:
        results.append(Result(name="audit verify, 1M events, PostgreSQL", measured=0.0, unit="s", target=None,
                              note="skipped: set GOVERNANCE_TEST_POSTGRES_URL to run the PostgreSQL leg"))
    return results


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    for result in run(quick=quick):
        met = {True: "met", False: "MISSED", None: "-"}[result.met]
        print(f"{result.name:55s} {result.measured:12.2f} {result.unit:10s} target {result.target} "
              f"[{met}]  {result.note}")


if __name__ == "__main__":
    main()
