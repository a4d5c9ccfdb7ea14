"""The one writer of the lineage graph (issue 14, item 3): capture and ingest agree on the shape of a
version's schema and on which version an unversioned input consumed; every write is audited by
construction; rows the writer supplies are digested exactly as a reader of the stored row would."""

from __future__ import annotations

import ast
import logging
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlmodel import select

import governance as gov
import governance.audit._state as state_module
from governance.audit import audited, verify_audit
from governance.catalog import Catalog, Dataset, DatasetVersion, Job, Run, RunIO
from governance.errors import GovernanceError
from governance.lineage import DatasetCapture, RunRecord, write_run
from governance.openlineage import GraphWriter, ingest_openlineage, schema_fields, schema_of

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/spark"
NS, TABLE = "s3://warehouse", "sales/orders"


def _event(event_type: str, run_id: str, when: datetime, job: str, *, inputs: list[dict[str, Any]] | None = None,
           outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "eventType": event_type, "eventTime": when.isoformat(), "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id}, "job": {"namespace": "spark", "name": job},
        "inputs": inputs or [], "outputs": outputs or [],
    }


def _table(fields: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"namespace": NS, "name": TABLE}
    if fields:
        item["facets"] = {"schema": {
            "_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
            "fields": [{"name": n, "type": t} for n, t in fields]}}
    return item


def _capture(direction: str, *, content_hash: str | None = None,
             fields: list[dict[str, Any]] | None = None) -> DatasetCapture:
    return DatasetCapture(role="raw" if direction == "input" else "output", direction=direction, namespace=NS,
                          name=TABLE, kind="table" if fields else "reference", uri=f"{NS}/{TABLE}",
                          content_hash=content_hash, hash_algo="blake3" if content_hash else None,
                          coverage="full" if content_hash else "none", schema_hash=None, row_count=None,
                          byte_size=None, fields=fields or [])


def _record(started: datetime, datasets: list[DatasetCapture], job: str = "features.build") -> RunRecord:
    return RunRecord(run_uuid=str(uuid.uuid4()), job=job, namespace="governance://default", kind="feature",
                     status="COMPLETED", started_at=started, ended_at=started + timedelta(seconds=1),
                     actor="tester", datasets=datasets)


def _versions(catalog: Catalog) -> list[DatasetVersion]:
    with catalog.read() as s:
        dataset = s.exec(select(Dataset).where(Dataset.namespace == NS, Dataset.name == TABLE)).one()
        return list(s.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
                           .order_by(DatasetVersion.id)))


def _input_version(catalog: Catalog, run_uuid: str) -> int:
    with catalog.read() as s:
        run = s.exec(select(Run).where(Run.run_uuid == run_uuid)).one()
        edges = list(s.exec(select(RunIO).where(RunIO.run_id == run.id, RunIO.direction == "input")))
    assert len(edges) == 1
    return int(edges[0].artifact_id)


# ------------------------------------------------------------------------------------ schema shape
def test_a_captured_and_an_ingested_version_store_their_schema_in_one_shape(sqlite_catalog: Catalog) -> None:
    """Main stored capture's schema as ``{name, dtype, hash}`` and ingest's as ``{name, type}``."""
    now = datetime.now(UTC)
    fields = [{"name": "amount", "dtype": "float64", "position": 0, "hash": "blake3:aa", "tags": []},
              {"name": "region", "dtype": "string", "position": 1, "hash": "blake3:bb", "tags": []}]
    assert write_run(sqlite_catalog, _record(now - timedelta(hours=2),
                                             [_capture("output", content_hash="c1", fields=fields)]))
    run_id = str(uuid.uuid4())
    report = ingest_openlineage(sqlite_catalog, [
        _event("COMPLETE", run_id, now - timedelta(hours=1), "orders.load",
               outputs=[_table([("amount", "double"), ("region", "string"), ("day", "date")])])], "tester")
    assert report.ok, report.invalid
    captured, ingested = _versions(sqlite_catalog)
    assert captured.schema_fields is not None and ingested.schema_fields is not None
    assert {frozenset(f) for f in captured.schema_fields} == {frozenset({"name", "type", "hash"})}
    assert {frozenset(f) for f in ingested.schema_fields} == {frozenset({"name", "type"})}  # no hash known
    assert schema_of(captured.schema_fields) == [("amount", "float64"), ("region", "string")]
    assert schema_of(ingested.schema_fields) == [("amount", "double"), ("region", "string"), ("day", "date")]
    assert [f["hash"] for f in captured.schema_fields] == ["blake3:aa", "blake3:bb"]


def test_schema_of_reads_the_spelling_older_catalogs_hold() -> None:
    assert schema_of([{"name": "a", "dtype": "int64", "hash": None}, {"name": "b", "type": "string"}]) == [
        ("a", "int64"), ("b", "string")]
    assert schema_fields([]) is None


# ------------------------------------------------------------------------------ one binding rule
def test_capture_and_ingest_bind_an_unversioned_input_to_the_same_version(sqlite_catalog: Catalog) -> None:
    """A table written at t1 and again at t3: a run started at t2 read the t1 version, whether its
    events were ingested or a decorated step captured it (main bound capture to the latest version)."""
    t0 = datetime.now(UTC) - timedelta(days=1)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    report = ingest_openlineage(sqlite_catalog, [
        _event("START", first, t0, "orders.load"),
        _event("COMPLETE", first, t0 + timedelta(hours=1), "orders.load", outputs=[_table()]),
        _event("START", second, t0 + timedelta(hours=3), "orders.load"),
        _event("COMPLETE", second, t0 + timedelta(hours=4), "orders.load", outputs=[_table()]),
    ], "tester")
    assert report.ok, report.invalid
    v1, v2 = (v.id for v in _versions(sqlite_catalog))
    reader = str(uuid.uuid4())
    assert ingest_openlineage(sqlite_catalog, [
        _event("START", reader, t0 + timedelta(hours=2), "orders.report", inputs=[_table()]),
        _event("COMPLETE", reader, t0 + timedelta(hours=2, minutes=30), "orders.report", inputs=[_table()]),
    ], "tester").ok
    captured = _record(t0 + timedelta(hours=2), [_capture("input")])
    assert write_run(sqlite_catalog, captured)
    assert _input_version(sqlite_catalog, reader) == v1
    assert _input_version(sqlite_catalog, captured.run_uuid) == v1
    later = _record(t0 + timedelta(hours=5), [_capture("input")])
    assert write_run(sqlite_catalog, later)
    assert _input_version(sqlite_catalog, later.run_uuid) == v2
    assert len(_versions(sqlite_catalog)) == 2  # neither made up a version of its own
    assert verify_audit(sqlite_catalog).ok


# --------------------------------------------------------------------------- audited by construction
def test_the_graph_writer_exists_only_inside_an_audited_transaction(sqlite_catalog: Catalog) -> None:
    with pytest.raises(GovernanceError, match="audited"):
        GraphWriter(object())  # type: ignore[arg-type]
    with audited(sqlite_catalog, "tester") as tx:
        graph = GraphWriter(tx)
        job = graph.job_id("ns", "job", "other", None)
        tx.record("job.create", "job:ns/job")
    with sqlite_catalog.read() as s:
        assert s.exec(select(Job)).one().id == job
    assert verify_audit(sqlite_catalog).ok


_GRAPH_TABLES = {"_r", "_j", "_d", "_dv", "_f", "_io", "_cl"}
_WRITES = {"insert", "update", "delete", "insert_statement", "update_statement"}


def _graph_writes(path: Path) -> list[str]:
    """Statements writing a graph table (by the modules' names for them) built outside the writer."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name) \
                and node.args[0].id in _GRAPH_TABLES:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in _WRITES:
                found.append(f"{path.name}:{node.lineno} {name}({node.args[0].id})")
    return found


_GRAPH_MODELS = {"Job", "Run", "RunIO", "Dataset", "DatasetVersion", "DatasetField", "ColumnLineage"}


def _orm_graph_rows(path: Path) -> list[str]:
    """ORM rows of a graph table made anywhere (``RunIO(...)`` added to a session): calls of the
    catalog's model classes, by the names the module imported them under."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    models = {alias.asname or alias.name for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("governance.catalog")
              for alias in node.names if alias.name in _GRAPH_MODELS}
    return [f"{path.name}:{node.lineno} {node.func.id}(...)" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in models]


def test_no_module_of_capture_or_ingest_writes_the_graph_but_the_writer() -> None:
    root = Path(gov.__file__).parent
    modules = [*sorted((root / "lineage").glob("*.py")), *sorted((root / "openlineage").glob("*.py"))]
    writer = root / "openlineage" / "_graph.py"
    assert _graph_writes(writer)  # the check sees the writer's own statements
    assert [w for m in modules if m != writer for w in _graph_writes(m)] == []


def test_no_module_of_the_package_makes_orm_rows_of_the_graph() -> None:
    """Every importer (OpenLineage, MLflow) and capture write the graph through the writer; the ORM
    classes remain for reading (and for tests, which build catalogs by hand)."""
    root = Path(gov.__file__).parent
    modules = [m for m in sorted(root.rglob("*.py")) if "migrations" not in m.parts]
    assert [w for m in modules for w in _orm_graph_rows(m)] == []


# ----------------------------------------------------------------------------- supplied digests
def _digest_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    reads: Counter[str] = Counter()
    original = state_module._digests

    def counting(session: Any, table: str, ids: set[int]) -> dict[str, str | None]:
        reads[table] += len(ids)
        return original(session, table, ids)

    monkeypatch.setattr(state_module, "_digests", counting)
    return reads


def test_capture_rows_are_bound_from_the_values_written(gov_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step's run, edges and column lineage are digested from what the writer inserted (no read
    back), and the digests are those of the stored rows: verify replays every row against the log."""
    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", f"sqlite:///{gov_env / 'catalog.db'}")
    reads = _digest_reads(monkeypatch)

    @gov.step(kind="feature", name="bench.step", derived={"total": ["amount", "sex"]})
    def build(raw: pd.DataFrame, scale: float = 2.0) -> pd.DataFrame:
        return raw.assign(total=raw["amount"] * scale)

    frame = gov.tag(pd.DataFrame({"amount": [1.0, 2.5, float("nan")], "sex": ["f", "m", "f"]}), protected="sex")
    for scale in (2.0, 2.0, 3.0):
        build(frame, scale=scale)
    assert set(reads) <= {"dataset_field"}  # field tags updated in place are read back
    catalog = Catalog(f"sqlite:///{gov_env / 'catalog.db'}")
    try:
        assert verify_audit(catalog).ok
    finally:
        catalog.dispose()


def test_ingested_rows_written_through_the_writer_are_bound(sqlite_catalog: Catalog) -> None:
    """Ingest's batch (event times in another time zone, arriving in reverse, so versions move and
    edges re-bind) writes through the graph writer; every row it leaves is bound to the log."""
    plus2 = timezone(timedelta(hours=2))
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=plus2)
    events = []
    for i in range(5):
        run_id = str(uuid.uuid4())
        events += [
            _event("START", run_id, t0 + timedelta(hours=i), f"job{i}", inputs=[_table([("a", "int")])]),
            _event("COMPLETE", run_id, t0 + timedelta(hours=i, minutes=5), f"job{i}",
                   outputs=[{"namespace": NS, "name": f"out{i}"}]),
        ]
    report = ingest_openlineage(sqlite_catalog, list(reversed(events)), "tester")
    assert report.ok, report.invalid
    assert verify_audit(sqlite_catalog).ok


def test_rows_supplied_then_updated_or_deleted_are_read_back(sqlite_catalog: Catalog,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _digest_reads(monkeypatch)
    with audited(sqlite_catalog, "tester") as tx:
        graph = GraphWriter(tx)
        job = graph.job_id("ns", "job", "other", None)
        dataset = graph.dataset_id("ns", "table", "table", None)
        kept, _ = graph.insert_version(dataset, coverage="none", created_at=tx.time)
        moved, _ = graph.insert_version(dataset, coverage="none", created_at=tx.time)
        gone, _ = graph.insert_version(dataset, coverage="none", created_at=tx.time)
        graph.update("dataset_version", moved, created_at=tx.time - timedelta(days=1))
        graph.delete_version(gone)
        tx.record("dataset_version.create", f"job:{job}")
    assert reads == Counter({"dataset_version": 2})
    assert verify_audit(sqlite_catalog).ok
    with sqlite_catalog.read() as s:
        assert {v.id for v in s.exec(select(DatasetVersion))} == {kept, moved}


def test_a_supplied_row_written_in_another_time_zone_digests_as_stored(sqlite_catalog: Catalog) -> None:
    when = datetime(2025, 1, 1, 23, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    with audited(sqlite_catalog, "tester") as tx:
        graph = GraphWriter(tx)
        job = graph.job_id("ns", "job", "other", None)
        run = graph.insert_run({"run_uuid": str(uuid.uuid4()), "job_id": job, "status": "COMPLETED",
                                "started_at": when, "params": {"k": [1, 2.5, None]}, "environment": {},
                                "git_dirty": True})
        graph.insert_edges([{"run_id": run, "artifact_kind": "dataset", "artifact_id": 1, "direction": "input",
                             "created_at": when}])
        tx.record("run.complete", "run:x")
    assert verify_audit(sqlite_catalog).ok


def test_capture_never_drops_a_call_that_does_not_match_the_signature(
        gov_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Main returned without recording when the arguments did not bind; now the run is recorded (failed,
    with its arguments by position) and a warning names why."""
    monkeypatch.setenv("GOVERNANCE_CATALOG_URL", f"sqlite:///{gov_env / 'catalog.db'}")
    from governance.lineage._runtime import runtime

    monkeypatch.setattr(runtime(), "_warned_capture", False)

    @gov.step(kind="feature", name="strict.step")
    def strict(x: int) -> int:
        return x

    with caplog.at_level(logging.WARNING, logger="governance"), pytest.raises(TypeError):
        strict(1, 2)  # type: ignore[call-arg]
    assert any("do not match its signature" in r.getMessage() for r in caplog.records)
    catalog = Catalog(f"sqlite:///{gov_env / 'catalog.db'}")
    try:
        with catalog.read() as s:
            run = s.exec(select(Run)).one()
        assert run.status == "FAILED" and run.error_type == "TypeError"
        assert run.params == {"args.0": 1, "args.1": 2}
    finally:
        catalog.dispose()


def test_bulk_inserts_store_what_one_row_at_a_time_stores(catalog_url: str) -> None:
    """Rows inserted many at a time (values converted by column) are stored as the one-row path stores
    them: JSON (an absent value as JSON null where the column says so), booleans, timestamps in another
    time zone; in the order given, every one bound to the log; a refused row fails the statement with
    SQLAlchemy's error, as any other write."""
    import json

    import sqlalchemy as sa

    catalog = Catalog(catalog_url)
    when = datetime(2025, 1, 1, 23, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    try:
        with audited(catalog, "tester") as tx:
            graph = GraphWriter(tx)
            job = graph.job_id("ns", "job", "other", None)
            rows = [{"run_uuid": str(uuid.uuid4()), "job_id": job, "status": "COMPLETED", "started_at": when,
                     "ended_at": when + timedelta(seconds=i), "params": {"k": [i, 2.5, None], "b": "ü"},
                     "environment": {}, "git_dirty": [True, False, None][i % 3]} for i in range(5)]
            single = graph.insert_run(dict(rows[0], run_uuid=str(uuid.uuid4())))
            graph.insert_runs(rows)
            dataset = graph.dataset_id("ns", "table", "table", None)
            version, _ = graph.insert_version(dataset, coverage="none", created_at=when)
            graph.insert_fields([{"dataset_version_id": version, "name": f"c{i}", "dtype": None, "position": i,
                                  "tags": [{"pii": i}] if i else []} for i in range(3)])
            tx.record("run.complete", "run:x")
        with catalog.read() as session:
            runs = session.exec(select(Run).order_by(Run.id)).all()  # type: ignore[arg-type]
            fields = session.exec(sa.text("SELECT name, tags FROM dataset_field ORDER BY id")).all()
        by_row = {r.id: r for r in runs}
        assert [r.run_uuid for r in runs if r.id != single] == [r["run_uuid"] for r in rows]
        for stored, given in zip([r for r in runs if r.id != single], rows, strict=True):
            assert (stored.params, stored.environment, stored.git_dirty, stored.status) == (
                given["params"], {}, given["git_dirty"], "COMPLETED")
            assert stored.started_at.astimezone(UTC) == when.astimezone(UTC)
            assert stored.ended_at is not None and stored.ended_at.astimezone(UTC) == given["ended_at"].astimezone(UTC)
        assert by_row[single].params == rows[0]["params"] and by_row[single].git_dirty is True
        assert [(n, t if isinstance(t, list) else json.loads(t)) for n, t in fields] == [
            ("c0", []), ("c1", [{"pii": 1}]), ("c2", [{"pii": 2}])]
        assert verify_audit(catalog).ok
        with pytest.raises(sa.exc.IntegrityError), audited(catalog, "tester") as tx:  # no such job
            GraphWriter(tx).insert_runs([dict(rows[0], run_uuid=str(uuid.uuid4()), job_id=10_000 + i)
                                         for i in range(2)])
            tx.record("run.complete", "run:y")
    finally:
        catalog.dispose()
