"""Ingest of what real producers send (Spark, Airflow, dbt, Flink, Marquez's examples), in any order.

The events are written by hand in the shapes those integrations emit (``tests/_interop_support.py``)
and fed in file order, reversed, in seeded shuffles and in batches of one or three events (so that
versions arrive in later transactions than their readers): the stored graph is the same every time.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

import governance as gov
from governance import openlineage as ol
from governance.catalog import Catalog, ColumnLineage, Dataset, DatasetField, DatasetVersion, Job, Run, RunIO
from governance.catalog._graph import upstream
from governance.cli import main
from tests._interop_support import canonical_graph, ids, producer_events


def _ingest(catalog: Catalog, events: list[dict[str, Any]], batch_size: int = 1000) -> ol.IngestReport:
    report = ol.ingest_openlineage(catalog, events, "ingester", batch_size=batch_size)
    assert report.invalid == []
    return report


def _fresh(tmp_path: Path, name: str) -> Catalog:
    return Catalog(f"sqlite:///{tmp_path / f'{name}.db'}")


@pytest.fixture(scope="module")
def in_file_order(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    catalog = _fresh(tmp_path_factory.mktemp("order"), "ordered")
    try:
        _ingest(catalog, producer_events())
        return canonical_graph(catalog)
    finally:
        catalog.dispose()


@pytest.mark.parametrize(("seed", "batch_size"), [("reversed", 1000), (1, 1000), (2, 1), (3, 3), (4, 7),
                                                  ("reversed", 1)])
def test_the_graph_does_not_depend_on_arrival_order(
    tmp_path: Path, in_file_order: dict[str, Any], seed: int | str, batch_size: int
) -> None:
    events = producer_events()
    if seed == "reversed":
        events.reverse()
    else:
        random.Random(seed).shuffle(events)
    catalog = _fresh(tmp_path, "shuffled")
    try:
        _ingest(catalog, events, batch_size)
        graph = canonical_graph(catalog)
    finally:
        catalog.dispose()
    for part, expected in in_file_order.items():
        assert graph[part] == expected, part


def test_the_graph_does_not_depend_on_arrival_order_on_every_backend(
    catalog: Catalog, in_file_order: dict[str, Any]
) -> None:
    events = producer_events()
    random.Random(5).shuffle(events)
    _ingest(catalog, events, 4)
    graph = canonical_graph(catalog)
    for part, expected in in_file_order.items():
        assert graph[part] == expected, part


def test_what_the_producers_events_become(sqlite_catalog: Catalog) -> None:
    report = _ingest(sqlite_catalog, producer_events())
    run = ids()
    assert report.kinds == {"run": 32, "job": 1, "dataset": 1}
    assert report.unlinked == {"columnLineage input field without namespace, name and field": 1}
    graph = canonical_graph(sqlite_catalog)
    with sqlite_catalog.read() as s:
        runs = {r.run_uuid: r for r in s.exec(select(Run))}
        by_id = {r.id: r.run_uuid for r in runs.values()}
        # Spark run -> Airflow task -> DAG run: three deep, from the parent facets
        assert by_id[runs[run["spark"]].parent_run_id] == run["transform"]
        assert by_id[runs[run["transform"]].parent_run_id] == run["dag"]
        assert runs[run["dag"]].parent_run_id is None
        assert runs[run["etl_fail"]].status == "FAILED"
        assert runs[run["etl_fail"]].error_message == "relation deliveries does not exist"
        assert runs[run["flink"]].status == "COMPLETED"
        delta = s.exec(select(Dataset).where(Dataset.name == "/tmp/delta/versioned_table")).one()
        assert (delta.namespace, delta.uri) == ("file", "file:///tmp/delta/versioned_table")
        assert {d.uri for d in s.exec(select(Dataset).where(Dataset.namespace == "s3://lake"))} == {
            "s3://lake/raw/orders", "s3://lake/curated/customers"}
        payments = s.exec(select(Dataset).where(Dataset.name == "food_delivery.public.payments")).one()
        assert payments.description == "Payments of food orders."  # from the DatasetEvent
        job = s.exec(select(Job).where(Job.name == "etl_payments")).one()
        assert job.description == "Sums payments by order."  # from the JobEvent
    delta_key = ("file", "/tmp/delta/versioned_table")
    # the Delta versions: the MERGE read version 1 and wrote version 2; no other version of the table
    assert {v for v in graph["versions"] if v[0] == delta_key} == {
        (delta_key, ("version", "1")), (delta_key, ("version", "2"))}
    assert (run["spark"], "input", (delta_key, ("version", "1")), None) in graph["edges"]
    assert (run["spark"], "output", (delta_key, ("version", "2")), None) in graph["edges"]
    # a job that reads and writes one table reads the version before its own output: no self-loop
    customers = ("s3://lake", "curated/customers")
    loaded = (customers, ("written by", run["load_customers"]))
    deduped = (customers, ("written by", run["dedupe"]))
    assert (run["dedupe"], "input", loaded, "time") in graph["edges"]
    assert (run["dedupe"], "output", deduped, None) in graph["edges"]
    assert not any(e[0] == run["dedupe"] and e[1] == "input" and e[2] == deduped for e in graph["edges"])
    # the read of raw/orders (no version facet) is bound to what the Airflow task wrote before it
    raw = (("s3://lake", "raw/orders"), ("written by", run["extract"]))
    assert (run["spark"], "input", raw, "time") in graph["edges"]


def test_column_lineage_keeps_type_subtype_masking_and_dataset_level_entries(sqlite_catalog: Catalog) -> None:
    _ingest(sqlite_catalog, producer_events())
    graph = canonical_graph(sqlite_catalog)
    run = ids()
    v1 = (("file", "/tmp/delta/versioned_table"), ("version", "1"))
    v2 = (("file", "/tmp/delta/versioned_table"), ("version", "2"))
    raw = (("s3://lake", "raw/orders"), ("written by", run["extract"]))
    spark = {row[1:] for row in graph["lineage"] if row[0] == run["spark"]}
    assert spark == {
        ((v2, "customer_id"), (raw, "customer_id"), "DIRECT", "IDENTITY", None, False),
        ((v2, "order_count"), (raw, "id"), "DIRECT", "AGGREGATION", "count(id)", False),
        ((v2, "revenue"), (raw, "amount"), "DIRECT", "AGGREGATION", "sum(amount)", False),
        ((v2, "revenue"), (v1, "revenue"), "DIRECT", "TRANSFORMATION", "target.revenue + source.amount", False),
        ((v2, "last_status"), (raw, "status"), "DIRECT", "TRANSFORMATION", None, True),
        ((v2, None), (raw, "status"), "INDIRECT", "FILTER", "status != 'cancelled'", False),
        ((v2, None), (v1, "customer_id"), "INDIRECT", "JOIN", None, False),
    }


def test_a_changed_schema_is_a_new_version_and_the_gained_column_keeps_its_lineage(
    sqlite_catalog: Catalog,
) -> None:
    _ingest(sqlite_catalog, producer_events())
    graph = canonical_graph(sqlite_catalog)
    run = ids()
    source = ("postgres://food_delivery:5432", "food_delivery.public.payments")
    seen = {v for v in graph["versions"] if v[0] == source}
    assert {v[1][2] for v in seen} == {("id", "order_id"), ("id", "order_id", "amount_cents")}
    assert {v[1][0] for v in seen} == {"observed"}
    (gained,) = [row for row in graph["lineage"] if row[0] == run["payments_2"]]
    assert gained[2][1] == "amount_cents" and gained[2][0][1][2] == ("id", "order_id", "amount_cents")
    assert gained[1][1] == "total_cents" and gained[4] == "AGGREGATION"


def test_a_run_id_of_two_jobs_is_refused_with_its_location(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    first, second = producer_events()[1:3]  # the extract task's START and COMPLETE
    thief = {**second, "eventTime": "2024-06-03T03:00:00Z", "job": {"namespace": "other", "name": "other_job"}}
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(json.dumps(e) for e in (first, thief, second)) + "\n", encoding="utf-8")
    report = ol.ingest_openlineage(sqlite_catalog, path, "ingester")
    assert report.imported == 2
    ((location, reason),) = report.invalid
    assert location == f"{path}:2"
    assert reason.startswith(f"run.runId: {ids()['extract']} is already a run of job "
                             "airflow-prod/daily_orders.extract_orders")
    assert reason.endswith("one runId never spans two jobs, so this event is refused, not merged")
    with sqlite_catalog.read() as s:
        assert s.exec(select(Job).where(Job.name == "other_job")).first() is not None  # named, but no run
        (extract,) = s.exec(select(Run).where(Run.run_uuid == ids()["extract"]))
        assert s.get(Job, extract.job_id).name == "daily_orders.extract_orders"


@pytest.mark.parametrize(("change", "reason"), [
    (lambda e: e["run"].update(runId="run-42"), "run.runId: expected a UUID, got 'run-42'"),
    (lambda e: e["inputs"][0].update(namespace=""), "inputs[0].namespace: expected a non-empty string"),
    (lambda e: e["outputs"][0].pop("name"), "outputs[0].name: expected a non-empty string"),
    (lambda e: e["inputs"][0].update(facets=[]), "inputs[0].facets: expected an object"),
    (lambda e: e["job"].pop("namespace"), "job.namespace: expected a non-empty string"),
    (lambda e: e.pop("run"), "run: required in a RunEvent (this event has `eventType`)"),
    (lambda e: e.update(eventTime="yesterday"), "eventTime: expected an ISO 8601 date-time, got 'yesterday'"),
    (lambda e: e["run"]["facets"]["parent"]["run"].update(runId="x"),
     "run.facets.parent.run.runId: expected a UUID, got 'x'"),
])
def test_errors_name_the_json_path(sqlite_catalog: Catalog, change: Any, reason: str) -> None:
    event = json.loads(json.dumps(producer_events()[2]))
    change(event)
    report = ol.ingest_openlineage(sqlite_catalog, [event], "ingester")
    assert report.invalid == [("events[0]", reason)]


def test_a_json_array_a_pretty_document_and_a_directory(sqlite_catalog: Catalog, tmp_path: Path) -> None:
    events = producer_events()
    folder = tmp_path / "events"
    folder.mkdir()
    (folder / "a_metadata.json").write_text(json.dumps(events[:20], indent=2), encoding="utf-8")  # Marquez
    (folder / "b_one.json").write_text(json.dumps(events[20], indent=2), encoding="utf-8")
    (folder / "c_two.json").write_text(json.dumps(events[21], indent=2) + "\n" + json.dumps(events[22], indent=2),
                                       encoding="utf-8")
    (folder / "d_rest.ndjson").write_text("\n".join(json.dumps(e) for e in events[23:]) + "\n", encoding="utf-8")
    (folder / "e_bad.json").write_text(json.dumps([events[0], {"eventTime": "2024-06-03T00:00:00Z"}]),
                                       encoding="utf-8")
    report = ol.ingest_openlineage(sqlite_catalog, folder, "ingester")
    assert report.read == len(events) + 2
    assert report.imported == len(events)
    assert report.duplicates == 1
    assert report.invalid == [(f"{folder / 'e_bad.json'}[1]", "producer: expected a non-empty string")]


def test_parsed_events_and_idempotence(sqlite_catalog: Catalog) -> None:
    events = producer_events()
    first = ol.ingest_openlineage(sqlite_catalog, events[0], "ingester")
    assert (first.read, first.imported) == (1, 1)
    again = ol.ingest_openlineage(sqlite_catalog, iter(events), "ingester")
    assert (again.imported, again.duplicates) == (len(events) - 1, 1)
    before = canonical_graph(sqlite_catalog)
    assert ol.ingest_openlineage(sqlite_catalog, events, "ingester").duplicates == len(events)
    assert canonical_graph(sqlite_catalog) == before


def test_a_decorated_step_reading_a_spark_table_links_to_the_spark_version(
    gov_env: Path, tmp_path: Path
) -> None:
    table = tmp_path / "delta" / "versioned_table"
    (table / "_delta_log").mkdir(parents=True)
    (table / "part-0000.parquet").write_bytes(b"PAR1 data written by spark PAR1")
    (table / "_delta_log" / "00000000000000000002.json").write_text("{}", encoding="utf-8")
    events = [e for e in producer_events() if "versioned_table" in json.dumps(e) or e.get("job", {}).get("name") ==
              "daily_orders.extract_orders"]
    text = json.dumps(events).replace("/tmp/delta/versioned_table", str(table))
    catalog = gov.open_catalog()
    _ingest(catalog, json.loads(text))

    @gov.step(kind="training", model="orders-model")
    def train(source: gov.Dataset) -> Any:
        from sklearn.dummy import DummyClassifier

        return DummyClassifier().fit([[0], [1]], [0, 1])

    train(gov.Dataset(table.as_uri()))
    with catalog.read() as s:
        (step_run,) = s.exec(select(Run).where(Run.producer.is_(None)))  # type: ignore[union-attr]
        (edge,) = s.exec(select(RunIO).where(RunIO.run_id == step_run.id, RunIO.direction == "input"))
        version = s.get(DatasetVersion, edge.artifact_id)
        assert (version.content_hash, version.hash_algo) == ("2", "openlineage")
        from governance.catalog import ModelVersion

        (model_version,) = s.exec(select(ModelVersion))
        graph = upstream(s, "model", int(model_version.id or 0))
        labels = {n.label for n in graph.nodes}
    assert any("orders_enrich" in label for label in labels)  # the Spark job
    assert any("extract_orders" in label for label in labels)  # and the Airflow task before it
    assert any("shop.public.orders" in label for label in labels)  # back to the source table


def test_gov_lineage_accepts_a_dataset(gov_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = gov_env / "events.json"
    path.write_text(json.dumps(producer_events()), encoding="utf-8")
    assert main(["ingest", "openlineage", str(path)]) == 0
    out = capsys.readouterr().out
    assert "imported 34 (1 dataset, 1 job, 32 run)" in out
    assert "not linked: 1 x columnLineage input field without namespace, name and field" in out
    assert main(["lineage", "file:///tmp/delta/versioned_table", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    labels = {n["label"] for n in doc["nodes"]}
    assert any("raw/orders" in label for label in labels)
    assert any("shop.public.orders" in label for label in labels)
    assert main(["lineage", "s3://lake/raw/orders@1", "--downstream", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert any("versioned_table" in n["label"] for n in doc["nodes"])
    assert main(["lineage", "s3://lake/nothing"]) == 2
    assert "no dataset 's3://lake/nothing'" in capsys.readouterr().err


def test_dataset_and_job_events_without_runs(sqlite_catalog: Catalog) -> None:
    events = [e for e in producer_events() if "run" not in e]
    report = _ingest(sqlite_catalog, events)
    assert report.kinds == {"dataset": 1, "job": 1}
    with sqlite_catalog.read() as s:
        assert s.exec(select(Run)).first() is None
        assert {d.name for d in s.exec(select(Dataset))} == {
            "food_delivery.public.payments", "food_delivery.public.payments_by_order"}
        assert s.exec(select(DatasetVersion)).first() is None
        assert s.exec(select(ColumnLineage)).first() is None
        assert s.exec(select(DatasetField)).first() is None


def test_run_ids_are_stored_in_canonical_form(sqlite_catalog: Catalog) -> None:
    event = json.loads(json.dumps(producer_events()[0]))
    upper = str(uuid.uuid4()).upper()
    event["run"]["runId"] = upper
    _ingest(sqlite_catalog, [event])
    with sqlite_catalog.read() as s:
        assert s.exec(select(Run.run_uuid)).one() == upper.lower()
