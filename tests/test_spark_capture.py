"""``@gov.step`` captures Spark DataFrames: schema, optional row count, and a version identity (the Delta
snapshot version, else plan and file fingerprints); a decorated Spark pipeline shows in ``gov lineage``
with its Delta versions, named as the OpenLineage Spark integration names tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

import governance as gov
import governance.openlineage as ol
from governance.catalog import Dataset, DatasetVersion, Run, open_catalog
from governance.cli import main
from governance.errors import InputError
from governance.lineage import capture_adapter, dataset_key, delta_snapshot, spark_identity
from governance.lineage._adapters import CaptureRole
from governance.spark import read_table
from tests._spark_support import spark
from tests.test_openlineage_support import require_spec, validate_event

__all__ = ["spark"]


def _frame(n: int, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"id": range(offset, offset + n), "income": [float(i % 97) for i in range(n)],
                         "sex": ["F" if i % 3 else "M" for i in range(n)], "y": [i % 2 for i in range(n)]})


@pytest.fixture
def delta_table(tmp_path: Path) -> Path:
    import deltalake

    path = tmp_path / "lake" / "applicants"
    deltalake.write_deltalake(str(path), _frame(300))
    deltalake.write_deltalake(str(path), _frame(200, 300), mode="append")  # version 1
    return path


def _role(direction: str = "input") -> CaptureRole:
    return CaptureRole(job="tests.job", name="raw", direction=direction, namespace="default")


def test_delta_snapshot_identity_and_naming(spark: Any, delta_table: Path) -> None:
    df = read_table(spark, delta_table)
    ident = spark_identity(df)
    assert ident.kind == "delta" and ident.delta_version == 1 and ident.plain_scan
    assert ident.content_hash.startswith("delta:v1:")
    old = read_table(spark, delta_table, version=0)
    assert spark_identity(old).delta_version == 0  # found by walking the _delta_log back
    cap = capture_adapter(df, _role())
    assert (cap.namespace, cap.name) == ("file", str(delta_table))  # OpenLineage Spark naming
    assert (cap.content_hash, cap.hash_algo, cap.coverage) == ("1", "delta-version", "snapshot")
    assert [f["name"] for f in cap.fields] == ["id", "income", "sex", "y"]
    assert [f["dtype"] for f in cap.fields] == ["bigint", "double", "string", "bigint"]
    assert cap.row_count is None  # counting runs a job: off unless asked
    filtered = df.filter("income > 10")
    out = capture_adapter(filtered, _role("output"))
    assert out.name == "tests.job.raw" and out.content_hash.startswith("delta:v1:")  # derived: not the table
    assert out.content_hash != ident.content_hash  # the plan is part of a derived frame's identity
    assert dataset_key(filtered, "input").content_hash == "1"  # as an input it reads table version 1


def test_row_count_is_configurable(spark: Any, delta_table: Path) -> None:
    spark.conf.set("spark.governance.rowCount", "true")
    try:
        cap = capture_adapter(read_table(spark, delta_table), _role())
    finally:
        spark.conf.unset("spark.governance.rowCount")
    assert cap.row_count == 500


def test_plan_and_files_identity_changes_with_file_or_plan(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "plain"
    path.mkdir()
    _frame(100).to_parquet(path / "part-0.parquet", index=False)
    df = spark.read.parquet(str(path))
    first = spark_identity(df)
    assert first.kind == "plan+files"
    assert first.coverage == "metadata" and first.files[0]["size"] > 0
    assert spark_identity(spark.read.parquet(str(path))).content_hash == first.content_hash  # stable
    assert spark_identity(df.filter("y = 1")).content_hash != first.content_hash
    time.sleep(0.01)
    _frame(101).to_parquet(path / "part-0.parquet", index=False)  # rewritten: size and mtime change
    os.utime(path / "part-0.parquet", (time.time() + 5, time.time() + 5))
    assert spark_identity(spark.read.parquet(str(path))).content_hash != first.content_hash
    cap = capture_adapter(df, _role())
    assert (cap.namespace, cap.name, cap.hash_algo) == ("file", str(path), "spark-plan-files")


def test_delta_reader_features_are_refused(spark: Any, tmp_path: Path) -> None:
    import deltalake

    path = tmp_path / "dv"
    deltalake.write_deltalake(str(path), _frame(10), configuration={"delta.enableDeletionVectors": "true"})
    snap = delta_snapshot(path)
    if "deletionVectors" not in snap.reader_features:
        pytest.skip("this deltalake version does not write deletion-vector tables")
    with pytest.raises(InputError, match="needs reader features deletionVectors"):
        read_table(spark, path)


def test_decorated_spark_pipeline_in_gov_lineage(spark: Any, delta_table: Path, gov_env: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    require_spec()

    @gov.step(kind="feature")
    def features(raw: Any) -> Any:
        return raw.withColumn("income_k", raw.income / 1000.0)

    @gov.step(kind="training", model="spark-scorer")
    def train(table: Any) -> LogisticRegression:
        sample = table.select("income_k", "y").toArrow().to_pandas()  # small test table
        return LogisticRegression().fit(sample[["income_k"]], sample["y"])

    train(features(read_table(spark, delta_table)))
    import deltalake

    deltalake.write_deltalake(str(delta_table), _frame(50, 500).assign(y=1), mode="append")  # version 2
    train(features(read_table(spark, delta_table)))

    catalog = open_catalog()
    with catalog.read() as session:
        versions = session.execute(
            sa.select(DatasetVersion.content_hash, DatasetVersion.hash_algo)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(Dataset.namespace == "file", Dataset.name == str(delta_table))
            .order_by(DatasetVersion.version)
        ).all()
        run_id = session.execute(sa.select(Run.id).order_by(Run.id)).scalars().first()
        event = ol.build_run_event(session, run_id, "COMPLETE")
    assert [tuple(v) for v in versions] == [("1", "delta-version"), ("2", "delta-version")]
    validate_event(event)
    (inp,) = event["inputs"]
    assert (inp["namespace"], inp["name"]) == ("file", str(delta_table))
    assert inp["facets"]["version"]["datasetVersion"] == "1"  # what the Spark integration sends for Delta

    assert main(["lineage", "spark-scorer@2", "--upstream"]) == 0
    text = capsys.readouterr().out
    assert f"[dataset] {delta_table}@2 Delta version 2" in text
    assert main(["lineage", "spark-scorer@1", "--upstream", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    tables = [n for n in doc["nodes"] if n.get("attrs", n).get("name") == str(delta_table)]
    assert [n.get("attrs", n)["content_hash"] for n in tables] == ["1"]


def test_missing_pyspark_is_one_line_config_error(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['pyspark'] = None; sys.modules['pyspark.sql'] = None\n"
            "from governance.spark import require_pyspark\n"
            "try:\n    require_pyspark()\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "ConfigError the Spark engine needs pyspark: pip install 'ml-governance[spark]'"
    code = ("import sys; import governance.lineage, governance.spark; "
            "print('pyspark' in sys.modules, 'deltalake' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"  # importing never loads pyspark or deltalake


def test_step_joins_the_table_version_a_spark_job_reported(spark: Any, delta_table: Path, gov_env: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """An OpenLineage event from a Spark job that wrote Delta version 1 (ingested first) and a step that
    reads version 1 meet on one dataset version: lineage runs Spark job -> table@v1 -> model."""
    producer = "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/spark"
    event = {
        "eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z",
        "run": {"runId": "01890000-0000-7000-8000-00000000abcd"},
        "job": {"namespace": "spark_cluster", "name": "etl.write_applicants"},
        "inputs": [],
        "outputs": [{"namespace": "file", "name": str(delta_table), "facets": {"version": {
            "_producer": producer,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json",
            "datasetVersion": "1"}}}],
        "producer": producer,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    events = gov_env / "spark-events.ndjson"
    events.write_text(json.dumps(event) + "\n", encoding="utf-8")
    assert main(["ingest", "openlineage", str(events)]) == 0
    capsys.readouterr()

    @gov.step(kind="training", model="joined-scorer")
    def train(table: Any) -> LogisticRegression:
        sample = table.select("income", "y").toArrow().to_pandas()
        return LogisticRegression().fit(sample[["income"]], sample["y"])

    train(read_table(spark, delta_table))
    with open_catalog().read() as session:
        rows = session.execute(
            sa.select(DatasetVersion.version, DatasetVersion.content_hash)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(Dataset.namespace == "file", Dataset.name == str(delta_table))
        ).all()
    assert [tuple(r) for r in rows] == [(1, "1")]  # one version: the Spark job's output is the step's input
    assert main(["lineage", "joined-scorer@1", "--upstream"]) == 0
    text = capsys.readouterr().out
    assert f"[dataset] {delta_table}@1 1 (table)" in text  # the version row the ingest created
    assert "[run] etl.write_applicants" in text
