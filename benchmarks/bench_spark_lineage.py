"""Spark calibration push-down and the cost of column lineage from the plan.

    python -m benchmarks --only spark_lineage [--quick]

* **calibration**: ECE and MCE (10 bins) overall and for every group of three sensitive attributes and
  their intersection, on a Parquet predictions table of 2M rows (quick: 200k).  Ours: the one
  ``groupBy`` of :func:`governance.spark.predictions_evidence` (confusion counts, AUC histogram and
  calibration sums together) and the check on its evidence.  Peer: ``toPandas()`` of the label, score and
  sensitive columns (Arrow on), then ``sklearn.calibration.calibration_curve`` for each group.  Results are
  checked equal to 1e-9.  Both in one local[2] session; the best of three runs each.  Ours computes the
  confusion counts, AUC and log loss in the same pass, so a third row times that pass without the
  calibration histograms: the difference is what calibration costs.
* **column lineage**: the capture of a Spark DataFrame returned by a step (a join, a filter, an aggregate,
  computed columns: 8 plan nodes) with its plan lineage, against the same capture without it (the
  identity alone); the median of 20 calls each, per call.  No peer: the OpenLineage Spark agent derives
  the same facet inside the JVM on every action and cannot be run here (a Maven jar).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import Result, median_time

SENSITIVE = ("sex", "race", "age_band")


def _session() -> Any:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName("bench-spark-lineage")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
             .config("spark.sql.execution.arrow.pyspark.enabled", "true").config("spark.driver.memory", "2g")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _write(path: Path, n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    score = rng.beta(2.0, 3.0, n)
    sex = rng.integers(0, 2, n, dtype=np.int8)
    pq.write_table(pa.table({
        "sex": sex, "race": rng.integers(0, 5, n, dtype=np.int8), "age_band": rng.integers(0, 6, n, dtype=np.int8),
        "label": (rng.random(n) < np.where(sex == 1, score**1.5, score)).astype(np.int8),
        "prediction": (score >= 0.5).astype(np.int8), "score": score}), path)


def _ours(spark: Any, path: str) -> dict[str, float]:
    from governance.checks import CheckContext, CheckRegistry, builtin_checks
    from governance.spark import predictions_evidence

    doc = predictions_evidence(spark.read.parquet(path), label="label", prediction="prediction", score="score",
                               sensitive=list(SENSITIVE), score_range=(0.0, 1.0))
    check = CheckRegistry(builtin_checks()).get("performance.calibration")
    m = check.compute(CheckContext(evidence={**doc, "sensitive": list(SENSITIVE)}), check.Params(bins=10))
    return {"overall": float(m.value), **{g: float(v["ece"]) for g, v in m.by_group.items()}}


def _evidence_only(spark: Any, path: str) -> None:
    """The same push-down without the calibration histograms (the score sum stays in the groupBy):
    what calibration adds to evidence already computed for fairness, AUC and log loss."""
    from unittest import mock

    from governance.spark import _evidence, predictions_evidence

    with mock.patch.object(_evidence, "_calibration", lambda *args: {}):
        predictions_evidence(spark.read.parquet(path), label="label", prediction="prediction", score="score",
                             sensitive=list(SENSITIVE), score_range=(0.0, 1.0))


def _peer(spark: Any, path: str) -> dict[str, float]:
    import pandas as pd
    from sklearn.calibration import calibration_curve

    frame = spark.read.parquet(path).select("label", "score", *SENSITIVE).toPandas()
    edges = np.linspace(0.0, 1.0, 11)

    def ece(part: pd.DataFrame) -> float:
        y, s = part["label"].to_numpy(), part["score"].to_numpy()
        prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
        counts = np.histogram(s, bins=edges)[0]
        sizes = counts[counts > 0]
        return float(np.sum(sizes / sizes.sum() * np.abs(prob_true - prob_pred)))

    out = {"overall": ece(frame)}
    for cols in [(c,) for c in SENSITIVE] + [SENSITIVE]:
        for values, part in frame.groupby(list(cols), sort=True):
            vals = values if isinstance(values, tuple) else (values,)
            out[" & ".join(f"{c}={v}" for c, v in zip(cols, vals, strict=True))] = ece(part)
    return out


def _best(fn: Any, *args: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(3):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def _lineage_cost(spark: Any, path: str) -> tuple[float, float]:
    from pyspark.sql import functions as fn

    from governance.lineage import capture_adapter, spark_identity
    from governance.lineage._adapters import CaptureRole

    people = spark.read.parquet(path)
    groups = spark.createDataFrame([(i, f"r{i}") for i in range(5)], ["race", "region"])
    out = (people.join(groups, "race").filter(fn.col("score") > 0.1)
           .withColumn("band", fn.when(fn.col("age_band") > 2, "old").otherwise("young"))
           .groupBy("region", "band").agg(fn.avg("score").alias("mean_score"), fn.sum("label").alias("positives")))
    inputs = tuple(capture_adapter(df, CaptureRole(job="b", name=n, direction="input", namespace="b"))
                   for n, df in (("people", people), ("groups", groups)))
    role = CaptureRole(job="b", name="output", direction="output", namespace="b", inputs=inputs)
    cap = capture_adapter(out, role)
    assert cap is not None and cap.column_lineage, "no lineage derived"
    with_lineage = median_time(lambda: capture_adapter(out, role), repeat=20)
    identity_only = median_time(lambda: spark_identity(out), repeat=20)
    return with_lineage, identity_only


def run(quick: bool = False) -> list[Result]:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return [Result("spark calibration", 0.0, "s", note="pyspark missing: pip install 'ml-governance[spark]'")]
    n = 200_000 if quick else 2_000_000
    spark = _session()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-spark-lineage-") as tmp:
            path = str(Path(tmp) / "preds.parquet")
            _write(Path(path), n)
            ours_s, ours = _best(_ours, spark, path)
            base_s = _best(_evidence_only, spark, path)[0]
            peer_s, peer = _best(_peer, spark, path)
            assert ours.keys() == peer.keys(), "group sets differ"
            worst = max(abs(ours[k] - peer[k]) for k in ours)
            assert worst <= 1e-9, f"ECE differs from the peer by {worst}"
            with_lineage, identity_only = _lineage_cost(spark, path)
    finally:
        spark.stop()
    return [
        Result(f"spark calibration ECE, {n:,} rows, {len(ours)} groups", ours_s, "s",
               peer="toPandas + sklearn calibration_curve per group", peer_measured=peer_s,
               note=f"max |ECE difference| {worst:.1e}; ours also computes confusion counts, AUC and log loss"),
        Result("spark push-down evidence without the calibration histograms", base_s, "s",
               peer="the same with calibration", peer_measured=ours_s,
               note="ratio > 1 is what calibration adds"),
        Result("spark output capture with plan column lineage", with_lineage * 1000, "ms",
               peer="the same capture's identity alone", peer_measured=identity_only * 1000,
               note="ratio < 1: lineage's added cost is the gap"),
    ]
