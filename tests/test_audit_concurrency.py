"""8 processes x 250 appends at once on a SQLite file and on PostgreSQL: one contiguous, intact chain."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from governance.audit import audited, verify_audit
from governance.catalog import Catalog

WRITERS, APPENDS = 8, 250


def _writer(url: str, worker: int, barrier: Any, queue: Any) -> None:
    """Runs in a spawned process; reports any error to the parent instead of dying silently."""
    try:
        catalog = Catalog(url)
        barrier.wait(timeout=120)
        for i in range(APPENDS):
            with audited(catalog, f"writer-{worker}") as tx:
                tx.record("test.concurrent", f"writer:{worker}", {"worker": worker, "i": i})
        catalog.dispose()
        queue.put((worker, None))
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent
        queue.put((worker, f"{type(exc).__name__}: {exc}"))


def _run_writers(url: str) -> None:
    Catalog(url).dispose()  # migrate once before the race
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, w, barrier, queue)) for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    try:
        results = dict(queue.get(timeout=300) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=60)
    assert results == dict.fromkeys(range(WRITERS)), results
    assert all(proc.exitcode == 0 for proc in procs)

    catalog = Catalog(url)
    try:
        with catalog.engine.connect() as conn:
            seqs = [r[0] for r in conn.execute(sa.text("SELECT seq FROM audit_event ORDER BY seq"))]
            payloads = [json.loads(r[0]) for r in conn.execute(sa.text("SELECT payload FROM audit_event"))]
        report = verify_audit(catalog)
    finally:
        catalog.dispose()
    total = WRITERS * APPENDS
    assert seqs == list(range(1, total + 1))
    assert sorted((p["data"]["worker"], p["data"]["i"]) for p in payloads) == [
        (w, i) for w in range(WRITERS) for i in range(APPENDS)]
    assert report.ok, report.reason
    assert report.count == total


@pytest.mark.slow
def test_concurrent_appends_sqlite_file(tmp_path: Path) -> None:
    _run_writers(f"sqlite:///{tmp_path / 'catalog.db'}")


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_appends_postgresql(fresh_pg_url: str) -> None:
    _run_writers(fresh_pg_url)
