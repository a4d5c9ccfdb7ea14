"""Events in the shapes real OpenLineage producers emit, and a canonical form of the catalog graph.

Written by hand after the producers' own integration-test events (not copied): the Spark integration
(Delta tables with ``version`` facets, ``columnLineage`` with transformation subtypes and dataset-level
entries, ``RUNNING`` events, a parent facet naming the Airflow task that launched the Spark app and
the root DAG run), Airflow (a DAG run and its task runs, parent facets), dbt (a command run with model
and test runs as children; test runs read the model with ``dataQualityAssertions``), Flink (a
streaming job over Kafka topics with ``START``/``RUNNING``/``COMPLETE``) and Marquez's example
lineage (``food_delivery``: a JobEvent and a DatasetEvent of spec 2.0, a failed run with
``errorMessage``, a read-and-write job, a source table whose schema gains a column between reads).

:func:`canonical_graph` describes what ingest stored without database ids or version numbers (which
depend on arrival order by design): runs by runId, dataset versions by their identity (the producer's
``datasetVersion``, else the run that wrote them, else what a reader observed), edges and column
lineage between those, and the set of versions of every dataset, so phantom versions show up too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from governance.catalog import (
    Catalog,
    ColumnLineage,
    Dataset,
    DatasetField,
    DatasetVersion,
    Job,
    Run,
    RunIO,
)

__all__ = ["T0", "canonical_graph", "ids", "producer_events"]

T0 = datetime(2024, 6, 3, 2, 0, tzinfo=UTC)
SPARK = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark"
AIRFLOW = "https://github.com/apache/airflow/tree/providers-openlineage/1.12.0"
DBT = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/dbt"
FLINK = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/flink"
MARQUEZ = "https://github.com/MarquezProject/marquez/blob/main/docker/metadata.json"
RUN_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
JOB_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"
DATASET_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"


def ids() -> dict[str, str]:
    names = ["dag", "extract", "transform", "spark", "load_customers", "dedupe", "dbt", "stg_orders",
             "stg_customers", "customer_orders", "dbt_test", "flink", "payments_1", "payments_2", "etl_fail"]
    return {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"interop/{name}")) for name in names}


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _facet(producer: str, body: dict[str, Any], schema: str = "x") -> dict[str, Any]:
    return {"_producer": producer, "_schemaURL": f"https://openlineage.io/spec/facets/{schema}", **body}


def _schema(producer: str, *columns: tuple[str, str]) -> dict[str, Any]:
    return _facet(producer, {"fields": [{"name": n, "type": t} for n, t in columns]}, "SchemaDatasetFacet.json")


def _version(producer: str, version: str) -> dict[str, Any]:
    return _facet(producer, {"datasetVersion": version}, "DatasetVersionDatasetFacet.json")


def _parent(producer: str, run_id: str, namespace: str, name: str,
            root: tuple[str, str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"run": {"runId": run_id}, "job": {"namespace": namespace, "name": name}}
    if root is not None:
        body["root"] = {"run": {"runId": root[0]}, "job": {"namespace": root[1], "name": root[2]}}
    return _facet(producer, body, "ParentRunFacet.json")


def _run_event(producer: str, event_type: str, minutes: float, run_id: str, job: tuple[str, str], *,
               inputs: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None,
               run_facets: dict[str, Any] | None = None, job_facets: dict[str, Any] | None = None,
               ) -> dict[str, Any]:
    return {
        "eventType": event_type, "eventTime": _at(minutes), "producer": producer, "schemaURL": RUN_SCHEMA,
        "run": {"runId": run_id, "facets": run_facets or {}},
        "job": {"namespace": job[0], "name": job[1], "facets": job_facets or {}},
        "inputs": inputs or [], "outputs": outputs or [],
    }


def _field(namespace: str, name: str, field: str, kind: str, subtype: str,
           description: str | None = None, masking: bool = False) -> dict[str, Any]:
    transformation: dict[str, Any] = {"type": kind, "subtype": subtype, "masking": masking}
    if description:
        transformation["description"] = description
    return {"namespace": namespace, "name": name, "field": field, "transformations": [transformation]}


def airflow_and_spark(run: dict[str, str]) -> list[dict[str, Any]]:
    dag = ("airflow-prod", "daily_orders")
    extract = ("airflow-prod", "daily_orders.extract_orders")
    transform = ("airflow-prod", "daily_orders.spark_enrich")
    spark_job = ("spark-prod", "orders_enrich.execute_merge_into_command_edge.tmp_delta_versioned_table")
    root = (run["dag"], *dag)
    orders_db = {"namespace": "postgres://db.prod:5432", "name": "shop.public.orders",
                 "facets": {"schema": _schema(AIRFLOW, ("id", "bigint"), ("customer_id", "bigint"),
                                              ("amount", "numeric"), ("status", "text"))}}
    raw = {"namespace": "s3://lake", "name": "raw/orders"}
    raw_out = {**raw, "facets": {"schema": _schema(AIRFLOW, ("id", "long"), ("customer_id", "long"),
                                                   ("amount", "decimal(10,2)"), ("status", "string"))},
               "outputFacets": {"outputStatistics": _facet(AIRFLOW, {"rowCount": 1200, "size": 48000})}}
    delta = {"namespace": "file", "name": "/tmp/delta/versioned_table"}
    delta_schema = _schema(SPARK, ("customer_id", "long"), ("order_count", "long"), ("revenue", "decimal(20,2)"),
                           ("last_status", "string"))
    lineage = _facet(SPARK, {
        "fields": {
            "customer_id": {"inputFields": [_field("s3://lake", "raw/orders", "customer_id", "DIRECT", "IDENTITY")]},
            "order_count": {"inputFields": [_field("s3://lake", "raw/orders", "id", "DIRECT", "AGGREGATION",
                                                   "count(id)")]},
            "revenue": {"inputFields": [
                _field("s3://lake", "raw/orders", "amount", "DIRECT", "AGGREGATION", "sum(amount)"),
                _field("file", "/tmp/delta/versioned_table", "revenue", "DIRECT", "TRANSFORMATION",
                       "target.revenue + source.amount"),
            ]},
            "last_status": {"inputFields": [
                _field("s3://lake", "raw/orders", "status", "DIRECT", "TRANSFORMATION", masking=True),
                {"namespace": "s3://lake", "field": "status"},  # no dataset name: cannot be linked
            ]},
        },
        "dataset": [
            _field("s3://lake", "raw/orders", "status", "INDIRECT", "FILTER", "status != 'cancelled'"),
            _field("file", "/tmp/delta/versioned_table", "customer_id", "INDIRECT", "JOIN"),
        ],
    }, "ColumnLineageDatasetFacet.json")
    spark_parent = _parent(SPARK, run["transform"], *transform, root=root)
    return [
        _run_event(AIRFLOW, "START", 0, run["dag"], dag),
        _run_event(AIRFLOW, "START", 1, run["extract"], extract, inputs=[orders_db],
                   run_facets={"parent": _parent(AIRFLOW, run["dag"], *dag, root=root)}),
        _run_event(AIRFLOW, "COMPLETE", 6, run["extract"], extract, inputs=[orders_db], outputs=[raw_out],
                   run_facets={"parent": _parent(AIRFLOW, run["dag"], *dag, root=root)}),
        _run_event(AIRFLOW, "START", 7, run["transform"], transform,
                   run_facets={"parent": _parent(AIRFLOW, run["dag"], *dag, root=root)}),
        _run_event(SPARK, "START", 8, run["spark"], spark_job, inputs=[raw, delta], outputs=[delta],
                   run_facets={"parent": spark_parent}),
        _run_event(SPARK, "RUNNING", 10, run["spark"], spark_job, inputs=[raw, delta], outputs=[delta],
                   run_facets={"parent": spark_parent}),
        _run_event(SPARK, "COMPLETE", 14, run["spark"], spark_job,
                   inputs=[{**raw, "facets": {"schema": raw_out["facets"]["schema"]}},
                           {**delta, "facets": {"schema": delta_schema, "version": _version(SPARK, "1")}}],
                   outputs=[{**delta, "facets": {"schema": delta_schema, "version": _version(SPARK, "2"),
                                                 "columnLineage": lineage}}],
                   run_facets={"parent": spark_parent}),
        _run_event(AIRFLOW, "COMPLETE", 15, run["transform"], transform,
                   run_facets={"parent": _parent(AIRFLOW, run["dag"], *dag, root=root)}),
        _run_event(AIRFLOW, "COMPLETE", 16, run["dag"], dag),
    ]


def read_write_job(run: dict[str, str]) -> list[dict[str, Any]]:
    """A job that writes a table and a later job that reads and rewrites it (no version facets)."""
    customers = {"namespace": "s3://lake", "name": "curated/customers"}
    schema = {"schema": _schema(SPARK, ("id", "long"), ("email", "string"))}
    load = ("spark-prod", "load_customers")
    dedupe = ("spark-prod", "dedupe_customers")
    return [
        _run_event(SPARK, "START", 20, run["load_customers"], load, outputs=[customers]),
        _run_event(SPARK, "COMPLETE", 24, run["load_customers"], load, outputs=[{**customers, "facets": schema}]),
        _run_event(SPARK, "START", 30, run["dedupe"], dedupe, inputs=[customers], outputs=[customers]),
        _run_event(SPARK, "COMPLETE", 33, run["dedupe"], dedupe, inputs=[{**customers, "facets": schema}],
                   outputs=[{**customers, "facets": {**schema, "columnLineage": _facet(SPARK, {"fields": {
                       "email": {"inputFields": [_field("s3://lake", "curated/customers", "email", "DIRECT",
                                                        "TRANSFORMATION", "lower(email)")]}}})}}]),
    ]


def dbt(run: dict[str, str]) -> list[dict[str, Any]]:
    ns = "postgres://warehouse:5432"
    command = ("dbt", "dbt-run-jaffle_shop")
    root = (run["dbt"], *command)
    parent = {"parent": _parent(DBT, run["dbt"], *command, root=root)}

    def table(name: str, *columns: tuple[str, str]) -> dict[str, Any]:
        return {"namespace": ns, "name": name, "facets": {"schema": _schema(DBT, *columns),
                                                          "dataSource": _facet(DBT, {"name": ns, "uri": ns})}}

    stg_orders = table("analytics.staging.stg_orders", ("order_id", "integer"), ("customer_id", "integer"))
    stg_customers = table("analytics.staging.stg_customers", ("customer_id", "integer"), ("name", "text"))
    marts = table("analytics.marts.customer_orders", ("customer_id", "integer"), ("name", "text"),
                  ("orders", "bigint"))
    model = ("dbt", "jaffle_shop.model.customer_orders")
    test = ("dbt", "jaffle_shop.test.not_null_customer_orders_customer_id")
    assertions = {"dataQualityAssertions": _facet(DBT, {"assertions": [
        {"assertion": "not_null", "success": True, "column": "customer_id"}]})}
    return [
        _run_event(DBT, "START", 40, run["dbt"], command, job_facets={
            "jobType": _facet(DBT, {"processingType": "BATCH", "integration": "DBT", "jobType": "JOB"})}),
        _run_event(DBT, "START", 41, run["stg_orders"], ("dbt", "jaffle_shop.model.stg_orders"),
                   run_facets=parent),
        _run_event(DBT, "COMPLETE", 42, run["stg_orders"], ("dbt", "jaffle_shop.model.stg_orders"),
                   outputs=[stg_orders], run_facets=parent),
        _run_event(DBT, "START", 41, run["stg_customers"], ("dbt", "jaffle_shop.model.stg_customers"),
                   run_facets=parent),
        _run_event(DBT, "COMPLETE", 42.5, run["stg_customers"], ("dbt", "jaffle_shop.model.stg_customers"),
                   outputs=[stg_customers], run_facets=parent),
        _run_event(DBT, "START", 43, run["customer_orders"], model, run_facets=parent),
        _run_event(DBT, "COMPLETE", 45, run["customer_orders"], model, inputs=[stg_orders, stg_customers],
                   outputs=[{**marts, "facets": {**marts["facets"], "columnLineage": _facet(DBT, {"fields": {
                       "name": {"inputFields": [_field(ns, "analytics.staging.stg_customers", "name", "DIRECT",
                                                       "IDENTITY")]},
                       "orders": {"inputFields": [_field(ns, "analytics.staging.stg_orders", "order_id", "DIRECT",
                                                         "AGGREGATION", "count(order_id)")]},
                   }})}}], run_facets=parent),
        _run_event(DBT, "START", 46, run["dbt_test"], test, run_facets=parent),
        _run_event(DBT, "COMPLETE", 47, run["dbt_test"], test,
                   inputs=[{**marts, "inputFacets": assertions}], run_facets=parent),
        _run_event(DBT, "COMPLETE", 48, run["dbt"], command),
    ]


def flink(run: dict[str, str]) -> list[dict[str, Any]]:
    job = ("flink-jobs", "fraud_detector")
    topic_in = {"namespace": "kafka://broker:9092", "name": "payments",
                "facets": {"schema": _schema(FLINK, ("payment_id", "STRING"), ("amount", "DOUBLE"))}}
    topic_out = {"namespace": "kafka://broker:9092", "name": "alerts",
                 "facets": {"schema": _schema(FLINK, ("payment_id", "STRING"), ("score", "DOUBLE"))}}
    job_facets = {"jobType": _facet(FLINK, {"processingType": "STREAMING", "integration": "FLINK",
                                            "jobType": "JOB"})}
    return [
        _run_event(FLINK, "START", 50, run["flink"], job, inputs=[topic_in], outputs=[topic_out],
                   job_facets=job_facets),
        _run_event(FLINK, "RUNNING", 55, run["flink"], job, inputs=[topic_in], outputs=[topic_out],
                   job_facets=job_facets),
        _run_event(FLINK, "COMPLETE", 58, run["flink"], job, inputs=[topic_in], outputs=[topic_out],
                   job_facets=job_facets),
    ]


def marquez(run: dict[str, str]) -> list[dict[str, Any]]:
    ns = "postgres://food_delivery:5432"
    payments = ("food_delivery", "etl_payments")
    source_v1 = {"namespace": ns, "name": "food_delivery.public.payments",
                 "facets": {"schema": _schema(MARQUEZ, ("id", "INTEGER"), ("order_id", "INTEGER"))}}
    source_v2 = {"namespace": ns, "name": "food_delivery.public.payments",
                 "facets": {"schema": _schema(MARQUEZ, ("id", "INTEGER"), ("order_id", "INTEGER"),
                                              ("amount_cents", "INTEGER"))}}
    sink = {"namespace": ns, "name": "food_delivery.public.payments_by_order"}
    gained = _facet(MARQUEZ, {"fields": {"total_cents": {"inputFields": [
        _field(ns, "food_delivery.public.payments", "amount_cents", "DIRECT", "AGGREGATION")]}}})
    return [
        {"eventTime": _at(-60), "producer": MARQUEZ, "schemaURL": JOB_SCHEMA,
         "job": {"namespace": "food_delivery", "name": "etl_payments", "facets": {
             "documentation": _facet(MARQUEZ, {"description": "Sums payments by order."})}},
         "inputs": [{"namespace": ns, "name": "food_delivery.public.payments"}], "outputs": [sink]},
        {"eventTime": _at(-60), "producer": MARQUEZ, "schemaURL": DATASET_SCHEMA,
         "dataset": {"namespace": ns, "name": "food_delivery.public.payments", "facets": {
             "documentation": _facet(MARQUEZ, {"description": "Payments of food orders."})}}},
        _run_event(MARQUEZ, "START", 60, run["payments_1"], payments, inputs=[source_v1]),
        _run_event(MARQUEZ, "COMPLETE", 61, run["payments_1"], payments, inputs=[source_v1],
                   outputs=[{**sink, "facets": {"schema": _schema(MARQUEZ, ("order_id", "INTEGER"))}}]),
        _run_event(MARQUEZ, "START", 90, run["payments_2"], payments, inputs=[source_v2]),
        _run_event(MARQUEZ, "COMPLETE", 92, run["payments_2"], payments, inputs=[source_v2],
                   outputs=[{**sink, "facets": {"schema": _schema(MARQUEZ, ("order_id", "INTEGER"),
                                                                  ("total_cents", "INTEGER")),
                                                "columnLineage": gained}}]),
        _run_event(MARQUEZ, "START", 95, run["etl_fail"], ("food_delivery", "etl_delivery_times"),
                   inputs=[{"namespace": ns, "name": "food_delivery.public.deliveries"}]),
        _run_event(MARQUEZ, "FAIL", 96, run["etl_fail"], ("food_delivery", "etl_delivery_times"),
                   inputs=[{"namespace": ns, "name": "food_delivery.public.deliveries"}],
                   run_facets={"errorMessage": _facet(MARQUEZ, {
                       "message": "relation deliveries does not exist", "programmingLanguage": "SQL"})}),
    ]


def producer_events() -> list[dict[str, Any]]:
    run = ids()
    return [*airflow_and_spark(run), *read_write_job(run), *dbt(run), *flink(run), *marquez(run)]


# ------------------------------------------------------------------------------------ canonical form
def canonical_graph(catalog: Catalog) -> dict[str, Any]:
    """The catalog's lineage as plain sets with no database ids or version numbers."""
    with catalog.read() as s:
        jobs = {j.id: (j.namespace, j.name) for j in s.exec(select(Job))}
        runs = {r.id: r for r in s.exec(select(Run))}
        uuids = {r.id: r.run_uuid for r in runs.values()}
        datasets = {d.id: (d.namespace, d.name, d.uri) for d in s.exec(select(Dataset))}
        fields = {f.id: (f.dataset_version_id, f.name) for f in s.exec(select(DatasetField))}
        versions: dict[int, tuple[Any, ...]] = {}
        for v in s.exec(select(DatasetVersion)):
            if v.content_hash is not None:
                who: tuple[Any, ...] = ("version", v.content_hash)
            elif v.produced_by_run_id is not None:
                who = ("written by", uuids[v.produced_by_run_id])
            else:
                names = tuple(f["name"] for f in v.schema_fields or [])
                who = (v.coverage, v.created_at.replace(tzinfo=None).isoformat(), names)
            versions[v.id] = (datasets[v.dataset_id][:2], who)
        version_fields = {}
        for version_id, name in fields.values():
            version_fields.setdefault(versions[version_id], set()).add(name)
        edges = {(uuids[e.run_id], e.direction, versions[e.artifact_id], e.binding)
                 for e in s.exec(select(RunIO)) if e.artifact_kind == "dataset"}
        lineage = set()
        for c in s.exec(select(ColumnLineage)):
            out = (versions[fields[c.output_field_id][0]], fields[c.output_field_id][1]) if c.output_field_id \
                else (versions[c.output_version_id], None)
            source = fields[c.input_field_id]
            lineage.add((uuids[c.run_id], out, (versions[source[0]], source[1]), c.transformation, c.subtype,
                         c.description, c.masking))
        return {
            "runs": {(r.run_uuid, jobs[r.job_id], r.status, r.started_at.replace(tzinfo=None).isoformat(),
                      r.ended_at.replace(tzinfo=None).isoformat() if r.ended_at else None,
                      uuids.get(r.parent_run_id) if r.parent_run_id else None, r.error_message)
                     for r in runs.values()},
            "datasets": set(datasets.values()),
            "versions": set(versions.values()),
            "fields": {k: frozenset(v) for k, v in version_fields.items()},
            "edges": edges,
            "lineage": lineage,
        }
