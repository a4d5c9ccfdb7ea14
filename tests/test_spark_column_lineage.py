"""Column lineage of Spark DataFrames, from the analysed plan: each output column's input columns (of the
step's input datasets) and the OpenLineage transformation kind; stored in the catalog's column lineage
and sent in the columnLineage facet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import governance as gov
import governance.openlineage as ol
from governance.catalog import ColumnLineage, DatasetField, Run, open_catalog
from governance.lineage import capture_adapter
from governance.lineage._adapters import CaptureRole
from governance.spark import read_table
from tests._spark_support import spark
from tests.test_openlineage_support import require_spec, validate_event

__all__ = ["spark"]

Link = tuple[str | None, str, str, str, str]  # output (None: whole output), input, field, type, subtype


def _people() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3, 4], "income": [10.0, 20.0, 30.0, 40.0], "sex": ["F", "M", "F", "M"]})


def _loans() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3, 5], "amount": [5.0, 6.0, 7.0, 8.0]})


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, Path]:
    import deltalake

    people = tmp_path / "people"  # a directory of Parquet files, named after the directory
    people.mkdir()
    _people().to_parquet(people / "part-0.parquet")
    loans = tmp_path / "lake" / "loans"
    deltalake.write_deltalake(str(loans), _loans())
    return {"people": people, "loans": loans}


def _links(spark: Any, out: Any, **inputs: Any) -> set[Link]:
    """Capture ``inputs`` and ``out`` as a step would, and return the output's lineage by input role."""
    caps = [capture_adapter(df, CaptureRole(job="t.job", name=name, direction="input", namespace="default"))
            for name, df in inputs.items()]
    out_cap = capture_adapter(out, CaptureRole(job="t.job", name="output", direction="output", namespace="default",
                                               inputs=tuple(caps)))
    role_of = {(c.namespace, c.name): c.role for c in caps}
    assert out_cap.column_lineage is not None
    return {(e["output"], role_of[(e["namespace"], e["name"])], e["field"], e["type"], e["subtype"])
            for e in out_cap.column_lineage}


def test_select_rename_arithmetic_and_masking(spark: Any, tables: dict[str, Path]) -> None:
    from pyspark.sql import functions as fn

    people = read_table(spark, tables["people"])
    out = people.select(fn.col("id").alias("person"), (fn.col("income") * 2 + 1).alias("double_income"),
                        fn.col("income").cast("int").alias("income_int"), fn.sha2("sex", 256).alias("sex_hash"))
    assert _links(spark, out, people=people) == {
        ("person", "people", "id", "DIRECT", "IDENTITY"),
        ("double_income", "people", "income", "DIRECT", "TRANSFORMATION"),
        ("income_int", "people", "income", "DIRECT", "TRANSFORMATION"),
        ("sex_hash", "people", "sex", "DIRECT", "TRANSFORMATION"),
    }
    caps = [capture_adapter(people, CaptureRole(job="t.job", name="people", direction="input", namespace="d"))]
    out_cap = capture_adapter(out, CaptureRole(job="t.job", name="output", direction="output", namespace="d",
                                               inputs=tuple(caps)))
    masked = {e["output"]: e["masking"] for e in out_cap.column_lineage or []}
    assert masked == {"person": False, "double_income": False, "income_int": False, "sex_hash": True}


def test_join_filter_and_conditional(spark: Any, tables: dict[str, Path]) -> None:
    from pyspark.sql import functions as fn

    people = read_table(spark, tables["people"])
    loans = read_table(spark, tables["loans"])  # a Delta table
    out = (people.join(loans, "id").filter(fn.col("amount") > 5.5)
           .select("id", "sex", fn.when(fn.col("sex") == "F", fn.col("amount")).otherwise(0.0).alias("f_amount")))
    assert _links(spark, out, people=people, loans=loans) == {
        ("id", "people", "id", "DIRECT", "IDENTITY"),  # an inner join on USING keeps the left side's column
        ("sex", "people", "sex", "DIRECT", "IDENTITY"),
        ("f_amount", "loans", "amount", "DIRECT", "TRANSFORMATION"),
        ("f_amount", "people", "sex", "INDIRECT", "CONDITIONAL"),
        (None, "people", "id", "INDIRECT", "JOIN"),
        (None, "loans", "id", "INDIRECT", "JOIN"),
        (None, "loans", "amount", "INDIRECT", "FILTER"),
    }


def test_aggregation_group_by_sort_and_window(spark: Any, tables: dict[str, Path]) -> None:
    from pyspark.sql import Window
    from pyspark.sql import functions as fn

    people = read_table(spark, tables["people"])
    agg = people.groupBy("sex").agg(fn.avg("income").alias("mean_income"), fn.count("id").alias("n")).orderBy("sex")
    assert _links(spark, agg, people=people) == {
        ("sex", "people", "sex", "DIRECT", "IDENTITY"),
        ("mean_income", "people", "income", "DIRECT", "AGGREGATION"),
        ("n", "people", "id", "DIRECT", "AGGREGATION"),
        (None, "people", "sex", "INDIRECT", "GROUP_BY"),
        (None, "people", "sex", "INDIRECT", "SORT"),
    }
    ranked = people.withColumn("rank", fn.rank().over(Window.partitionBy("sex").orderBy("income")))
    assert _links(spark, ranked, people=people) == {
        ("id", "people", "id", "DIRECT", "IDENTITY"),
        ("income", "people", "income", "DIRECT", "IDENTITY"),
        ("sex", "people", "sex", "DIRECT", "IDENTITY"),
        ("rank", "people", "sex", "INDIRECT", "WINDOW"),
        ("rank", "people", "income", "INDIRECT", "WINDOW"),
    }


def test_udf_union_and_in_memory_inputs(spark: Any) -> None:
    from pyspark.sql import functions as fn

    scaled = fn.udf(lambda v: v / 1000.0, "double")
    people = spark.createDataFrame(_people())
    more = spark.createDataFrame(_people().rename(columns={"income": "salary"}))
    out = people.select("id", scaled("income").alias("income_k"))
    assert _links(spark, out, people=people) == {
        ("id", "people", "id", "DIRECT", "IDENTITY"),
        ("income_k", "people", "income", "DIRECT", "TRANSFORMATION"),
    }
    both = people.select("id", "income").unionByName(more.select("id", fn.col("salary").alias("income")))
    assert _links(spark, both, people=people, more=more) == {
        ("id", "people", "id", "DIRECT", "IDENTITY"),
        ("id", "more", "id", "DIRECT", "IDENTITY"),
        ("income", "people", "income", "DIRECT", "IDENTITY"),
        ("income", "more", "salary", "DIRECT", "IDENTITY"),
    }


def test_what_happened_inside_an_input_is_not_this_steps_lineage(spark: Any, tables: dict[str, Path]) -> None:
    from pyspark.sql import functions as fn

    people = read_table(spark, tables["people"])
    filtered = people.filter(fn.col("income") > 15).withColumn("k", fn.col("income") / 1000)
    out = filtered.select("id", "k")
    # the step received ``filtered``: its filter and computed column belong to whoever made it
    assert _links(spark, out, filtered=filtered) == {
        ("id", "filtered", "id", "DIRECT", "IDENTITY"),
        ("k", "filtered", "k", "DIRECT", "IDENTITY"),
    }


def test_step_stores_plan_lineage_and_sends_the_facet(spark: Any, tables: dict[str, Path], gov_env: Path) -> None:
    from pyspark.sql import functions as fn

    require_spec()

    @gov.step(kind="feature", tags={"protected": ["sex"]})
    def features(people: Any, loans: Any) -> Any:
        joined = people.join(loans, "id").filter(fn.col("amount") > 5.5)
        return joined.select(fn.col("sex").alias("gender"), (fn.col("amount") / fn.col("income")).alias("ratio"),
                             fn.when(fn.col("sex") == "F", 1).otherwise(0).alias("is_f"))

    features(read_table(spark, tables["people"]), read_table(spark, tables["loans"]))

    people_name, loans_name = str(tables["people"]), str(tables["loans"])
    with open_catalog().read() as session:
        run_id = session.execute(sa.select(Run.id)).scalar_one()
        event = ol.build_run_event(session, run_id, "COMPLETE")
        out_field = sa.orm.aliased(DatasetField)
        rows = session.execute(sa.select(out_field.name, DatasetField.name, ColumnLineage.transformation,
                                         ColumnLineage.subtype, ColumnLineage.output_version_id.is_not(None))
                               .join(DatasetField, DatasetField.id == ColumnLineage.input_field_id)
                               .outerjoin(out_field, out_field.id == ColumnLineage.output_field_id)).all()
        tags = dict(session.execute(sa.select(DatasetField.name, DatasetField.tags)
                                    .where(DatasetField.name.in_(["gender", "ratio", "is_f"]))).all())
    assert {tuple(r) for r in rows} == {
        ("gender", "sex", "DIRECT", "IDENTITY", False),
        ("ratio", "amount", "DIRECT", "TRANSFORMATION", False),
        ("ratio", "income", "DIRECT", "TRANSFORMATION", False),
        ("is_f", "sex", "INDIRECT", "CONDITIONAL", False),
        (None, "id", "INDIRECT", "JOIN", True),  # both sides' id
        (None, "amount", "INDIRECT", "FILTER", True),
    }
    assert len(rows) == 7
    assert tags["gender"] == ["protected"]  # the column itself, renamed
    assert tags["is_f"] == ["proxy:protected"]  # computed from a protected column
    assert tags["ratio"] == []
    validate_event(event)
    (output,) = event["outputs"]
    facet = output["facets"]["columnLineage"]
    fields = {name: {(f["name"], f["field"], t["type"], t["subtype"]) for f in spec["inputFields"]
                     for t in f["transformations"]} for name, spec in facet["fields"].items()}
    assert fields == {
        "gender": {(people_name, "sex", "DIRECT", "IDENTITY")},
        "ratio": {(loans_name, "amount", "DIRECT", "TRANSFORMATION"),
                  (people_name, "income", "DIRECT", "TRANSFORMATION")},
        "is_f": {(people_name, "sex", "INDIRECT", "CONDITIONAL")},
    }
    assert facet["fields"]["gender"]["transformationType"] == "IDENTITY"
    assert {(f["name"], f["field"], f["transformations"][0]["subtype"]) for f in facet["dataset"]} == {
        (people_name, "id", "JOIN"), (loans_name, "id", "JOIN"), (loans_name, "amount", "FILTER")}


def test_column_lineage_can_be_turned_off(spark: Any, tables: dict[str, Path]) -> None:
    people = read_table(spark, tables["people"])
    spark.conf.set("spark.governance.columnLineage", "false")
    try:
        cap = capture_adapter(people.select("id"), CaptureRole(job="t.job", name="output", direction="output",
                                                               namespace="default"))
    finally:
        spark.conf.unset("spark.governance.columnLineage")
    assert cap.column_lineage is None  # linked by column name, as for other frames


def test_non_spark_inputs_are_linked_by_name(spark: Any, tables: dict[str, Path]) -> None:
    from governance.lineage import table_capture

    people = read_table(spark, tables["people"])
    regions = pd.DataFrame({"sex": ["F", "M"], "region": ["north", "south"]})
    out = people.join(spark.createDataFrame(regions), "sex").select("id", "region")
    caps = [capture_adapter(people, CaptureRole(job="t.job", name="people", direction="input", namespace="d")),
            table_capture(regions, CaptureRole(job="t.job", name="regions", direction="input", namespace="d"))]
    out_cap = capture_adapter(out, CaptureRole(job="t.job", name="output", direction="output", namespace="d",
                                               inputs=tuple(caps)))
    by_role = {(c.namespace, c.name): c.role for c in caps}
    links = {(e["output"], by_role[(e["namespace"], e["name"])], e["field"], e["type"], e["subtype"])
             for e in out_cap.column_lineage or []}
    assert links == {
        ("id", "people", "id", "DIRECT", "IDENTITY"),
        ("region", "regions", "region", "DIRECT", None),  # the pandas input: by name, as for any frame
        (None, "people", "sex", "INDIRECT", "JOIN"),
    }
    only_pandas = capture_adapter(spark.createDataFrame(regions), CaptureRole(
        job="t.job", name="output", direction="output", namespace="d", inputs=(caps[1],)))
    assert only_pandas.column_lineage is None  # no Spark input: the writer links every column by name


def test_lineage_survives_the_spool_and_plans_stay_out_of_it(spark: Any, tables: dict[str, Path]) -> None:
    import json

    from governance.lineage import DatasetCapture

    people = read_table(spark, tables["people"])
    inp = capture_adapter(people, CaptureRole(job="t.job", name="people", direction="input", namespace="d"))
    out = capture_adapter(people.select(people.id.alias("k")), CaptureRole(
        job="t.job", name="output", direction="output", namespace="d", inputs=(inp,)))
    for cap in (inp, out):
        doc = json.loads(json.dumps(cap.to_json()))  # what the spool writes
        assert "_spark_plan" not in doc
        back = DatasetCapture.from_json(doc)
        assert back.column_lineage == cap.column_lineage
    assert out.column_lineage == [{"output": "k", "namespace": "file", "name": str(tables["people"]), "field": "id",
                                   "type": "DIRECT", "subtype": "IDENTITY", "masking": False}]
