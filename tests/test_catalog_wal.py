"""Background WAL checkpoints of a SQLite file catalog: off the write path, bounded, never creating files."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa

from governance.audit import audited, verify_audit
from governance.catalog import Catalog
from governance.catalog._wal import BACKSTOP_PAGES, EVERY_COMMITS, WalCheckpointer


def _rows_in_database_file(db: Path) -> int:
    """audit_event rows in the database file itself, with the WAL set aside (what checkpoints copied)."""
    with sqlite3.connect(f"{db.as_uri()}?mode=ro&immutable=1", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM audit_event").fetchone()[0])


def _commit(catalog: Catalog, i: int) -> None:
    with audited(catalog, "t") as tx:
        tx.record("test.write", f"row:{i}", {"i": i, "pad": "x" * 2000})


def _wait_for(wal: WalCheckpointer, count: int) -> None:
    deadline = time.monotonic() + 10
    while wal.checkpoints < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_checkpoints_run_in_the_background_on_the_first_and_every_so_many_commits(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    catalog = Catalog(f"sqlite:///{db}")
    try:
        with catalog.engine.connect() as conn:  # the connections' own checkpoints are only a backstop
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == BACKSTOP_PAGES
        wal = catalog._wal
        assert wal is not None
        _commit(catalog, 0)  # the first commit: a short-lived process checkpoints what others left
        _wait_for(wal, 1)
        assert wal.checkpoints == 1
        for i in range(1, EVERY_COMMITS):
            _commit(catalog, i)
        time.sleep(0.2)
        assert wal.checkpoints == 1  # nothing more until the next EVERY_COMMITS-th commit
        _commit(catalog, EVERY_COMMITS)
        _wait_for(wal, 2)
        assert wal.checkpoints == 2
        # the database file itself now holds the rows: readable with the WAL set aside
        assert _rows_in_database_file(db) >= EVERY_COMMITS
        assert verify_audit(catalog).ok
        catalog.dispose()
        assert wal._thread is None or not wal._thread.is_alive()
        for i in range(EVERY_COMMITS):  # used again after dispose: checkpoints resume
            _commit(catalog, 100 + i)
        _wait_for(wal, 3)
        assert wal.checkpoints == 3
    finally:
        catalog.dispose()


def test_a_burst_of_commits_is_checkpointed_by_the_thread_not_by_the_commits(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    catalog = Catalog(f"sqlite:///{db}")
    total = 6 * EVERY_COMMITS
    try:
        assert catalog._wal is not None
        for i in range(total):
            _commit(catalog, i)
        catalog._wal.close()  # lets a checkpoint in progress finish
        # about one per EVERY_COMMITS commits (a wake-up during a running checkpoint is merged into it)
        assert 1 <= catalog._wal.checkpoints <= total // EVERY_COMMITS + 1
        # far below the backstop: none of the commits checkpointed by itself, yet the file has rows
        assert 0 < _rows_in_database_file(db) <= total
        assert catalog._wal.checkpoint()  # once idle, a last one copies everything
        assert _rows_in_database_file(db) == total
        with catalog.read() as session:
            assert session.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one() == total
    finally:
        catalog.dispose()


def test_a_checkpoint_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "gone.db"
    checkpointer = WalCheckpointer(
        lambda: sqlite3.connect(f"{missing.as_uri()}?mode=rw", uri=True, isolation_level=None)
    )
    assert checkpointer.checkpoint() is False
    assert not missing.exists()


def test_an_in_memory_catalog_has_no_checkpointer() -> None:
    catalog = Catalog("sqlite:///:memory:")
    try:
        assert catalog._wal is None and catalog.sqlite_path is None
        _commit(catalog, 1)
    finally:
        catalog.dispose()
