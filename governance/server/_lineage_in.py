"""``POST /api/v1/lineage``: events as openlineage-python's ``HttpTransport`` sends them, into the catalog
through the same import as ``gov ingest openlineage`` (:func:`governance.openlineage.ingest_openlineage`).

Concurrent requests are group-committed: one writer thread takes every request waiting in its queue,
writes their events as one directory of NDJSON files (one file per request, one line per event, in
arrival order) and imports that directory in one call, so 8 clients cost a few transactions, not one
each.  Each request then gets its own answer: 201 when its events were imported (or already were:
ingest is idempotent), 400 naming the JSON path of each event that was refused.  Every event is
audited by the import, with the caller's identity as the actor.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from governance.catalog import Catalog
from governance.errors import GovernanceError, InputError

__all__ = ["EventProblem", "LineageWriter", "parse_events", "problems_of"]

_PATH = re.compile(r"^([A-Za-z_][\w]*(?:\[\d+\])?(?:\.[A-Za-z_][\w]*(?:\[\d+\])?)*): ")
_MAX_BATCH = 2000


@dataclass(frozen=True)
class EventProblem:
    """One refused event: its JSON path in the request body and why."""

    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def _join(prefix: str, reason: str) -> EventProblem:
    match = _PATH.match(reason)
    if match is None:
        return EventProblem(prefix or "$", reason)
    inner = match.group(1)
    return EventProblem(f"{prefix}.{inner}" if prefix else f"$.{inner}", reason[match.end():])


def parse_events(body: bytes) -> tuple[list[str], list[EventProblem]]:
    """Split a body (one event object, or a JSON array of them) into one-line JSON texts.

    Returns the texts and the problems found before import (not JSON, not an object).
    """
    try:
        doc = json.loads(body)
    except UnicodeDecodeError:
        return [], [EventProblem("$", "the body is not UTF-8 text; expected a JSON OpenLineage event")]
    except json.JSONDecodeError as exc:
        return [], [EventProblem("$", f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")]
    items = doc if isinstance(doc, list) else [doc]
    if isinstance(doc, list) and not doc:
        return [], [EventProblem("$", "an empty array; expected at least one event")]
    texts: list[str] = []
    problems: list[EventProblem] = []
    for index, item in enumerate(items):
        where = f"$[{index}]" if isinstance(doc, list) else "$"
        if not isinstance(item, dict):
            problems.append(EventProblem(where, "expected a JSON object (an OpenLineage RunEvent)"))
            continue
        texts.append(json.dumps(item, separators=(",", ":"), ensure_ascii=False))
    return texts, problems


@dataclass
class _Job:
    actor: str
    texts: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    refused: list[tuple[int, str]] = field(default_factory=list)
    imported: int = 0
    error: str | None = None


class LineageWriter:
    """The one writer thread of a server: :meth:`submit` blocks until the events are committed."""

    def __init__(self, catalog: Catalog, *, max_batch: int = _MAX_BATCH) -> None:
        self.catalog = catalog
        self.max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="governance-lineage-writer", daemon=True)
                self._thread.start()

    def submit(self, actor: str, texts: list[str], timeout: float = 120.0) -> _Job:
        """Import ``texts`` as ``actor``; returns the job with its counts and refused events."""
        self._ensure_started()
        job = _Job(actor, texts)
        self._queue.put(job)
        if not job.done.wait(timeout):
            job.error = "the catalog did not commit the events in time; retry"
        return job

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            count = len(first.texts)
            while count < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
                count += len(nxt.texts)
            by_actor: dict[str, list[_Job]] = {}
            for job in jobs:
                by_actor.setdefault(job.actor, []).append(job)
            for actor, group in by_actor.items():
                self._import(actor, group)

    def _import(self, actor: str, jobs: list[_Job]) -> None:
        folder = Path(tempfile.mkdtemp(prefix="http-post-api-v1-lineage-"))
        try:
            names = {}
            for number, job in enumerate(jobs):
                name = f"request-{number:06d}.json"
                names[name] = job
                (folder / name).write_text("\n".join(job.texts) + "\n", encoding="utf-8")
            from governance.openlineage import ingest_openlineage

            report = ingest_openlineage(self.catalog, folder, actor)
            for location, reason in report.invalid:
                file_part, _, line = location.rpartition(":")
                owner = names.get(Path(file_part).name)
                if owner is not None and line.isdigit():
                    owner.refused.append((int(line) - 1, reason))
            for job in jobs:
                job.imported = len(job.texts) - len(job.refused)
        except (GovernanceError, OSError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            for job in jobs:
                job.error = message if not isinstance(exc, InputError) else f"refused: {message}"
        except Exception as exc:  # noqa: BLE001 - the writer thread must answer every waiting request
            for job in jobs:
                job.error = f"internal error: {type(exc).__name__}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            for job in jobs:
                job.done.set()


def problems_of(job: _Job, batch: bool) -> list[EventProblem]:
    """The refused events of a job as JSON paths of the request body."""
    return [_join(f"$[{index}]" if batch else "", reason) for index, reason in sorted(job.refused)]
