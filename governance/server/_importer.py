"""The lineage inbox's importer: reads the journal (:mod:`governance.server._journal`) in order and
imports its events through :func:`governance.openlineage.ingest_openlineage`, up to
:data:`IMPORT_BATCH` events per round, one transaction per actor in the round.

It runs in its own process (``python -m governance.server._importer``, started by the server, which
writes the catalog URL and settings to its stdin), so importing does not compete with answering
requests for the interpreter lock; for an in-memory catalog, which another process cannot open, it
runs as a thread of the server.  It stops when its stdin says ``drain`` (after the journal is
imported, or when told ``stop``) or closes (the server is gone: after the current round).

Failures: while the catalog cannot be written (a lock held past its timeout, the database down) it
retries the round with a growing pause, and the state file says so.  Any other failure is narrowed
down by halves to the events that cause it; those are refused (``refused.ndjson``, logged), the
others imported.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from governance.catalog import Catalog
from governance.errors import CatalogError
from governance.server._journal import (
    REFUSED_FILE,
    Position,
    Record,
    read_records,
    read_state,
    segment_name,
    segments,
    state_position,
    write_state,
)

__all__ = ["IMPORT_BATCH", "Importer", "main"]

IMPORT_BATCH = 2000
_MAX_PAUSE = 30.0
_IDLE_POLL = 0.02
_TRANSIENT = (CatalogError, OperationalError, OSError)

log = logging.getLogger("governance.server.inbox")


def iso(when: float | None) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


class _Stopped(Exception):
    """Told to stop while the catalog is unavailable: the rest stays in the journal."""


class Importer:
    """Imports a journal directory into ``catalog``.  :meth:`run` returns when ``stop`` is set, or when
    ``drain`` is set and nothing is left to import."""

    def __init__(self, catalog: Catalog, directory: Path, *, import_batch: int = IMPORT_BATCH,
                 pause_gc: bool = False) -> None:
        """``pause_gc``: the importer is the process's only work (``main``), so batches are imported
        with the garbage collector paused (never in a server's thread: it would pause the server's)."""
        self.catalog = catalog
        self.directory = directory
        self.import_batch = import_batch
        self.pause_gc = pause_gc
        self.stop = threading.Event()
        self.drain = threading.Event()
        self.state: dict[str, Any] = {}

    def run(self) -> None:
        lock_fd = os.open(self.directory / "IMPORTER.LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:  # an importer of a server that was killed may still finish its round
                try:
                    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if self.stop.wait(0.1):
                        return
            self._run()
        finally:
            os.close(lock_fd)

    def _run(self) -> None:
        from governance.openlineage import ingest_openlineage

        self._ingest = ingest_openlineage
        old = read_state(self.directory)
        found = state_position(old)
        seq, position = found if found is not None else (0, Position(0, 0))
        self.state = {"seq": seq, "segment": position.segment, "offset": position.offset, "state": "idle",
                      "pid": os.getpid(), "imported_events": 0, "duplicate_events": 0,
                      "refused_events": int(old.get("refused_events", 0) or 0), "last_import_at": None,
                      "last_error": None, "since": iso(time.time())}
        self._save()
        while not self.stop.is_set():
            try:
                records, after = read_records(self.directory, position, self.import_batch)
                if not records and after == position:
                    if self.drain.is_set():
                        return
                    self.stop.wait(_IDLE_POLL)
                    continue
                self._import_records([r for r in records if r.seq > self.state["seq"]])
                if records:
                    self.state["seq"] = max(self.state["seq"], records[-1].seq)
                self.state.update(segment=after.segment, offset=after.offset, state="idle")
                self._save()
                if after.segment != position.segment:
                    for first in segments(self.directory):
                        if first < after.segment:
                            with contextlib.suppress(FileNotFoundError):
                                (self.directory / segment_name(first)).unlink()
                position = after
            except _Stopped:
                return
            except Exception as exc:  # the importer must outlive any one failure: log, wait, retry
                log.exception("lineage inbox %s: the importer failed; retrying", self.directory)
                self._note_error(exc, retrying=True)
                if self.stop.wait(1.0):
                    return

    def _save(self) -> None:
        write_state(self.directory, self.state)

    # -------------------------------------------------------------------------------- importing
    def _import_records(self, records: list[Record]) -> None:
        if not records:
            return
        self.state["state"] = "importing"
        groups: dict[str, list[tuple[Record, int, Any]]] = {}
        for record in records:
            if record.events is None:
                self._refuse(record, None, None, record.problem or "unreadable")
                continue
            for index, event in enumerate(record.events):
                groups.setdefault(record.actor, []).append((record, index, event))
        for actor, items in groups.items():
            self._import(actor, items)
        self.state["last_import_at"] = iso(time.time())
        if self.state["last_error"] is not None:
            self.state["last_error"]["retrying"] = False

    def _import(self, actor: str, items: list[tuple[Record, int, Any]]) -> None:
        pause = 0.1
        while True:
            try:
                report = self._ingest(self.catalog, [event for _, _, event in items], actor, batch_size=len(items),
                                      pause_gc=self.pause_gc)
                break
            except _TRANSIENT as exc:
                self._note_error(exc, retrying=True)
                if self.stop.wait(pause):
                    raise _Stopped from None
                pause = min(pause * 2, _MAX_PAUSE)
            except Exception as exc:  # noqa: BLE001 - narrowed down to the events that cause it, then refused
                self._note_error(exc, retrying=False)
                if len(items) == 1:
                    record, index, event = items[0]
                    self._refuse(record, index, event, f"the import failed: {_first_line(exc)}")
                    return
                half = len(items) // 2
                self._import(actor, items[:half])
                self._import(actor, items[half:])
                return
        for location, reason in report.invalid:
            record, index, event = items[int(location.rsplit("[", 1)[1].rstrip("]"))]
            self._refuse(record, index, event, reason)
        self.state["imported_events"] += report.imported
        self.state["duplicate_events"] += report.duplicates

    def _note_error(self, exc: BaseException, *, retrying: bool) -> None:
        message = _first_line(exc)
        last = self.state.get("last_error")
        if last is None or last["message"] != message or not last.get("retrying"):
            log.warning("lineage inbox %s: import %s: %s", self.directory,
                        "waits for the catalog" if retrying else "failed; narrowing it down", message)
        self.state["last_error"] = {"at": iso(time.time()), "message": message, "retrying": retrying}
        self.state["state"] = "retrying" if retrying else "importing"
        self._save()

    def _refuse(self, record: Record, index: int | None, event: Any, reason: str) -> None:
        path = record.path(index)
        entry = {"receipt": record.seq, "path": path, "reason": reason, "actor": record.actor,
                 "accepted_at": iso(record.at), "refused_at": iso(time.time())}
        line = json.dumps({**entry, "event": event}, default=str) + "\n"
        with (self.directory / REFUSED_FILE).open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.state["refused_events"] += 1
        log.warning("lineage inbox: refused event %s of receipt %d from %s: %s", path, record.seq, record.actor,
                    reason)


def _watch_stdin(importer: Importer) -> None:
    """``drain``: finish the journal and exit; ``stop`` or end of input (the server is gone): exit now."""
    for line in sys.stdin:
        command = line.strip()
        if command == "drain":
            importer.drain.set()
        elif command == "stop":
            break
    importer.stop.set()


def main() -> int:
    """``python -m governance.server._importer``: settings as one JSON line on stdin
    (``directory``, ``catalog_url``, ``busy_timeout``, ``import_batch``), then commands."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the server decides
    logging.basicConfig(level=logging.WARNING, format="gov serve importer: %(message)s")
    settings = json.loads(sys.stdin.readline())
    catalog = Catalog(settings["catalog_url"], busy_timeout=float(settings["busy_timeout"]))
    importer = Importer(catalog, Path(settings["directory"]), import_batch=int(settings["import_batch"]),
                        pause_gc=True)
    threading.Thread(target=_watch_stdin, args=(importer,), name="governance-importer-stdin", daemon=True).start()
    try:
        importer.run()
    finally:
        catalog.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
