"""OpenLineage ingest throughput: a 100k-event NDJSON file into a SQLite file catalog.

    python -m benchmarks.bench_ingest [--quick]

The file is what a warehouse's producers write over a day: Spark-style jobs, each run a ``START`` and
a ``COMPLETE`` event, reading one or two tables other jobs wrote (no version facet: bound by time)
and writing one table with a schema of eight columns, a ``columnLineage`` facet (two input fields per
output column, with transformation type and subtype) and output statistics; every tenth run is a
child of an orchestrator run (``parent`` facet).  Events are in time order, as a producer's log
is.  Measured: events per second for ``gov ingest openlineage`` (the library call as the command
makes it: batched, every batch one audited transaction, the garbage collector paused and SQLite's page
cache raised while this process only imports, ``pause_gc=True``), reading and parsing the file
included.  Target (DESIGN section 14): >= 2,000 events/s.  Peer: the previous implementation, one
audited transaction per event with ORM look-ups, measured at about 60 events/s on the same kind of
events (issue 17's report of 510 events in 8.2 s); it is not re-run here.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._common import Result
from governance.audit import verify_audit
from governance.catalog import Catalog
from governance.openlineage import ingest_openlineage

__all__ = ["run", "write_events"]

_PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark"
_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_COLUMNS = ("id", "customer", "amount", "currency", "country", "segment", "score", "updated_at")
PREVIOUS_EVENTS_PER_S = 510 / 8.2


def _dataset(name: str) -> dict[str, Any]:
    return {"namespace": "s3://warehouse", "name": name}


def _output(name: str, sources: list[str], rows: int) -> dict[str, Any]:
    fields = {
        column: {"inputFields": [
            {"namespace": "s3://warehouse", "name": source, "field": column,
             "transformations": [{"type": "DIRECT", "subtype": "IDENTITY" if i == 0 else "TRANSFORMATION"}]}
            for i, source in enumerate(sources)
        ]}
        for column in _COLUMNS
    }
    return {
        **_dataset(name),
        "facets": {
            "schema": {"_producer": _PRODUCER, "_schemaURL": "x", "fields": [
                {"name": c, "type": "string" if c in ("customer", "currency", "country", "segment") else "long"}
                for c in _COLUMNS]},
            "columnLineage": {"_producer": _PRODUCER, "_schemaURL": "x", "fields": fields},
        },
        "outputFacets": {"outputStatistics": {"_producer": _PRODUCER, "_schemaURL": "x", "rowCount": rows}},
    }


def write_events(path: Path, count: int, *, tables: int = 300, seed: int = 17) -> int:
    """Write ``count`` events (START+COMPLETE pairs) to ``path`` as NDJSON; returns the number written."""
    rng = random.Random(seed)
    start = datetime(2024, 6, 1, tzinfo=UTC)
    names = [f"sales.t{i:04d}" for i in range(tables)]
    orchestrator = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for i in range(count // 2):
            target = names[i % tables]
            sources = rng.sample([n for n in names if n != target], 2 if i % 3 else 1)
            run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            job = {"namespace": "spark-cluster", "name": f"etl.build_{target.replace('.', '_')}"}
            run_facets: dict[str, Any] = {}
            if i % 10 == 0:
                run_facets["parent"] = {"_producer": _PRODUCER, "_schemaURL": "x",
                                        "run": {"runId": orchestrator},
                                        "job": {"namespace": "airflow", "name": "daily_etl"}}
            began = start + timedelta(seconds=30 * i)
            for event_type, when, with_io in (("START", began, False),
                                              ("COMPLETE", began + timedelta(seconds=20), True)):
                doc = {
                    "eventType": event_type,
                    "eventTime": when.isoformat().replace("+00:00", "Z"),
                    "producer": _PRODUCER,
                    "schemaURL": _SCHEMA,
                    "run": {"runId": run_id, "facets": run_facets},
                    "job": job,
                    "inputs": [_dataset(s) for s in sources],
                    "outputs": [_output(target, sources, 1000 + i)] if with_io else [_dataset(target)],
                }
                out.write(json.dumps(doc, separators=(",", ":")) + "\n")
                written += 1
    return written


def run(quick: bool = False) -> list[Result]:
    count = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        path = base / "events.ndjson"
        written = write_events(path, count)
        catalog = Catalog(f"sqlite:///{base / 'catalog.db'}")
        try:
            began, cpu = time.perf_counter(), time.process_time()
            report = ingest_openlineage(catalog, path, "bench", pause_gc=True)  # as the CLI command does
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
            verified = verify_audit(catalog)
        finally:
            catalog.dispose()
    if report.imported != written or report.invalid:
        raise RuntimeError(f"ingest lost events: wrote {written}, imported {report.imported}, "
                           f"invalid {report.invalid[:3]}")
    if not verified.ok:
        raise RuntimeError(f"ingest broke the audit chain: {verified}")
    rate = written / elapsed
    return [
        Result(
            f"openlineage ingest, {written:,} events (Spark-style, column lineage), NDJSON file, SQLite",
            rate,
            "events/s",
            target=2000.0,
            higher_is_better=True,
            peer="previous ingest (one audited transaction per event), issue 17: 510 events in 8.2 s",
            peer_measured=PREVIOUS_EVENTS_PER_S,
            note=f"{elapsed:.1f} s ({written / cpu:,.0f} events per CPU second); {len(report.runs):,} runs, "
                 f"{report.column_lineage:,} column lineage rows, "
                 f"audit chain verified",
        ),
    ]


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result.as_dict())
