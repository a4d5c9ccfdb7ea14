"""Ingest of other producers' RunEvents (Airflow, Spark, dbt shapes), the link-up, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

import governance.openlineage as ol
from governance.catalog import (
    AuditEvent,
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
from governance.cli import main
from tests.test_openlineage_support import make_run, require_spec, validate_event

AIRFLOW = "https://github.com/apache/airflow/tree/providers-openlineage/1.8.0"
SPARK = "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/spark"
DBT = "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/dbt"
WAREHOUSE = "postgres://warehouse:5432"


def _facet(name: str, body: dict[str, Any], version: str = "1-0-1") -> dict[str, Any]:
    return {
        "_producer": AIRFLOW,
        "_schemaURL": f"https://openlineage.io/spec/facets/{version}/{name}.json",
        **body,
    }


def _event(
    producer: str,
    event_type: str,
    run_id: str,
    time: str,
    job: tuple[str, str],
    *,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    run_facets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": time,
        "producer": producer,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": run_facets or {}},
        "job": {"namespace": job[0], "name": job[1], "facets": {}},
        "inputs": inputs or [],
        "outputs": outputs or [],
    }


def _customers(version: str | None = "v42") -> dict[str, Any]:
    facets: dict[str, Any] = {
        "schema": _facet(
            "SchemaDatasetFacet",
            {
                "fields": [
                    {"name": "id", "type": "INTEGER"},
                    {"name": "income", "type": "NUMERIC"},
                    {"name": "address", "type": "STRUCT", "fields": [{"name": "zip", "type": "VARCHAR"}]},
                ]
            },
            "1-2-0",
        )
    }
    if version is not None:
        facets["version"] = _facet("DatasetVersionDatasetFacet", {"datasetVersion": version})
    return {"namespace": WAREHOUSE, "name": "analytics.public.customers", "facets": facets}


@pytest.fixture
def events() -> dict[str, Any]:
    airflow_run, spark_run, dbt_run = (str(uuid.uuid4()) for _ in range(3))
    raw = {"namespace": "s3://landing", "name": "raw/customers.csv"}
    airflow = [
        _event(
            AIRFLOW,
            "START",
            airflow_run,
            "2024-05-01T10:00:00+00:00",
            ("airflow", "etl.load_customers"),
            inputs=[raw],
        ),
        _event(
            AIRFLOW,
            "COMPLETE",
            airflow_run,
            "2024-05-01T10:05:00.123Z",
            ("airflow", "etl.load_customers"),
            inputs=[raw],
            outputs=[
                {
                    **_customers(),
                    "outputFacets": {
                        "outputStatistics": _facet(
                            "OutputStatisticsOutputDatasetFacet", {"rowCount": 5000}, "1-0-2"
                        )
                    },
                }
            ],
        ),
    ]
    spark = _event(
        SPARK,
        "COMPLETE",
        spark_run,
        "2024-05-01T11:00:00Z",
        ("spark", "customer_features"),
        inputs=[_customers()],
        outputs=[
            {
                "namespace": WAREHOUSE,
                "name": "analytics.public.customer_features",
                "facets": {
                    "schema": _facet(
                        "SchemaDatasetFacet", {"fields": [{"name": "income_band", "type": "STRING"}]}, "1-2-0"
                    ),
                    "columnLineage": _facet(
                        "ColumnLineageDatasetFacet",
                        {
                            "fields": {
                                "income_band": {
                                    "inputFields": [
                                        {
                                            "namespace": WAREHOUSE,
                                            "name": "analytics.public.customers",
                                            "field": "income",
                                            "transformations": [{"type": "DIRECT"}],
                                        }
                                    ]
                                }
                            }
                        },
                        "1-2-0",
                    ),
                },
            }
        ],
    )
    dbt = _event(
        DBT,
        "FAIL",
        dbt_run,
        "2024-05-01T12:00:00Z",
        ("dbt", "analytics.customer_summary"),
        inputs=[_customers()],
        run_facets={
            "errorMessage": _facet(
                "ErrorMessageRunFacet", {"message": "relation does not exist", "programmingLanguage": "sql"}
            )
        },
    )
    return {"airflow": airflow, "spark": spark, "dbt": dbt, "runs": (airflow_run, spark_run, dbt_run)}


def _write_ndjson(path: Path, docs: list[Any], invalid: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(d) for d in docs]
    for index, text in sorted((invalid or {}).items()):
        lines.insert(index, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_fixture_events_are_valid_openlineage(events: dict[str, Any]) -> None:
    require_spec()
    from tests.test_openlineage_support import _validator

    for doc in [*events["airflow"], events["spark"], events["dbt"]]:
        errors = list(_validator(ol.RUN_EVENT_SCHEMA_URL).iter_errors(doc))
        assert not errors, errors[0].message


def test_ingest_creates_jobs_runs_and_dataset_versions(
    catalog: Catalog, tmp_path: Path, events: dict[str, Any]
) -> None:
    path = _write_ndjson(tmp_path / "lineage.ndjson", [*events["airflow"], events["spark"], events["dbt"]])
    report = ol.ingest_openlineage(catalog, path, "ingester")
    assert (report.read, report.imported, report.duplicates, report.invalid) == (4, 4, 0, [])
    airflow_run, spark_run, dbt_run = events["runs"]
    with catalog.read() as s:
        runs = {r.run_uuid: r for r in s.exec(select(Run))}
        assert runs[airflow_run].status == "COMPLETED" and runs[airflow_run].producer == AIRFLOW
        assert (
            runs[airflow_run].ended_at is not None
            and runs[airflow_run].started_at < runs[airflow_run].ended_at
        )
        assert runs[dbt_run].status == "FAILED" and runs[dbt_run].error_message == "relation does not exist"
        jobs = {(j.namespace, j.name) for j in s.exec(select(Job))}
        assert {
            ("airflow", "etl.load_customers"),
            ("spark", "customer_features"),
            ("dbt", "analytics.customer_summary"),
        } <= jobs
        (customers,) = s.exec(select(Dataset).where(Dataset.name == "analytics.public.customers"))
        (version,) = s.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == customers.id))
        assert (version.content_hash, version.hash_algo, version.row_count) == ("v42", "openlineage", 5000)
        assert version.produced_by_run_id == runs[airflow_run].id
        fields = [
            f.name
            for f in s.exec(
                select(DatasetField)
                .where(DatasetField.dataset_version_id == version.id)
                .order_by(DatasetField.position)
            )
        ]
        assert fields == ["id", "income", "address", "address.zip"]
        readers = {
            io.run_id
            for io in s.exec(select(RunIO).where(RunIO.artifact_id == version.id, RunIO.direction == "input"))
        }
        assert readers == {runs[spark_run].id, runs[dbt_run].id}
        (edge,) = s.exec(select(ColumnLineage).where(ColumnLineage.run_id == runs[spark_run].id))
        assert s.get(DatasetField, edge.input_field_id).name == "income"
        assert s.get(DatasetField, edge.output_field_id).name == "income_band"
        (audit,) = s.exec(select(AuditEvent).where(AuditEvent.action == "openlineage.ingest"))
        assert audit.actor == "ingester"
        recorded = json.loads(audit.payload)["data"]["events"]
        assert sorted((r[1], r[3].rsplit(":", 1)[1]) for r in recorded) == [
            ("COMPLETE", "2"), ("COMPLETE", "3"), ("FAIL", "4"), ("START", "1")]


def test_ingest_is_idempotent_and_start_then_complete_updates_the_run(
    sqlite_catalog: Catalog, tmp_path: Path, events: dict[str, Any]
) -> None:
    start, complete = events["airflow"]
    ol.ingest_openlineage(sqlite_catalog, _write_ndjson(tmp_path / "a.ndjson", [start]), "ingester")
    with sqlite_catalog.read() as s:
        (run,) = s.exec(select(Run))
        assert (run.status, run.ended_at) == ("RUNNING", None)
    both = _write_ndjson(tmp_path / "b.ndjson", [start, complete])
    report = ol.ingest_openlineage(sqlite_catalog, both, "ingester")
    assert (report.imported, report.duplicates) == (1, 1)
    again = ol.ingest_openlineage(sqlite_catalog, both, "ingester")
    assert (again.imported, again.duplicates) == (0, 2)
    with sqlite_catalog.read() as s:
        (run,) = s.exec(select(Run))
        assert run.status == "COMPLETED" and run.ended_at is not None
        assert len(list(s.exec(select(IngestedEvent)))) == 2
        assert len(list(s.exec(select(DatasetVersion)))) == 2  # raw input + customers: no duplicates
    late = ol.ingest_openlineage(
        sqlite_catalog,
        _write_ndjson(tmp_path / "c.ndjson", [{**start, "eventTime": "2024-05-01T10:00:01Z"}]),
        "ingester",
    )
    assert late.imported == 1
    with sqlite_catalog.read() as s:
        assert s.exec(select(Run)).one().status == "COMPLETED"  # a late START does not reopen the run


def test_invalid_lines_are_reported_with_their_line_number(
    sqlite_catalog: Catalog, tmp_path: Path, events: dict[str, Any]
) -> None:
    path = _write_ndjson(
        tmp_path / "mixed.ndjson",
        [*events["airflow"], events["spark"]],
        invalid={
            1: "{not json",
            3: json.dumps({"eventType": "START", "eventTime": "2024-01-01T00:00:00Z"}),
            4: json.dumps({**events["spark"], "eventType": "FINISHED"}),
        },
    )
    report = ol.ingest_openlineage(sqlite_catalog, path, "ingester")
    assert report.imported == 3
    assert [loc.rsplit(":", 1)[1] for loc, _ in report.invalid] == ["2", "4", "5"]
    reasons = [why for _, why in report.invalid]
    assert reasons[0].startswith("not valid JSON")
    assert reasons[1] == "run: required in a RunEvent (this event has `eventType`)"
    assert reasons[2].startswith("eventType: expected one of") and "FINISHED" in reasons[2]


def test_directory_of_json_files(sqlite_catalog: Catalog, tmp_path: Path, events: dict[str, Any]) -> None:
    folder = tmp_path / "events"
    folder.mkdir()
    for index, doc in enumerate([*events["airflow"], events["spark"]]):
        (folder / f"{index:03}.json").write_text(json.dumps(doc, indent=2))
    (folder / "notes.txt").write_text("ignored")
    report = ol.ingest_openlineage(sqlite_catalog, folder, "ingester")
    assert (report.read, report.imported, report.invalid) == (3, 3, [])


def test_upstream_lineage_reaches_the_warehouse_table(
    sqlite_catalog: Catalog, tmp_path: Path, events: dict[str, Any]
) -> None:
    """An Airflow task writes a table; our training step reads it: one dataset, one version, linked."""
    ol.ingest_openlineage(sqlite_catalog, _write_ndjson(tmp_path / "a.ndjson", events["airflow"]), "ingester")
    made = make_run(
        sqlite_catalog, input_identity=(WAREHOUSE, "analytics.public.customers"), input_hash="v42"
    )
    with sqlite_catalog.read() as s:
        assert len(list(s.exec(select(Dataset).where(Dataset.name == "analytics.public.customers")))) == 1
        (edge,) = s.exec(select(RunIO).where(RunIO.run_id == made.run_id, RunIO.direction == "input"))
        version = s.get(DatasetVersion, edge.artifact_id)
        producer = s.get(Run, version.produced_by_run_id)
        assert producer.run_uuid == events["runs"][0] and producer.producer == AIRFLOW
        event = ol.build_run_event(s, made.run_id, "COMPLETE")
    validate_event(event)
    assert (event["inputs"][0]["namespace"], event["inputs"][0]["name"]) == (
        WAREHOUSE,
        "analytics.public.customers",
    )


def test_ingest_after_our_run_reuses_our_dataset_and_version(
    sqlite_catalog: Catalog, tmp_path: Path, events: dict[str, Any]
) -> None:
    made = make_run(
        sqlite_catalog, input_identity=(WAREHOUSE, "analytics.public.customers"), input_hash="v42"
    )
    ol.ingest_openlineage(sqlite_catalog, _write_ndjson(tmp_path / "a.ndjson", events["airflow"]), "ingester")
    with sqlite_catalog.read() as s:
        (dataset,) = s.exec(select(Dataset).where(Dataset.name == "analytics.public.customers"))
        (version,) = s.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id))
        assert version.id == made.ids["v_in"]
        assert s.get(Run, version.produced_by_run_id).run_uuid == events["runs"][0]


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_ingest_exit_codes(
    gov_env: Path, events: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write_ndjson(gov_env / "good.ndjson", events["airflow"])
    assert main(["ingest", "openlineage", str(good)]) == 0
    out = capsys.readouterr()
    assert "imported 2" in out.out and out.err == ""
    bad = _write_ndjson(gov_env / "bad.ndjson", [events["spark"]], invalid={0: "[]"})
    assert main(["ingest", "openlineage", str(bad)]) == 2
    out = capsys.readouterr()
    expected = "expected a JSON object (an OpenLineage RunEvent, DatasetEvent or JobEvent)"
    assert out.err.strip() == f"gov: {bad}:1: {expected}"
    assert "imported 1" in out.out
    assert main(["ingest", "openlineage", str(gov_env / "missing.ndjson")]) == 2
    assert "missing.ndjson: no such file or directory" in capsys.readouterr().err


def test_cli_sync_without_and_with_a_transport(
    gov_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(gov_env))
    from governance.catalog import open_catalog

    make_run(open_catalog(), enqueue=("START", "COMPLETE"))
    assert main(["sync"]) == 0
    out = capsys.readouterr().out
    assert "outbox: 2 event(s) pending; no OpenLineage transport configured" in out
    (gov_env / "openlineage.yml").write_text(
        f"transport:\n  type: file\n  log_file_path: {gov_env / 'events.ndjson'}\n  append: true\n"
    )
    assert main(["sync", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["transport"], doc["sent"], doc["failed"], doc["pending"]) == ("file", 2, 0, 0)
    for line in (gov_env / "events.ndjson").read_text().splitlines():
        validate_event(json.loads(line))


def test_cli_as_a_real_subprocess(gov_env: Path, events: dict[str, Any]) -> None:
    path = _write_ndjson(gov_env / "lineage.ndjson", [*events["airflow"], events["spark"]])
    gov = [sys.executable, "-c", "from governance.cli import main; main()"]
    ingest = subprocess.run(
        [*gov, "ingest", "openlineage", str(path)],
        capture_output=True,
        text=True,
        cwd=gov_env,
        check=False,
        timeout=120,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert "imported 3" in ingest.stdout
    sync = subprocess.run(
        [*gov, "sync"],
        capture_output=True,
        text=True,
        cwd=gov_env,
        check=False,
        timeout=120,
        env={**_clean_env(), "HOME": str(gov_env)},
    )
    assert sync.returncode == 0, sync.stderr
    assert "outbox: 0 event(s) pending" in sync.stdout


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}


@pytest.mark.parametrize(("batch_size", "order"), [(1, "file"), (7, "shuffled"), (50, "reversed")])
def test_spark_style_runs_give_one_graph_whatever_the_batches(tmp_path: Path, batch_size: int, order: str) -> None:
    """The benchmark's workload (START then COMPLETE per run, inputs bound by time, column lineage on
    every output): runs new in a batch, runs whose START came in an earlier batch, and readers that
    arrive before their writers all give the graph of one batch in file order, every row bound."""
    import random

    from benchmarks.bench_ingest import write_events
    from governance.audit import verify_audit
    from tests._interop_support import canonical_graph

    path = tmp_path / "events.ndjson"
    count = write_events(path, 160, tables=6)
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    graphs = []
    for size, shuffled in ((1000, events), (batch_size, _ordered(events, order, random.Random(batch_size)))):
        catalog = Catalog(f"sqlite:///{tmp_path / f'{size}.db'}")
        try:
            report = ol.ingest_openlineage(catalog, shuffled, "ingester", batch_size=size, pause_gc=size == 7)
            assert (report.imported, report.invalid) == (count, [])
            assert verify_audit(catalog).ok
            graphs.append(canonical_graph(catalog))
            with catalog.read() as session:  # the same rows, not only the same sets of them
                graphs[-1]["rows"] = [len(session.exec(select(table.id)).all())
                                      for table in (DatasetVersion, DatasetField, RunIO, ColumnLineage)]
        finally:
            catalog.dispose()
    assert graphs[0]["lineage"] and graphs[0]["edges"]
    for graph in graphs:  # the orchestrator run has no events of its own: its start is the first child's seen
        graph["runs"] = {run for run in graph["runs"] if run[1] != ("airflow", "daily_etl")}
    for part, expected in graphs[0].items():
        assert graphs[1][part] == expected, part


def _ordered(events: list[dict[str, Any]], order: str, rng: Any) -> list[dict[str, Any]]:
    if order == "reversed":
        return events[::-1]
    if order == "shuffled":
        return rng.sample(events, len(events))
    return list(events)


def test_pause_gc_restores_the_collector(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    import gc

    from benchmarks.bench_ingest import write_events

    path = tmp_path / "events.ndjson"
    write_events(path, 6)
    assert gc.isenabled()
    ol.ingest_openlineage(sqlite_catalog, path, "ingester", batch_size=2, pause_gc=True)
    assert gc.isenabled()
    gc.disable()
    try:
        ol.ingest_openlineage(sqlite_catalog, path, "ingester", pause_gc=True)
        assert not gc.isenabled()  # a caller that had switched it off keeps it off
    finally:
        gc.enable()


def test_a_batch_inserts_the_fields_of_its_versions_together(sqlite_catalog: Catalog, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The fields of a batch's new versions are inserted with one statement (not one per version), in
    the order and positions the schemas give, and column lineage links the fields by name."""
    from benchmarks.bench_ingest import write_events
    from governance.audit import verify_audit
    from governance.openlineage._graph import GraphWriter

    path = tmp_path / "events.ndjson"
    count = write_events(path, 40, tables=6)
    calls: list[int] = []
    insert_fields = GraphWriter.insert_fields
    monkeypatch.setattr(GraphWriter, "insert_fields",
                        lambda self, rows: (calls.append(len(rows)), insert_fields(self, rows))[1])
    report = ol.ingest_openlineage(sqlite_catalog, path, "ingester")
    assert (report.imported, report.invalid) == (count, [])
    # the 20 outputs' 8 columns each in the first statement (with the columns column lineage names of
    # a version some run read before its writer arrived); the few later ones add such columns
    assert calls[0] >= 8 * 20 and len(calls) < 5
    assert verify_audit(sqlite_catalog).ok
    with sqlite_catalog.read() as session:
        fields = session.exec(select(DatasetField).order_by(DatasetField.id)).all()  # type: ignore[arg-type]
        by_id = {f.id: f for f in fields}
        lineage = session.exec(select(ColumnLineage)).all()
    for version in {f.dataset_version_id for f in fields}:
        mine = [f for f in fields if f.dataset_version_id == version]
        assert [(f.name, f.position) for f in mine] == [
            (name, i) for i, name in enumerate(
                ("id", "customer", "amount", "currency", "country", "segment", "score", "updated_at"))]
    assert lineage and all(by_id[row.input_field_id].name == by_id[row.output_field_id].name for row in lineage)


def test_a_run_new_in_a_batch_is_inserted_as_its_events_leave_it(sqlite_catalog: Catalog, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose START and COMPLETE are in one batch is inserted completed (not RUNNING, then updated);
    only the runs whose parent is set once ids are known are updated, and a START arriving after the
    COMPLETE, in a later batch, still moves nothing back."""
    from benchmarks.bench_ingest import write_events
    from governance.audit import verify_audit
    from governance.openlineage._graph import GraphWriter

    path = tmp_path / "events.ndjson"
    write_events(path, 40, tables=6)
    updated: list[int] = []
    update_many = GraphWriter.update_many
    monkeypatch.setattr(GraphWriter, "update_many", lambda self, table, columns, rows: (
        updated.extend(r["row_id"] for r in rows if table == "run"), update_many(self, table, columns, rows))[1])
    ol.ingest_openlineage(sqlite_catalog, path, "ingester")
    with sqlite_catalog.read() as session:
        orchestrator = session.exec(select(Job).where(Job.name == "daily_etl")).one().id
        runs = [r for r in session.exec(select(Run)).all() if r.job_id != orchestrator]
    children = {r.id for r in runs if r.parent_run_id is not None}
    assert len(runs) == 20 and len(children) == 2  # runs 0 and 10 have the orchestrator as parent
    assert set(updated) == children
    assert {r.status for r in runs} == {"COMPLETED"}
    assert all(r.ended_at is not None and r.ended_at > r.started_at for r in runs)
    assert verify_audit(sqlite_catalog).ok
    lines = path.read_text(encoding="utf-8").splitlines()
    complete, start = json.loads(lines[3]), json.loads(lines[2])
    started = dict(start, run={**start["run"], "runId": str(uuid.uuid4())})
    finished = dict(complete, run={**complete["run"], "runId": started["run"]["runId"]})
    ol.ingest_openlineage(sqlite_catalog, [finished], "ingester")
    ol.ingest_openlineage(sqlite_catalog, [started], "ingester")
    with sqlite_catalog.read() as session:
        late = session.exec(select(Run).where(Run.run_uuid == started["run"]["runId"])).one()
    assert late.status == "COMPLETED" and late.started_at < late.ended_at  # type: ignore[operator]


def test_an_importing_process_gets_a_larger_sqlite_page_cache(tmp_path: Path) -> None:
    """``pause_gc`` (a process that only imports) raises the SQLite connection's page cache, never lowers
    one set larger; a host application's import (the default) leaves the connection as it is."""
    from benchmarks.bench_ingest import write_events
    from governance.openlineage._ingest import IMPORT_CACHE_KIB

    path = tmp_path / "events.ndjson"
    write_events(path, 4)
    for pause_gc, before, after in ((False, None, -2000), (True, None, -IMPORT_CACHE_KIB),
                                    (True, -2 * IMPORT_CACHE_KIB, -2 * IMPORT_CACHE_KIB),
                                    (True, 100, -IMPORT_CACHE_KIB)):  # 100 pages
        catalog = Catalog(f"sqlite:///{tmp_path / f'{pause_gc}{before}.db'}")
        try:
            if before is not None:
                with catalog.engine.connect() as conn:
                    conn.exec_driver_sql(f"PRAGMA cache_size = {before:d}")
            ol.ingest_openlineage(catalog, path, "ingester", pause_gc=pause_gc)
            with catalog.engine.connect() as conn:  # the pool's one connection, which imported
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == after
        finally:
            catalog.dispose()
