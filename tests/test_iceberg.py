"""Iceberg tables are versioned by their snapshot id: a pyiceberg table, a path to a table or to one of
its metadata files, and a Spark DataFrame reading a snapshot's data files all name the same table and
version, as the OpenLineage Spark integration does (tables made by pyiceberg with a SQL catalog on
SQLite; Spark reads them without its Iceberg runtime jar)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import governance as gov
import governance.openlineage as ol
from governance.catalog import Dataset, DatasetVersion, Run, open_catalog
from governance.errors import InputError
from governance.lineage import capture_adapter, dataset_key, iceberg_snapshot, spark_identity
from governance.lineage._adapters import CaptureRole
from governance.spark import read_table
from tests._spark_support import spark
from tests.test_openlineage_support import require_spec, validate_event

__all__ = ["spark"]

pa = pytest.importorskip("pyarrow")


def _batch(start: int, n: int) -> Any:
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "income": pa.array([float(i % 7) for i in range(start, start + n)], pa.float64()),
                     "sex": pa.array(["F" if i % 3 else "M" for i in range(start, start + n)], pa.string())})


@pytest.fixture
def iceberg(tmp_path: Path) -> dict[str, Any]:
    """A table in a pyiceberg SQL catalog on SQLite, with two snapshots (100 rows, then 150)."""
    if sys.modules.get("pyiceberg") is None:
        try:
            import pyiceberg  # noqa: F401
        except ImportError:
            import os

            if os.environ.get("GOVERNANCE_REQUIRE_SPARK") == "1":
                pytest.fail("GOVERNANCE_REQUIRE_SPARK=1 but pyiceberg is not installed")
            pytest.skip("pyiceberg is not installed: pip install 'ml-governance[spark]'")
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path / 'iceberg.db'}", warehouse=(tmp_path / "wh").as_uri())
    catalog.create_namespace("lake")
    table = catalog.create_table("lake.people", schema=_batch(0, 1).schema)
    table.append(_batch(0, 100))
    first = table.current_snapshot().snapshot_id
    table.append(_batch(100, 50))
    location = tmp_path / "wh" / "lake" / "people"
    assert Path(table.location().removeprefix("file://")) == location
    return {"catalog": catalog, "table": table, "location": location, "first": first,
            "second": table.current_snapshot().snapshot_id}


def _role(direction: str = "input", name: str = "raw") -> CaptureRole:
    return CaptureRole(job="tests.job", name=name, direction=direction, namespace="default")


def test_pyiceberg_table_and_paths_are_the_snapshot(iceberg: dict[str, Any]) -> None:
    location, table = iceberg["location"], iceberg["table"]
    cap = capture_adapter(table, _role())
    assert (cap.namespace, cap.name, cap.uri) == ("file", str(location), table.location())
    assert (cap.content_hash, cap.hash_algo, cap.coverage) == (str(iceberg["second"]), "iceberg-snapshot", "snapshot")
    assert cap.row_count == 150  # from the snapshot summary, no scan
    assert [(f["name"], f["dtype"]) for f in cap.fields] == [("id", "long"), ("income", "double"), ("sex", "string")]
    for path in (location, gov.Dataset(str(location))):
        by_path = capture_adapter(path, _role())
        expected = ("file", str(location), str(iceberg["second"]))
        assert (by_path.namespace, by_path.name, by_path.content_hash) == expected
    metadata = sorted((location / "metadata").glob("*.metadata.json"))
    older = capture_adapter(metadata[1], _role())  # the metadata file written by the first append
    assert (older.name, older.content_hash, older.row_count) == (str(location), str(iceberg["first"]), 100)


def test_spark_reads_a_snapshot_and_capture_names_its_version(spark: Any, iceberg: dict[str, Any]) -> None:
    location = iceberg["location"]
    df = read_table(spark, location)
    assert df.count() == 150
    ident = spark_identity(df)
    assert (ident.kind, ident.iceberg_snapshot, ident.plain_scan) == ("iceberg", iceberg["second"], True)
    assert ident.hash_algo == "iceberg-snapshot-plan"  # a derived frame's identity; the table's is the id
    old = read_table(spark, location, version=iceberg["first"])
    assert old.count() == 100
    assert spark_identity(old).iceberg_snapshot == iceberg["first"]  # matched walking the snapshots back
    cap = capture_adapter(df, _role())
    table_cap = capture_adapter(iceberg["table"], _role())
    assert (cap.namespace, cap.name, cap.content_hash, cap.hash_algo) == (
        table_cap.namespace, table_cap.name, table_cap.content_hash, "iceberg-snapshot")
    derived = df.filter("income > 2")
    out = capture_adapter(derived, _role("output"))
    assert out.name == "tests.job.raw" and out.content_hash.startswith(f"iceberg:s{iceberg['second']}:")
    assert dataset_key(derived, "input").content_hash == str(iceberg["second"])
    metadata_file = iceberg["table"].metadata_location.removeprefix("file://")
    assert read_table(spark, metadata_file).count() == 150


def test_evolved_schema_and_unknown_snapshot_are_refused(spark: Any, iceberg: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="no Iceberg snapshot 12345"):
        read_table(spark, iceberg["location"], version=12345)
    with iceberg["table"].update_schema() as update:
        update.rename_column("income", "salary")
    with pytest.raises(InputError, match=r"schema has evolved \(2 schemas\); reading its Parquet files by column "
                                         "name could misread renamed columns"):
        read_table(spark, iceberg["location"])


def test_a_step_appending_to_an_iceberg_table_links_both_snapshots(iceberg: dict[str, Any], gov_env: Path) -> None:
    require_spec()
    catalog = iceberg["catalog"]

    @gov.step(kind="feature")
    def ingest(source: Any) -> Any:
        table = catalog.load_table("lake.people")
        table.append(_batch(150, 10))
        return table

    ingest(iceberg["table"])
    after = catalog.load_table("lake.people").current_snapshot().snapshot_id
    with open_catalog().read() as session:
        versions = session.execute(
            sa.select(DatasetVersion.content_hash, DatasetVersion.hash_algo, DatasetVersion.row_count)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(Dataset.namespace == "file", Dataset.name == str(iceberg["location"]))
            .order_by(DatasetVersion.version)).all()
        run_id = session.execute(sa.select(Run.id)).scalar_one()
        event = ol.build_run_event(session, run_id, "COMPLETE")
    assert [tuple(v) for v in versions] == [(str(iceberg["second"]), "iceberg-snapshot", 150),
                                            (str(after), "iceberg-snapshot", 160)]
    validate_event(event)
    (inp,), (out,) = event["inputs"], event["outputs"]
    assert (inp["namespace"], inp["name"], inp["facets"]["version"]["datasetVersion"]) == (
        "file", str(iceberg["location"]), str(iceberg["second"]))
    assert (out["name"], out["facets"]["version"]["datasetVersion"]) == (str(iceberg["location"]), str(after))


def test_iceberg_snapshot_of_an_empty_table_is_none(iceberg: dict[str, Any]) -> None:
    empty = iceberg["catalog"].create_table("lake.empty", schema=_batch(0, 1).schema)
    assert iceberg_snapshot(empty) is None
    cap = capture_adapter(empty, _role())
    assert (cap.content_hash, cap.coverage) == (None, "none")


def test_missing_pyiceberg_is_one_line_config_error(tmp_path: Path) -> None:
    (tmp_path / "t" / "metadata").mkdir(parents=True)
    (tmp_path / "t" / "metadata" / "00000-x.metadata.json").write_text("{}", encoding="utf-8")
    code = ("import sys; sys.modules['pyiceberg'] = None; sys.modules['pyiceberg.table'] = None\n"
            "from governance.lineage import iceberg_snapshot\n"
            "from governance.errors import ConfigError\n"
            f"try:\n    iceberg_snapshot({str(tmp_path / 't')!r})\n"
            "except ConfigError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "Iceberg tables need the pyiceberg package: pip install 'ml-governance[spark]'"
    code = "import sys; import governance, governance.lineage, governance.spark; print('pyiceberg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"  # importing never loads pyiceberg


def test_step_joins_the_snapshot_a_spark_job_reported(spark: Any, iceberg: dict[str, Any], gov_env: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A Spark job's OpenLineage event (ingested first) that wrote the table's snapshot and a step that
    reads that snapshot through Spark meet on one dataset version; gov lineage names the snapshot."""
    import json

    from governance.cli import main

    producer = "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/integration/spark"
    snapshot = str(iceberg["second"])
    event = {
        "eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z",
        "run": {"runId": "01890000-0000-7000-8000-00000000beef"},
        "job": {"namespace": "spark_cluster", "name": "etl.write_people"},
        "inputs": [],
        "outputs": [{"namespace": "file", "name": str(iceberg["location"]), "facets": {"version": {
            "_producer": producer,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json",
            "datasetVersion": snapshot}}}],
        "producer": producer,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    events = gov_env / "spark-events.ndjson"
    events.write_text(json.dumps(event) + "\n", encoding="utf-8")
    assert main(["ingest", "openlineage", str(events)]) == 0

    @gov.step(kind="feature")
    def features(table: Any) -> Any:
        return table.withColumn("income_k", table.income / 1000.0)

    features(read_table(spark, iceberg["location"]))
    with open_catalog().read() as session:
        rows = session.execute(
            sa.select(DatasetVersion.version, DatasetVersion.content_hash)
            .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
            .where(Dataset.namespace == "file", Dataset.name == str(iceberg["location"]))).all()
    assert [tuple(r) for r in rows] == [(1, snapshot)]  # the Spark job's output is the step's input
    capsys.readouterr()
    assert main(["lineage", f"file/{iceberg['location']}@1", "--downstream"]) == 0
    text = capsys.readouterr().out
    assert "[run] test_iceberg.test_step_joins_the_snapshot_a_spark_job_reported.<locals>.features" in text
    assert f"features.output@1 {('iceberg:s' + snapshot)[:16]} (output)" in text  # derived: snapshot + plan


def test_gov_lineage_names_iceberg_snapshots(iceberg: dict[str, Any], gov_env: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from governance.cli import main

    @gov.step(kind="feature")
    def passthrough(source: Any) -> Any:
        return source

    passthrough(iceberg["table"])
    assert main(["lineage", f"file/{iceberg['location']}@1", "--downstream"]) == 0
    text = capsys.readouterr().out
    assert f"[dataset] {iceberg['location']}@1 Iceberg snapshot {iceberg['second']}" in text
