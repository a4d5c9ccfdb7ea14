"""``governance.evaluate`` on a Spark DataFrame and ``gov check --engine spark`` give the pandas path's
results (a real local Spark session; one test on a 2M-row Parquet table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from governance.catalog import Catalog
from governance.checks._fairness import confusion_evidence
from governance.cli import main
from governance.policy import evaluate, parse_pack
from tests._spark_support import predictions_frame, spark
from tests.test_evaluate import CARD, FEATURES, PACK, _data, _register

__all__ = ["spark"]

DATA_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: spark-gate, version: 1.0.0}
checks:
  - {id: dp, uses: fairness.demographic_parity_ratio, assert: {gte: 0.8}}
  - {id: eo, uses: fairness.equalized_odds_difference, assert: {lte: 0.2}}
  - {id: fpr, uses: fairness.group_rate, with: {metric: fpr, aggregate: max}, assert: {lte: 0.5}}
  - {id: acc, uses: performance.accuracy, with: {aggregate: worst_group}, assert: {gte: 0.5}}
  - {id: auc, uses: performance.roc_auc, assert: {gte: 0.6}}
  - {id: loss, uses: performance.log_loss, assert: {lte: 0.8}}
"""


def _results(doc: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {r["id"]: (r["status"], r["value"]) for r in doc["results"]}


def test_evaluate_spark_frame_equals_pandas(spark: Any, tmp_path: Path) -> None:
    train, holdout = _data(3000, 1), _data(1500, 2)
    model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["y"])
    pack = parse_pack(PACK)
    stored = {}
    for engine in ("pandas", "spark"):
        catalog = Catalog(f"sqlite:///{tmp_path / engine}.db")
        _register(catalog, train, card=CARD, artifacts=(model,))
        data = holdout if engine == "pandas" else spark.createDataFrame(holdout)
        stored[engine] = evaluate(model, data, label="y", sensitive=["sex"], model_ref="credit@1",
                                  catalog=catalog, policy=pack, actor="alice")
        catalog.dispose()
    want, got = stored["pandas"], stored["spark"]
    assert got.data["engine"] == "spark" and got.predictions is None and got.evidence_id is not None
    for key in ("confusion", "drift", "n", "task", "sensitive", "features", "score"):
        assert got.data[key] == want.data[key], key
    for name in ("accuracy", "balanced_accuracy", "f1", "precision", "recall"):
        assert got.data["metrics"]["overall"][name] == want.data["metrics"]["overall"][name]
        assert got.data["metrics"]["by_group"]["sex"]["sex=M"][name] == want.data["metrics"]["by_group"]["sex"][
            "sex=M"][name]
    bound = got.data["score_bins"]["roc_auc_error_bound"]["overall"]
    assert abs(got.data["score_metrics"]["roc_auc"] - want.data["score_metrics"]["roc_auc"]) <= bound
    assert {k: {c: v for c, v in row.items() if c != "dtype"} for k, row in got.data["data_quality"][
        "columns"].items()} == {k: {c: v for c, v in row.items() if c != "dtype"} for k, row in want.data[
            "data_quality"]["columns"].items()}
    assert got.data["data_fingerprint"]["hash_algo"] == "spark-plan-files"
    assert got.result is not None and want.result is not None
    got_status = {r.id: r.status for r in got.result.results}
    assert got_status == {r.id: r.status for r in want.result.results}
    exact = ("dp", "eo", "worst_acc", "psi", "ks", "nulls", "schema")
    assert {r.id: r.value for r in got.result.results if r.id in exact} == {
        r.id: r.value for r in want.result.results if r.id in exact}


def test_gov_check_engine_spark_equals_pandas(spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = predictions_frame(8_000, seed=5)
    path = tmp_path / "preds.parquet"
    frame.to_parquet(path, index=False)
    pack = tmp_path / "pack.yaml"
    pack.write_text(DATA_PACK, encoding="utf-8")
    docs, codes = {}, {}
    for engine in ("pandas", "spark"):
        code = main(["check", "--policy", str(pack), "--predictions", str(path), "--label", "label",
                     "--prediction", "prediction", "--score", "score", "--sensitive", "sex,race",
                     "--engine", engine, "--format", "json"])
        docs[engine] = json.loads(capsys.readouterr().out)
        codes[engine] = code
    assert codes["spark"] == codes["pandas"] in (0, 1)
    assert docs["spark"]["status"] == docs["pandas"]["status"]
    want, got = _results(docs["pandas"]), _results(docs["spark"])
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in want.items()}
    for check_id in ("dp", "eo", "fpr", "acc"):
        assert got[check_id] == want[check_id]
    assert got["loss"][1] == pytest.approx(want["loss"][1], rel=1e-12)
    assert abs(got["auc"][1] - want["auc"][1]) < 2e-3
    by_group = {r["id"]: r.get("by_group") for r in docs["spark"]["results"]}
    assert by_group["dp"] == {r["id"]: r.get("by_group") for r in docs["pandas"]["results"]}["dp"]


def test_gov_check_engine_spark_bad_input(spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = predictions_frame(200, seed=6)
    path = tmp_path / "preds"
    path.mkdir()
    frame.to_parquet(path / "part-0.parquet", index=False)
    pack = tmp_path / "pack.yaml"
    pack.write_text(DATA_PACK, encoding="utf-8")
    args = ["check", "--policy", str(pack), "--predictions", str(path), "--label", "label", "--prediction",
            "prediction", "--engine", "spark"]
    assert main([*args, "--sensitive", "gender"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: no sensitive column 'gender'; columns are: sex, race" in err
    assert "Traceback" not in err
    assert main([*args[:-1], "hadoop", "--sensitive", "sex"]) == 2
    assert "--engine: expected one of pandas, spark, got 'hadoop'" in capsys.readouterr().err
    assert main([*args[:4], str(tmp_path / "nope"), *args[5:], "--sensitive", "sex"]) == 2


@pytest.mark.slow
def test_two_million_row_parquet_through_spark_equals_pandas(spark: Any, tmp_path: Path) -> None:
    """The issue's scale test: a 2M-row Parquet table, counts and rates equal to the pandas path."""
    from governance.spark import predictions_evidence

    n = 2_000_000
    rng = np.random.default_rng(11)
    table = pa.table({
        "sex": pa.array(rng.integers(0, 2, n)).cast(pa.int8()),
        "race": pa.array(rng.integers(0, 5, n)).cast(pa.int8()),
        "age_band": pa.array(rng.integers(0, 6, n)).cast(pa.int8()),
        "label": pa.array(rng.integers(0, 2, n)).cast(pa.int8()),
        "prediction": pa.array((rng.random(n) < 0.4).astype(np.int8)),
    })
    path = tmp_path / "big.parquet"
    pq.write_table(table, path, row_group_size=500_000)
    sensitive = ["sex", "race", "age_band"]
    doc = predictions_evidence(spark.read.parquet(str(path)), label="label", prediction="prediction",
                               sensitive=sensitive)
    frame = pd.read_parquet(path)
    assert doc["n"] == n
    assert doc["confusion"] == confusion_evidence(frame, "label", "prediction", sensitive)
    assert len(doc["confusion"]["sex&race&age_band"]["groups"]) == 2 * 5 * 6


MODEL_PACK = """\
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: spark-model-gate, version: 1.0.0}
checks:
  - {id: dp, uses: fairness.demographic_parity_ratio, assert: {gte: 0.5}}
  - {id: acc, uses: performance.accuracy, assert: {gte: 0.5}}
  - {id: psi, uses: drift.psi, assert: {lte: 0.2}}
  - {id: range, uses: data_quality.value_range, assert: {lte: 0.05}}
  - {id: schema, uses: data_quality.schema_match, assert: {eq: 0}}
"""


def test_model_version_gate_on_a_spark_table_equals_pandas(spark: Any, tmp_path: Path) -> None:
    """MODEL@VERSION plus a predictions table with feature columns: drift and data quality against the
    version's training baseline, computed on Spark, equal the pandas engine's."""
    from governance.registry import check

    train, holdout = _data(3000, 1), _data(1500, 3, shift=8.0)
    model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["y"])
    table = holdout.assign(pred=model.predict(holdout[FEATURES]))
    path = tmp_path / "scored.parquet"
    table.to_parquet(path, index=False)
    pack = tmp_path / "pack.yaml"
    pack.write_text(MODEL_PACK, encoding="utf-8")
    catalog = Catalog(f"sqlite:///{tmp_path / 'cat.db'}")
    _register(catalog, train, card=CARD)
    reports = {
        engine: check("credit@1", policy=str(pack), predictions=str(path), label="y", prediction="pred",
                      sensitive=["sex"], catalog=catalog, actor="alice", engine=engine)
        for engine in ("pandas", "spark")
    }
    catalog.dispose()
    want, got = (_results(reports[e].document) for e in ("pandas", "spark"))
    assert got == want
    assert got["psi"][0] == "FAIL" and got["psi"][1] > 0.2  # the shifted income drifts
    assert reports["spark"].exit_code() == reports["pandas"].exit_code() == 1
