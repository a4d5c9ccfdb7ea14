"""Background WAL checkpoints for a SQLite file catalog.

In WAL mode SQLite copies the log back into the database file (a *checkpoint*) from inside whichever
commit pushes the log past ``wal_autocheckpoint`` pages: that one commit then pays for copying and
syncing a thousand pages, which showed up as 7-50 ms outliers among ~1 ms decorated steps.  Here the
write path only counts its commits; on its first and then every :data:`EVERY_COMMITS` commits (the
first one also serves short-lived processes, such as CLI calls, whose log others left) it wakes a
daemon thread that
runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a connection of its own (SQLite releases the GIL while it
works, so the pipeline keeps running).  A passive checkpoint never waits for readers or writers.
SQLite reuses the log from its start when a write begins after a checkpoint that reached its end;
while steps commit back to back, a checkpoint always overlaps a transaction that adds to the log, so
the file then grows until the backstop below, whose checkpoint has little left to copy.  (Having the
thread take the writer lock for a ``RESTART`` checkpoint kept the file small but measured worse at
the 90th and 99th percentile of step latency.)

Connections still checkpoint by themselves past :data:`BACKSTOP_PAGES` (set by the engine's connect
hook), so the log stays bounded even if the thread cannot keep up or is not running.  The thread
exits after :data:`IDLE_SECONDS` without commits and is started again by the next one.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["BACKSTOP_PAGES", "EVERY_COMMITS", "IDLE_SECONDS", "WalCheckpointer"]

EVERY_COMMITS = 32
BACKSTOP_PAGES = 4000
IDLE_SECONDS = 30.0

_LOG = logging.getLogger("governance.catalog")


class WalCheckpointer:
    """Checkpoints one SQLite database from a daemon thread; :meth:`committed` is the only call on the
    write path (a counter and, every :data:`EVERY_COMMITS` commits, an event)."""

    def __init__(self, connect: Any, *, every: int = EVERY_COMMITS, idle: float = IDLE_SECONDS) -> None:
        self._connect = connect  # () -> a DBAPI connection in autocommit mode (returned with .close())
        self._every = every
        self._idle = idle
        self._commits = 0
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.checkpoints = 0  # completed checkpoints (for tests and diagnostics)

    def committed(self) -> None:
        """Count one write commit; on the first and every ``every``-th, have the log checkpointed.
        Never raises: the commit it follows has succeeded (the count is approximate across threads)."""
        self._commits += 1
        if self._commits % self._every != 1 % self._every:
            return
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            return
        try:
            with self._lock:
                thread = self._thread
                if thread is None or not thread.is_alive():
                    self._closed = False
                    self._thread = threading.Thread(target=self._run, name="governance-wal-checkpoint", daemon=True)
                    self._thread.start()
        except RuntimeError as exc:  # no new threads at interpreter shutdown: the backstop remains
            _LOG.debug("governance: background WAL checkpoint not started: %s", exc)

    def _run(self) -> None:
        while not self._closed:
            if not self._wake.wait(self._idle):
                with self._lock:  # a wake-up that raced with the idle timeout is served, not lost
                    if not self._wake.is_set():
                        self._thread = None
                        return
            self._wake.clear()
            if self._closed:
                return
            self.checkpoint()

    def checkpoint(self) -> bool:
        """One passive checkpoint now; False (logged) when it could not run."""
        try:
            conn = self._connect()
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001 - best effort: the connections' own checkpoints remain
            _LOG.debug("governance: background WAL checkpoint failed: %s", exc)
            return False
        self.checkpoints += 1
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (waits up to ``timeout`` for a checkpoint in progress); a later commit
        starts it again, as a disposed engine opens new connections when used again."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
