"""Reading OpenLineage events for ingest: files in the shapes producers write, and validation.

Sources: an NDJSON file (one event per line), a JSON array file (Marquez's ``metadata.json``), a file
holding one document or several concatenated pretty-printed documents, a directory of such files
(``*.json``, ``*.ndjson``, ``*.jsonl``, read in name order), or events already parsed (a mapping or
an iterable of mappings, e.g. the body of ``POST /api/v1/lineage``).  Each event gets a location:
``FILE:LINE`` (NDJSON, documents), ``FILE[INDEX]`` (arrays) or ``SOURCE[INDEX]`` (parsed events).

Validation sorts an event into a RunEvent (it has ``run`` or ``eventType``), a DatasetEvent
(``dataset``) or a JobEvent (``job`` without ``run``), as spec 2.0 defines them, and every error names
the JSON path of what is wrong (``inputs[0].namespace: expected a non-empty string``).  A ``runId``
must be a UUID (spec: ``format: uuid``); it is kept in its canonical lower-case form.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from governance.domain import as_utc
from governance.errors import InputError

__all__ = ["MAX_EVENT_BYTES", "EventSource", "ParsedEvent", "parse_time", "read_source", "validate"]

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The largest event (one NDJSON line, or one pretty-printed document) that is parsed.

A longer line is reported as invalid and skipped without being held in memory (it is read in 1 MiB
chunks up to its newline).  16 MiB leaves room for Spark events with wide schemas and column lineage
(typically well under 1 MiB) while bounding what one hostile line can cost.  A JSON array file is
parsed whole (its size is bounded by :data:`MAX_ARRAY_BYTES`)."""

MAX_ARRAY_BYTES = 2 * 1024 * 1024 * 1024
_CHUNK = 1024 * 1024
_SUFFIXES = (".json", ".ndjson", ".jsonl")
_EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")

EventSource = str | Path | Mapping[str, Any] | Iterable[Mapping[str, Any]]
"""What :func:`~governance.openlineage.ingest_openlineage` reads: a path, or parsed events."""


@dataclass(frozen=True)
class ParsedEvent:
    """One valid event.  ``kind`` is ``run``, ``dataset`` or ``job``; ``run_id`` is the canonical
    UUID of a RunEvent (None otherwise)."""

    location: str
    kind: str
    doc: dict[str, Any]
    event_type: str
    event_time: datetime
    raw_time: str
    run_id: str | None


# ------------------------------------------------------------------------------------------ reading
def read_source(source: EventSource) -> Iterator[tuple[str, Any, str | None]]:
    """``(location, parsed JSON or None, problem or None)`` per event of ``source``, streamed."""
    if isinstance(source, Mapping):
        yield "event", source, None
        return
    if not isinstance(source, str | Path):
        for index, item in enumerate(source):
            yield f"events[{index}]", item, None
        return
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise InputError(f"{path}: no such file or directory; expected an NDJSON or JSON file of OpenLineage "
                         "events, or a directory of them")
    for file in files:
        try:
            yield from _read_file(file)
        except OSError as exc:
            raise InputError(f"{file}: cannot read: {exc.strerror or exc}") from exc


def _first_byte(file: Path) -> bytes:
    with file.open("rb") as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[:1]
    return b""


def _read_file(file: Path) -> Iterator[tuple[str, Any, str | None]]:
    first = _first_byte(file)
    if first == b"":
        return
    with file.open("rb") as handle:
        head = handle.readline(MAX_EVENT_BYTES + 1)
        more = any(line.strip() for line in iter(lambda: handle.readline(_CHUNK), b""))
    if first == b"[" and not (more and _is_json(head)):
        yield from _read_array(file)  # one array (an array on each line is NDJSON, each line refused)
        return
    if first == b"{" and not _is_object(head):
        yield from _read_documents(file)  # one or more pretty-printed documents
        return
    yield from _read_lines(file)


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _read_array(file: Path) -> Iterator[tuple[str, Any, str | None]]:
    if file.stat().st_size > MAX_ARRAY_BYTES:
        yield f"{file}", None, f"a JSON array larger than {MAX_ARRAY_BYTES // 2**30} GiB; write NDJSON instead"
        return
    text, problem = _decoded(file.read_bytes())
    if text is None:
        yield f"{file}", None, problem
        return
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        yield f"{file}:{exc.lineno}", None, f"not valid JSON ({exc.msg} at column {exc.colno})"
        return
    for index, item in enumerate(items):
        yield f"{file}[{index}]", item, None


def _read_documents(file: Path) -> Iterator[tuple[str, Any, str | None]]:
    if file.stat().st_size > MAX_ARRAY_BYTES:
        yield f"{file}", None, "a JSON document stream this large must be NDJSON (one event per line)"
        return
    text, problem = _decoded(file.read_bytes())
    if text is None:
        yield f"{file}", None, problem
        return
    decoder = json.JSONDecoder()
    position, line = 0, 1
    while True:
        start = position
        while start < len(text) and text[start].isspace():
            start += 1
        if start >= len(text):
            return
        line += text.count("\n", position, start)
        try:
            doc, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            yield f"{file}:{exc.lineno}", None, f"not valid JSON ({exc.msg} at column {exc.colno})"
            return
        yield f"{file}:{line}", doc, None
        line += text.count("\n", start, end)
        position = end


def _read_lines(file: Path) -> Iterator[tuple[str, Any, str | None]]:
    with file.open("rb") as handle:
        number = 0
        while line := handle.readline(MAX_EVENT_BYTES + 1):
            number += 1
            location = f"{file}:{number}"
            if len(line) > MAX_EVENT_BYTES and not line.endswith(b"\n"):
                while (rest := handle.readline(_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                yield location, None, (f"line longer than {MAX_EVENT_BYTES // (1024 * 1024)} MiB "
                                       "(MAX_EVENT_BYTES); skipped")
                continue
            if not line.strip():
                continue
            text, problem = _decoded(line)
            if text is None:
                yield location, None, problem
                return  # a binary file: the first bad line says so, the rest is noise
            try:
                yield location, json.loads(text), None
            except json.JSONDecodeError as exc:
                yield location, None, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _decoded(raw: bytes) -> tuple[str | None, str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start}); expected JSON OpenLineage events"
    if "\x00" in text:
        return None, "contains NUL bytes (a binary file?); expected JSON OpenLineage events"
    return text, None


# ---------------------------------------------------------------------------------------- validation
def parse_time(value: Any, path: str = "eventTime") -> datetime:
    """An ISO 8601 date-time as an aware UTC datetime (a naive one is taken as UTC)."""
    if not isinstance(value, str) or "t" not in value.lower():
        raise ValueError(f"{path}: expected an ISO 8601 date-time, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{path}: expected an ISO 8601 date-time, got {value!r}") from None
    return as_utc(parsed)


def _string(node: Any, path: str) -> str:
    if not isinstance(node, str) or not node:
        raise ValueError(f"{path}: expected a non-empty string")
    return node


def _object(node: Any, path: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise ValueError(f"{path}: expected an object")
    return node


def _optional_object(parent: dict[str, Any], key: str, path: str) -> None:
    if key in parent and parent[key] is not None and not isinstance(parent[key], dict):
        raise ValueError(f"{path}.{key}: expected an object")


def canonical_uuid(value: Any, path: str) -> str:
    """``value`` as a canonical UUID string, or a ValueError naming ``path``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path}: expected a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{path}: expected a UUID, got {value[:80]!r}") from None


def _datasets(doc: dict[str, Any], side: str) -> None:
    items = doc.get(side)
    if items is None:
        return
    if not isinstance(items, list):
        raise ValueError(f"{side}: expected a list of datasets")
    for index, item in enumerate(items):
        path = f"{side}[{index}]"
        _dataset(item, path)
        _optional_object(item, "inputFacets" if side == "inputs" else "outputFacets", path)


def _dataset(item: Any, path: str) -> None:
    body = _object(item, path)
    _string(body.get("namespace"), f"{path}.namespace")
    _string(body.get("name"), f"{path}.name")
    _optional_object(body, "facets", path)


def _job(doc: dict[str, Any]) -> None:
    job = _object(doc.get("job"), "job")
    _string(job.get("namespace"), "job.namespace")
    _string(job.get("name"), "job.name")
    _optional_object(job, "facets", "job")


def validate(location: str, doc: Any) -> ParsedEvent:
    """The event ``doc`` checked and classified; a ValueError names the JSON path of the problem."""
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object (an OpenLineage RunEvent, DatasetEvent or JobEvent)")
    if "eventType" in doc and "run" not in doc:
        raise ValueError("run: required in a RunEvent (this event has `eventType`)")
    event_time = parse_time(doc.get("eventTime"))
    raw_time = str(doc["eventTime"])
    _string(doc.get("producer"), "producer")
    if "run" in doc:
        event_type = doc.get("eventType", "OTHER")
        if event_type not in _EVENT_TYPES:
            raise ValueError(f"eventType: expected one of {', '.join(_EVENT_TYPES)}, got {event_type!r}")
        run = _object(doc["run"], "run")
        run_id = canonical_uuid(run.get("runId"), "run.runId")
        _optional_object(run, "facets", "run")
        parent = (run.get("facets") or {}).get("parent")
        if parent is not None:
            body = _object(parent, "run.facets.parent")
            canonical_uuid(_object(body.get("run"), "run.facets.parent.run").get("runId"),
                           "run.facets.parent.run.runId")
            parent_job = _object(body.get("job"), "run.facets.parent.job")
            _string(parent_job.get("namespace"), "run.facets.parent.job.namespace")
            _string(parent_job.get("name"), "run.facets.parent.job.name")
        _job(doc)
        _datasets(doc, "inputs")
        _datasets(doc, "outputs")
        return ParsedEvent(location, "run", doc, str(event_type), event_time, raw_time, run_id)
    if "dataset" in doc:
        _dataset(doc["dataset"], "dataset")
        return ParsedEvent(location, "dataset", doc, "DATASET", event_time, raw_time, None)
    if "job" in doc:
        _job(doc)
        _datasets(doc, "inputs")
        _datasets(doc, "outputs")
        return ParsedEvent(location, "job", doc, "JOB", event_time, raw_time, None)
    raise ValueError("not an OpenLineage event: expected `run` and `job` (RunEvent), `dataset` (DatasetEvent) "
                     "or `job` (JobEvent)")
