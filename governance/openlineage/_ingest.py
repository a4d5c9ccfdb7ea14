"""Import OpenLineage ``RunEvent``s from other producers (Airflow, Spark, dbt...) into the catalog.

Input: an NDJSON file (one event per line; blank lines ignored) or a directory of ``*.json`` files
(each one event, or NDJSON), read in name order.  Each event becomes:

* a ``Job`` (namespace, name; kind ``other``), and a ``Run`` keyed by ``runId`` with
  ``Run.producer`` set.  ``START``/``RUNNING`` -> RUNNING, ``COMPLETE`` -> COMPLETED, ``FAIL`` ->
  FAILED (``errorMessage`` facet -> error), ``ABORT`` -> ABORTED; a terminal status is never
  regressed by a late ``START``; ``parent`` facet -> ``parent_run_id`` when that run is known;
* ``Dataset`` rows by ``(namespace, name)`` (the same row our own steps use for that name, so a
  warehouse table written by an Airflow task and read by a decorated step links up);
* ``DatasetVersion`` rows: the ``version`` (datasetVersion) facet is the identity (matched against
  ``content_hash``, so a producer that reports our fingerprint meets our version; new ones are stored
  with ``hash_algo = "openlineage"``: an identity, not a fingerprint we can re-verify).  Without it an
  output is one version per producing run and an input is the dataset's latest version;
* ``schema`` facet -> ``DatasetField`` rows (nested fields flattened as ``a.b``);
* ``RunIO`` edges both ways and ``columnLineage`` -> ``ColumnLineage`` where both fields are known.

Idempotent on ``(runId, eventType, eventTime)`` through ``IngestedEvent``.  Invalid lines are
reported with ``file:line`` and a one-line reason; the valid ones are imported.  Each event is one
audit event (``openlineage.ingest``), in the same transaction as its rows.  Files are streamed and
imported in batches; a line longer than :data:`MAX_EVENT_BYTES` (16 MiB) is reported and skipped
without being loaded, a binary file is reported once, and an input with no events at all is an
:class:`~governance.errors.InputError`.  Event contents are data: they are parsed with ``json`` and
stored through bound parameters, never interpreted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.audit import AuditedTransaction, audited
from governance.catalog import (
    Catalog,
    ColumnLineage,
    Dataset,
    DatasetField,
    DatasetVersion,
    IngestedEvent,
    Job,
    Run,
    RunIO,
)
from governance.errors import InputError

__all__ = ["MAX_EVENT_BYTES", "IngestReport", "ingest_openlineage", "read_events"]

_STATUS = {"START": "RUNNING", "RUNNING": "RUNNING", "COMPLETE": "COMPLETED", "FAIL": "FAILED",
           "ABORT": "ABORTED"}
_TERMINAL = {"COMPLETED", "FAILED", "ABORTED"}
_EVENT_TYPES = {*_STATUS, "OTHER"}
_BATCH = 200


@dataclass
class IngestReport:
    """Counts of one import; ``invalid`` holds ``(location, reason)`` per rejected line."""

    read: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)
    runs: set[str] = field(default_factory=set)
    datasets: set[tuple[str, str]] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.invalid


@dataclass(frozen=True)
class _Event:
    location: str
    doc: dict[str, Any]
    event_type: str
    event_time: datetime
    raw_time: str
    run_id: str


MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The largest event (one NDJSON line, or one pretty-printed ``.json`` file) that is parsed.

A longer line is reported as invalid and skipped without being held in memory (it is read in 1 MiB
chunks up to its newline).  16 MiB leaves room for Spark events with wide schemas and column lineage
(typically well under 1 MiB) while bounding what one hostile line can cost."""

_CHUNK = 1024 * 1024


def read_events(path: Path) -> Iterator[tuple[str, str | None, str | None]]:
    """``(location, text, None)`` per non-blank event line under ``path``, or ``(location, None,
    reason)`` for a line that cannot be an event (too long, not UTF-8 text).  Files are streamed."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise InputError(f"{path}: no such file or directory; expected an NDJSON file or a directory "
                         "of .json files")
    for file in files:
        try:
            if path.is_dir() and file.stat().st_size <= MAX_EVENT_BYTES:
                stripped = file.read_bytes().strip()
                if stripped.startswith(b"{") and b"\n{" not in stripped:
                    yield _decoded(f"{file}:1", stripped)  # one pretty-printed event per file
                    continue
            yield from _file_lines(file)
        except OSError as exc:
            raise InputError(f"{file}: cannot read: {exc.strerror or exc}") from exc


def _file_lines(file: Path) -> Iterator[tuple[str, str | None, str | None]]:
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
            event = _decoded(location, line.strip())
            yield event
            if event[1] is None:
                return  # a binary file: the first bad line says so, the rest is noise


def _decoded(location: str, raw: bytes) -> tuple[str, str | None, str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return location, None, f"not UTF-8 text (byte {exc.start}); expected JSON OpenLineage RunEvents"
    if "\x00" in text:
        return location, None, "contains NUL bytes (a binary file?); expected JSON OpenLineage RunEvents"
    return location, text, None


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or "t" not in value.lower():
        raise ValueError(f"eventTime: expected an ISO 8601 date-time, got {value!r}")
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _require_str(doc: dict[str, Any], path: str) -> str:
    node: Any = doc
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, str) or not node:
        raise ValueError(f"{path}: expected a non-empty string")
    return node


def _validate(location: str, text: str) -> _Event:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object (an OpenLineage RunEvent)")
    if "run" not in doc:
        raise ValueError("not a RunEvent (no `run`); DatasetEvent/JobEvent are not imported")
    event_type = doc.get("eventType", "OTHER")
    if event_type not in _EVENT_TYPES:
        raise ValueError(f"eventType: expected one of {', '.join(sorted(_EVENT_TYPES))}, got {event_type!r}")
    try:
        event_time = _parse_time(doc.get("eventTime"))
    except ValueError as exc:
        raise ValueError(f"eventTime: expected an ISO 8601 date-time, got {doc.get('eventTime')!r}") from exc
    _require_str(doc, "producer")
    run_id = _require_str(doc, "run.runId")
    if len(run_id) > 36:
        raise ValueError(f"run.runId: expected a UUID, got {run_id!r}")
    _require_str(doc, "job.namespace")
    _require_str(doc, "job.name")
    for side in ("inputs", "outputs"):
        items = doc.get(side, [])
        if not isinstance(items, list):
            raise ValueError(f"{side}: expected a list of datasets")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise ValueError(f"{side}[{index}]: expected an object")
            _require_str(item, "namespace")
            _require_str(item, "name")
    return _Event(location, doc, event_type, event_time, str(doc["eventTime"]), run_id)


def ingest_openlineage(catalog: Catalog, path: str | Path, actor: str) -> IngestReport:
    """Import the RunEvents at ``path`` (NDJSON file or directory of .json) into ``catalog``."""
    report = IngestReport()
    batch: list[_Event] = []
    for location, text, problem in read_events(Path(path)):
        report.read += 1
        try:
            if text is None:
                raise ValueError(problem)
            batch.append(_validate(location, text))
        except ValueError as exc:
            report.invalid.append((location, str(exc)))
        if len(batch) >= _BATCH:
            _import(catalog, actor, batch, report)
            batch = []
    if batch:
        _import(catalog, actor, batch, report)
    if report.read == 0:
        what = "no .json files with events" if Path(path).is_dir() else "no events (the file is empty)"
        raise InputError(f"{path}: {what}; expected OpenLineage RunEvents, one JSON object per line")
    return report


def _import(catalog: Catalog, actor: str, events: list[_Event], report: IngestReport) -> None:
    with audited(catalog, actor) as tx:
        importer = _Importer(tx)
        for event in events:
            importer.add(event, report)


class _Importer:
    """Get-or-create helpers over one transaction, with small per-batch lookups."""

    def __init__(self, tx: AuditedTransaction) -> None:
        self.tx = tx
        self.session: Session = tx.session
        self.seen: set[tuple[str, str, str]] = set()

    def add(self, event: _Event, report: IngestReport) -> None:
        key = (event.run_id, event.event_type, event.raw_time)
        exists = self.session.exec(select(IngestedEvent.id).where(
            IngestedEvent.run_uuid == key[0], IngestedEvent.event_type == key[1],
            IngestedEvent.event_time == key[2])).first()
        if exists is not None or key in self.seen:
            report.duplicates += 1
            return
        self.seen.add(key)
        doc = event.doc
        job = self._job(doc["job"]["namespace"], doc["job"]["name"])
        run = self._run(event, job)
        versions: dict[tuple[str, str], DatasetVersion] = {}
        for direction, side in (("input", "inputs"), ("output", "outputs")):
            for item in doc.get(side) or []:
                version = self._dataset_version(item, run, direction)
                versions[(item["namespace"], item["name"])] = version
                self._edge(run, version, direction)
                report.datasets.add((item["namespace"], item["name"]))
        for item in doc.get("outputs") or []:
            self._column_lineage(item, run, versions)
        self.session.add(IngestedEvent(run_uuid=key[0], event_type=key[1], event_time=key[2],
                                       producer=str(doc.get("producer"))))
        self.session.flush()
        self.tx.record("openlineage.ingest", f"run:{event.run_id}", {
            "eventType": event.event_type, "eventTime": event.raw_time, "producer": doc.get("producer"),
            "job": f"{job.namespace}/{job.name}", "source": event.location,
        })
        report.imported += 1
        report.runs.add(event.run_id)

    def _job(self, namespace: str, name: str) -> Job:
        job = self.session.exec(select(Job).where(Job.namespace == namespace, Job.name == name)).first()
        if job is None:
            job = Job(namespace=namespace, name=name, kind="other")
            self.session.add(job)
            self.session.flush()
        return job

    def _run(self, event: _Event, job: Job) -> Run:
        doc = event.doc
        run = self.session.exec(select(Run).where(Run.run_uuid == event.run_id)).first()
        if run is None:
            run = Run(run_uuid=event.run_id, job_id=_pk(job), started_at=event.event_time,
                      producer=str(doc.get("producer")))
            self.session.add(run)
        status = _STATUS.get(event.event_type)
        if status is not None and not (run.status in _TERMINAL and status == "RUNNING"):
            run.status = status
        if event.event_type == "START" or _naive(event.event_time) < _naive(run.started_at):
            run.started_at = event.event_time
        if status in _TERMINAL:
            run.ended_at = event.event_time
        facets = (doc.get("run") or {}).get("facets") or {}
        error = facets.get("errorMessage")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            run.error_message = error["message"]
            trace = error.get("stackTrace")
            run.error_traceback = trace if isinstance(trace, str) else None
        parent = facets.get("parent")
        if isinstance(parent, dict) and run.parent_run_id is None:
            parent_uuid = (parent.get("run") or {}).get("runId")
            if isinstance(parent_uuid, str):
                run.parent_run_id = self.session.exec(
                    select(Run.id).where(Run.run_uuid == parent_uuid)).first()
        self.session.flush()
        return run

    def _dataset(self, item: dict[str, Any]) -> Dataset:
        namespace, name = item["namespace"], item["name"]
        dataset = self.session.exec(select(Dataset).where(Dataset.namespace == namespace,
                                                          Dataset.name == name)).first()
        if dataset is None:
            facets = item.get("facets") or {}
            kind = ((facets.get("datasetType") or {}).get("datasetType") or "table").lower()
            dataset = Dataset(namespace=namespace, name=name, kind=kind[:32],
                              uri=f"{namespace.rstrip('/')}/{name.lstrip('/')}")
            self.session.add(dataset)
            self.session.flush()
        return dataset

    def _dataset_version(self, item: dict[str, Any], run: Run, direction: str) -> DatasetVersion:
        dataset = self._dataset(item)
        facets = item.get("facets") or {}
        identity = (facets.get("version") or {}).get("datasetVersion")
        versions = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
        version: DatasetVersion | None
        if isinstance(identity, str) and identity:
            version = self.session.exec(versions.where(DatasetVersion.content_hash == identity)
                                        .order_by(col(DatasetVersion.version))).first()
        elif direction == "output":
            version = self.session.exec(versions.where(DatasetVersion.produced_by_run_id == run.id)).first()
        else:
            version = self.session.exec(versions.order_by(col(DatasetVersion.version).desc())).first()
        if version is None:
            number = self.session.exec(select(sa.func.max(DatasetVersion.version))
                                       .where(DatasetVersion.dataset_id == dataset.id)).one()
            known = isinstance(identity, str) and bool(identity)
            version = DatasetVersion(dataset_id=_pk(dataset), version=(number or 0) + 1,
                                     content_hash=identity if known else None,
                                     hash_algo="openlineage" if known else None, uri=dataset.uri)
            self.session.add(version)
            self.session.flush()
        if direction == "output" and version.produced_by_run_id is None:
            version.produced_by_run_id = run.id
        self._fields(version, facets.get("schema"))
        stats = (item.get("outputFacets") or {}).get("outputStatistics") or {}
        if direction == "output" and isinstance(stats.get("rowCount"), int) and version.row_count is None:
            version.row_count = stats["rowCount"]
        self.session.flush()
        return version

    def _fields(self, version: DatasetVersion, schema: Any) -> None:
        if not isinstance(schema, dict) or not isinstance(schema.get("fields"), list):
            return
        existing = self.session.exec(select(DatasetField.id).where(
            DatasetField.dataset_version_id == version.id)).first()
        if existing is not None:
            return
        flat = list(_flatten(schema["fields"]))
        for position, (name, dtype) in enumerate(flat):
            self.session.add(DatasetField(dataset_version_id=_pk(version), name=name, dtype=dtype,
                                          position=position))
        if version.schema_fields is None:
            version.schema_fields = [{"name": n, "type": t} for n, t in flat]

    def _edge(self, run: Run, version: DatasetVersion, direction: str) -> None:
        found = self.session.exec(select(RunIO.id).where(
            RunIO.run_id == run.id, RunIO.artifact_kind == "dataset", RunIO.artifact_id == version.id,
            RunIO.direction == direction)).first()
        if found is None:
            self.session.add(RunIO(run_id=_pk(run), artifact_kind="dataset", artifact_id=_pk(version),
                                   direction=direction))

    def _field_id(self, version_id: int | None, name: str) -> int | None:
        return self.session.exec(select(DatasetField.id).where(
            DatasetField.dataset_version_id == version_id, DatasetField.name == name)).first()

    def _column_lineage(self, item: dict[str, Any], run: Run,
                        versions: dict[tuple[str, str], DatasetVersion]) -> None:
        lineage = (item.get("facets") or {}).get("columnLineage") or {}
        fields = lineage.get("fields") if isinstance(lineage, dict) else None
        if not isinstance(fields, dict):
            return
        out_version = versions[(item["namespace"], item["name"])]
        for out_name, spec in fields.items():
            out_id = self._field_id(out_version.id, out_name)
            if out_id is None or not isinstance(spec, dict):
                continue
            for source in spec.get("inputFields") or []:
                if not isinstance(source, dict):
                    continue
                in_version = versions.get((str(source.get("namespace")), str(source.get("name"))))
                in_id = self._field_id(in_version.id, str(source.get("field"))) if in_version else None
                if in_id is None:
                    continue
                kinds = [t.get("type") for t in source.get("transformations") or [] if isinstance(t, dict)]
                transformation = "INDIRECT" if kinds and all(k == "INDIRECT" for k in kinds) else "DIRECT"
                known = self.session.exec(select(ColumnLineage.id).where(
                    ColumnLineage.run_id == run.id, ColumnLineage.output_field_id == out_id,
                    ColumnLineage.input_field_id == in_id)).first()
                if known is None:
                    self.session.add(ColumnLineage(run_id=run.id, output_field_id=out_id,
                                                   input_field_id=in_id, transformation=transformation))


def _flatten(fields: list[Any], prefix: str = "") -> Iterator[tuple[str, str | None]]:
    for item in fields:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        name = f"{prefix}{item['name']}"
        dtype = item.get("type") if isinstance(item.get("type"), str) else None
        yield name, dtype
        if isinstance(item.get("fields"), list):
            yield from _flatten(item["fields"], f"{name}.")


def _pk(row: Job | Run | Dataset | DatasetVersion) -> int:
    if row.id is None:  # pragma: no cover - rows are flushed before their key is used
        raise InputError(f"internal: {type(row).__name__} has no primary key yet")
    return row.id


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
