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


def test_checkpoints_run_in_the_background_every_so_many_commits(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    catalog = Catalog(f"sqlite:///{db}")
    try:
        with catalog.engine.connect() as conn:  # the connections' own checkpoints are only a backstop
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == BACKSTOP_PAGES
        wal = catalog._wal
        assert wal is not None
        for i in range(EVERY_COMMITS - 1):
            _commit(catalog, i)
        time.sleep(0.2)
        assert wal.checkpoints == 0  # nothing before the EVERY_COMMITS-th commit
        _commit(catalog, EVERY_COMMITS)
        deadline = time.monotonic() + 10
        while wal.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wal.checkpoints >= 1
        # the database file itself now holds the rows: readable with the WAL set aside
        assert _rows_in_database_file(db) >= EVERY_COMMITS - 1
        assert verify_audit(catalog).ok
    finally:
        catalog.dispose()
    assert wal._thread is None or not wal._thread.is_alive()


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
        assert 1 <= catalog._wal.checkpoints <= total // EVERY_COMMITS
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


def test_memory_and_postgres_catalogs_have_no_checkpointer() -> None:
    catalog = Catalog("sqlite:///:memory:")
    try:
        assert catalog._wal is None and catalog.sqlite_path is None
        _commit(catalog, 1)
    finally:
        catalog.dispose()
