"""The lineage inbox: ``POST /api/v1/lineage`` answers ``201`` as soon as the request's events are
durable in the inbox's journal (:mod:`governance.server._journal`), and an importer
(:mod:`governance.server._importer`, its own process) brings them into the catalog through
:func:`governance.openlineage.ingest_openlineage`, thousands of events per transaction instead of one
transaction per request.

Requests are *group-committed*: while one group of requests is being written and ``fdatasync``-ed,
the next ones gather, so 8 clients cost a few syncs, not one each.

What happens to an accepted event:

* it is imported in arrival order (per actor), audited with the poster's identity as the actor;
  replaying it (after a crash between the import and the importer's state file) is harmless, because
  ingest is idempotent on ``(runId, eventType, eventTime)``; nothing accepted is lost when the server
  is killed: the next start imports the rest of the journal;
* while the catalog cannot be written (locked past its timeout, down), the importer retries with a
  growing pause, the events wait in the journal, and ``/healthz`` and ``GET /api/v1/lineage/inbox``
  show the backlog, its age and the last error; past ``max_inbox_bytes`` of backlog new requests get
  ``503`` with ``Retry-After`` instead of piling up;
* an event the import refuses (a ``runId`` already used by another job, a value the database rejects)
  is *refused*, never dropped: it is appended with the reason to ``refused.ndjson`` in the inbox,
  logged at WARNING, counted in the status, and listed under its receipt (the ``201`` answer's
  ``receipt``): ``GET /api/v1/lineage/inbox?receipt=N`` tells the client what became of its request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from governance.catalog import Catalog
from governance.server._importer import IMPORT_BATCH, Importer
from governance.server._journal import (
    REFUSED_FILE,
    Journal,
    Position,
    pending_heads,
    read_state,
    segment_name,
    segments,
    state_position,
)

__all__ = ["DEFAULT_MAX_PENDING_BYTES", "InboxFull", "LineageInbox"]

DEFAULT_MAX_PENDING_BYTES = 1024 * 1024 * 1024
_RECENT = 20

log = logging.getLogger("governance.server.inbox")


class InboxFull(Exception):
    """The backlog passed ``max_pending_bytes``: the client should retry later."""


class LineageInbox:
    """The journal, the group committer and the importer of one server.  :meth:`accept` is awaited per
    request; :meth:`start` and :meth:`close` bracket the server's life."""

    def __init__(self, catalog: Catalog, directory: Path, *, import_batch: int = IMPORT_BATCH,
                 max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
                 ready: Callable[[], object] | None = None, temporary: bool = False) -> None:
        self.catalog = catalog
        self.directory = directory
        self.import_batch = import_batch
        self.max_pending_bytes = max_pending_bytes
        self.temporary = temporary
        self._ready = ready
        self.journal = Journal(directory)
        self._lock = threading.Lock()
        self._waiting: deque[tuple[int, int, float]] = deque()  # (seq, events, accepted at) not yet imported
        self._pending_events = 0
        self._accepted = 0
        self._group: list[tuple[str, list[bytes], bool, asyncio.Future[int]]] = []
        self._flushing = False
        self._started = False
        self._closed = False
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._in_process: Importer | None = None
        self._backlog = 0
        self._backlog_checked = 0.0

    # ------------------------------------------------------------------------------------- life
    def start(self) -> None:
        """Open the journal (refusing a directory another server holds) and start the importer (once)."""
        if self._started:
            return
        self.journal.open(self.catalog.display_url)
        self._started = True
        if self.journal.dropped_tail:
            log.warning("lineage inbox %s: cut %d bytes of a write that a crash interrupted (never acknowledged)",
                        self.directory, self.journal.dropped_tail)
        found = state_position(read_state(self.directory))
        seq, position = found if found is not None else (0, None)
        listed = segments(self.directory)
        backlog = pending_heads(self.directory, position or Position(listed[0] if listed else 0, 0), seq)
        with self._lock:
            self._waiting.extend(backlog)
            self._pending_events += sum(h[1] for h in backlog)
        if backlog:
            log.warning("lineage inbox %s: %d accepted request(s), %d event(s), not imported yet; importing them",
                        self.directory, len(backlog), sum(h[1] for h in backlog))
        self._start_importer()

    def _start_importer(self) -> None:
        if self.catalog.sqlite_path is None and self.catalog.backend == "sqlite":  # in memory: only this process
            importer = Importer(self.catalog, self.directory, import_batch=self.import_batch)
            self._in_process = importer

            def run() -> None:
                if self._ready is not None:
                    self._ready()
                importer.run()

            self._thread = threading.Thread(target=run, name="governance-lineage-import", daemon=True)
            self._thread.start()
            return
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="governance-lineage-importer-watch", daemon=True)
        self._thread.start()

    def _spawn(self) -> None:
        self._process = subprocess.Popen(  # our own module; settings on stdin (the URL may hold a password)
            [sys.executable, "-m", "governance.server._importer"], stdin=subprocess.PIPE, close_fds=True)
        settings = {"directory": str(self.directory), "catalog_url": self.catalog.url,
                    "busy_timeout": self.catalog.busy_timeout, "import_batch": self.import_batch}
        self._command(json.dumps(settings))

    def _watch(self) -> None:
        """Start the importer again if it dies while the server runs (after a pause, logged)."""
        while not self._closed:
            process = self._process
            if process is None:
                return
            code = process.wait()
            if self._closed:
                return
            log.error("lineage inbox %s: the importer process exited (%s); starting it again in 2 s", self.directory,
                      code)
            time.sleep(2.0)
            if not self._closed:
                self._spawn()

    def _command(self, line: str) -> None:
        process = self._process
        if process is None or process.stdin is None:
            return
        try:
            process.stdin.write(line.encode() + b"\n")
            process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def close(self, drain_seconds: float = 20.0) -> None:
        """Stop accepting, let the importer catch up for up to ``drain_seconds``, then stop it; what is
        left stays in the journal for the next start."""
        if not self._started or self._closed:
            return
        self._closed = True
        self.journal.close()
        if self._process is not None:
            self._command("drain")
            process = self._process
            try:
                process.wait(timeout=drain_seconds)
            except subprocess.TimeoutExpired:
                self._command("stop")
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdin is not None:
                process.stdin.close()
        elif self._in_process is not None and self._thread is not None:
            self._in_process.drain.set()
            self._thread.join(timeout=drain_seconds)
            self._in_process.stop.set()
            self._thread.join(timeout=60)
        left = self.status(detail=False)["pending_requests"]
        if self.temporary:
            import shutil

            shutil.rmtree(self.directory, ignore_errors=True)
        elif left:
            log.warning("lineage inbox %s: %d accepted request(s) left to import at the next start", self.directory,
                        left)

    # -------------------------------------------------------------------------------- accepting
    async def accept(self, actor: str, texts: list[bytes], *, array: bool = True) -> int:
        """Journal one request's events (``array``: its body was a JSON array); returns its receipt once
        they are durable.  Raises
        :class:`InboxFull` past the backlog limit, :class:`~governance.server._journal.JournalError`
        when the events could not be stored."""
        if self.max_pending_bytes and self._backlog_bytes() > self.max_pending_bytes:
            raise InboxFull(f"the lineage inbox holds more than {self.max_pending_bytes} bytes not imported yet; "
                            "retry later")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._group.append((actor, texts, array, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """Write the gathered requests with one sync, as long as requests keep gathering meanwhile."""
        try:
            while self._group:
                group, self._group = self._group, []
                try:
                    heads = await anyio.to_thread.run_sync(self.journal.write, [(a, t, b) for a, t, b, _ in group])
                except Exception as exc:  # noqa: BLE001 - every waiting request gets the failure
                    for *_, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                with self._lock:
                    self._waiting.extend(heads)
                    count = sum(h[1] for h in heads)
                    self._pending_events += count
                    self._accepted += count
                for (*_, future), head in zip(group, heads, strict=True):
                    if not future.done():
                        future.set_result(head[0])
        finally:
            self._flushing = False

    def _backlog_bytes(self) -> int:
        """Bytes of the journal not imported yet, looked at twice a second at most."""
        now = time.monotonic()
        if now - self._backlog_checked > 0.5:
            self._backlog_checked = now
            found = state_position(read_state(self.directory))
            done = found[1] if found is not None else Position(0, 0)
            total = 0
            for first in segments(self.directory):
                if first >= done.segment:
                    try:
                        total += (self.directory / segment_name(first)).stat().st_size
                    except OSError:
                        continue
                    if first == done.segment:
                        total -= done.offset
            self._backlog = total
        return self._backlog

    # ----------------------------------------------------------------------------------- status
    def _importer_state(self) -> dict[str, Any]:
        state = read_state(self.directory)
        with self._lock:
            done = int(state.get("seq", 0) or 0)
            while self._waiting and self._waiting[0][0] <= done:
                self._pending_events -= self._waiting.popleft()[1]
        return state

    def status(self, *, detail: bool = True) -> dict[str, Any]:
        """The backlog (requests and events accepted, not imported yet), its age, the importer's counts
        and last error; with ``detail`` also the last refused events and where the inbox is."""
        state = self._importer_state()
        now = time.time()
        running = self._importer_alive()
        with self._lock:
            oldest = self._waiting[0][2] if self._waiting else None
            doc: dict[str, Any] = {
                "state": state.get("state", "starting") if running else "stopped",
                "pending_requests": len(self._waiting),
                "pending_events": self._pending_events,
                "lag_seconds": round(now - oldest, 3) if oldest is not None else 0.0,
                "last_receipt": self.journal.last_seq,
                "imported_receipt": int(state.get("seq", 0) or 0),
                "accepted_events": self._accepted,
                "imported_events": int(state.get("imported_events", 0) or 0),
                "duplicate_events": int(state.get("duplicate_events", 0) or 0),
                "refused_events": int(state.get("refused_events", 0) or 0),
                "last_import_at": state.get("last_import_at"),
                "last_error": state.get("last_error"),
            }
        if detail:
            doc["recent_refusals"] = self._refusals()[-_RECENT:]
            doc["directory"] = str(self.directory)
        elif isinstance(doc["last_error"], dict):  # public (/healthz): no error text
            doc["last_error"] = {"at": doc["last_error"].get("at"), "retrying": doc["last_error"].get("retrying")}
        return doc

    def _importer_alive(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self._thread is not None and self._thread.is_alive()

    def _refusals(self, receipt: int | None = None) -> list[dict[str, Any]]:
        found = []
        try:
            with (self.directory / REFUSED_FILE).open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        doc = json.loads(line)
                        entry = {k: doc[k] for k in ("receipt", "path", "reason", "actor", "accepted_at",
                                                     "refused_at")}
                    except (ValueError, KeyError, TypeError):
                        continue
                    if receipt is None or entry["receipt"] == receipt:
                        found.append(entry)
        except FileNotFoundError:
            pass
        return found

    def receipt(self, seq: int) -> dict[str, Any] | None:
        """What became of the request with receipt ``seq``: ``pending``, ``imported``, or ``refused``
        (some or all of its events: ``refused`` lists their paths and reasons)."""
        done = int(self._importer_state().get("seq", 0) or 0)
        if seq < 1 or seq > self.journal.last_seq:
            return None
        refused = [{"path": r["path"], "reason": r["reason"], "refused_at": r["refused_at"]}
                   for r in self._refusals(seq)]
        state = "pending" if seq > done else "refused" if refused else "imported"
        return {"receipt": seq, "state": state, "refused": refused}


