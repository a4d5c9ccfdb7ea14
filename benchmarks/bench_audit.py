"""Audit trail: appends/s with 8 writer processes (SQLite, PostgreSQL) and verify time for 1M events.

    python -m benchmarks.bench_audit [--quick]

Appends go through the real write path (``audited(...).record(...)``, one transaction per event) in
8 spawned processes that start together behind a barrier; the chain is verified afterwards.  The
PostgreSQL leg runs when ``GOVERNANCE_TEST_POSTGRES_URL`` is set (a fresh database is created and
dropped).  The verify leg builds a chain of precomputed links with bulk inserts (the hashing is the
real ``link_hash``; ``COPY`` on PostgreSQL), then times ``verify_audit`` end to end on a SQLite file
and on PostgreSQL; quick mode uses 100k events and extrapolates linearly (verification is one
streamed pass, so it is linear in events).
There is no peer: no comparable open tool keeps a verifiable hash-chained audit log.
"""

from __future__ import annotations

import multiprocessing as mp
import os
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
from governance.audit import audited, canonical_json, link_hash, verify_audit
from governance.audit._chain import GENESIS_HASH, format_time
from governance.catalog import Catalog

__all__ = ["build_chain", "run"]

WRITERS = 8


def _append_worker(url: str, n: int, worker: int, barrier: Any, queue: Any) -> None:
    try:
        catalog = Catalog(url)
        barrier.wait()
        for i in range(n):
            with audited(catalog, f"writer-{worker}") as tx:
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
    return total / elapsed, report.count, report.ok and report.count == total


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


def _verify_time(url: str, n: int) -> tuple[float, bool]:
    """Build an ``n``-link chain at ``url``, then time ``verify_audit`` end to end (fresh engine)."""
    catalog = Catalog(url)
    build_chain(catalog, n)
    catalog.dispose()
    catalog = Catalog(url)
    start = time.perf_counter()
    report = verify_audit(catalog)
    elapsed = time.perf_counter() - start
    catalog.dispose()
    return elapsed, report.ok and report.count == n


def _verify_row(backend: str, n: int, seconds: float, intact: bool) -> Result:
    scaled = seconds * (1_000_000 / n)
    return Result(
        name=f"audit verify, 1M events, {backend}", measured=scaled, unit="s", target=10.0,
        note=(f"measured {seconds:.2f} s on {n:,} events" + (", extrapolated linearly to 1M" if n != 1_000_000
              else "") + f"; chain {'intact' if intact else 'BROKEN'}"))


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
        target=500, higher_is_better=True,
        note=f"{count} events, seq contiguous and chain {'intact' if intact else 'BROKEN'}; "
             "one transaction per event"))

    base = os.environ.get("GOVERNANCE_TEST_POSTGRES_URL")
    if base:
        name, url = _pg_database(base)
        try:
            rate, count, intact = _append_rate(url, per_writer)
        finally:
            _drop_pg_database(base, name)
        results.append(Result(
            name="audit append, 8 writer processes, PostgreSQL", measured=rate, unit="appends/s",
            target=500, higher_is_better=True,
            note=f"{count} events, chain {'intact' if intact else 'BROKEN'}; advisory-lock serialised"))
    else:
        results.append(Result(name="audit append, 8 writer processes, PostgreSQL", measured=0.0,
                              unit="appends/s", target=None, higher_is_better=True,
                              note="skipped: set GOVERNANCE_TEST_POSTGRES_URL to run the PostgreSQL leg"))

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
