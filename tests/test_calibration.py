"""performance.calibration: expected and maximum calibration error over equal-width bins, overall and per
group; pandas exact against sklearn's calibration_curve, stored evidence regrouped exactly, and the Spark
path from the AUC histogram's own groupBy equal to pandas."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve

from governance.checks import CheckContext, CheckRegistry, builtin_checks
from governance.checks._performance import metrics_evidence
from governance.errors import EvaluationError
from governance.policy import Status, context_for_frame, parse_pack, run_pack
from tests._spark_support import predictions_frame, spark

__all__ = ["spark"]


def _frame(n: int = 20_000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M"], dtype=object), n)
    race = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])
    score = rng.beta(2.0, 3.0, n)
    # miscalibrated, differently per group: positives are rarer than the score says for F
    truth = np.where(sex == "F", score**1.6, np.minimum(score * 1.1, 1.0))
    label = (rng.random(n) < truth).astype(np.int64)
    return pd.DataFrame({"y": label, "yhat": (score >= 0.5).astype(np.int64), "p": score, "sex": sex, "race": race})


def _reference(y: np.ndarray, s: np.ndarray, bins: int) -> tuple[float, float]:
    """ECE and MCE from sklearn's calibration_curve, with bin sizes counted independently."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    assert not np.any(np.isin(s, edges[1:-1]))  # no score on an inner edge, where the conventions differ
    prob_true, prob_pred = calibration_curve(y, s, n_bins=bins, strategy="uniform")
    counts = np.histogram(s, bins=edges)[0]
    sizes = counts[counts > 0]
    gaps = np.abs(prob_true - prob_pred)
    return float(np.sum(sizes / sizes.sum() * gaps)), float(gaps.max())


def _check() -> Any:
    return CheckRegistry(builtin_checks()).get("performance.calibration")


def _measure(ctx: CheckContext, **params: Any) -> Any:
    check = _check()
    return check.compute(ctx, check.Params(**params))


@pytest.mark.parametrize("bins", [10, 15, 20])
def test_pandas_path_equals_sklearn_calibration_curve(bins: int) -> None:
    frame = _frame()
    y, s = frame["y"].to_numpy(), frame["p"].to_numpy()
    ctx = CheckContext(predictions=frame, label="y", prediction="yhat", score="p", sensitive=("sex", "race"))
    for metric in ("ece", "mce"):
        m = _measure(ctx, bins=bins, metric=metric)
        ece, mce = _reference(y, s, bins)
        assert m.value == pytest.approx(ece if metric == "ece" else mce, abs=1e-12)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=bins, strategy="uniform")
    table = m.evidence["reliability"]
    assert [r["fraction_positive"] for r in table] == pytest.approx(list(prob_true), abs=1e-12)
    assert [r["mean_score"] for r in table] == pytest.approx(list(prob_pred), abs=1e-12)
    assert sum(r["n"] for r in table) == len(frame)
    for group, mask in (("sex=F", frame["sex"] == "F"), ("race=c", frame["race"] == "c"),
                        ("sex=M & race=b", (frame["sex"] == "M") & (frame["race"] == "b"))):
        ece, mce = _reference(y[mask.to_numpy()], s[mask.to_numpy()], bins)
        assert m.by_group[group]["ece"] == pytest.approx(ece, abs=1e-12)
        assert m.by_group[group]["mce"] == pytest.approx(mce, abs=1e-12)
        assert m.group_sizes[group] == int(mask.sum())


def test_worst_group_and_small_groups() -> None:
    frame = _frame()
    ctx = CheckContext(predictions=frame, label="y", prediction="yhat", score="p", sensitive=("sex",))
    m = _measure(ctx, aggregate="worst_group")
    eces = {g: v["ece"] for g, v in m.by_group.items()}
    assert m.evidence["worst_group"] == max(eces, key=lambda g: eces[g]) == "sex=F"
    assert m.value == eces["sex=F"] and m.insufficient is None
    assert _measure(ctx, aggregate="worst_group", min_group_size=20_000).insufficient.startswith(
        "group(s) smaller than minGroupSize 20000")
    with pytest.raises(EvaluationError, match="worst_group needs sensitive features"):
        _measure(CheckContext(predictions=frame, label="y", prediction="yhat", score="p"), aggregate="worst_group")


def test_stored_evidence_gives_the_same_values_for_bins_dividing_its_resolution() -> None:
    frame = _frame()
    direct = CheckContext(predictions=frame, label="y", prediction="yhat", score="p", sensitive=("sex", "race"))
    metrics = metrics_evidence(frame, "y", "yhat", "p", ["sex", "race"])
    evidence = {"metrics": metrics, "sensitive": ["sex", "race"],  # as governance.evaluate stores them
                "score_metrics": {k: metrics["overall"][k] for k in ("roc_auc", "log_loss")}}
    stored = CheckContext(evidence=evidence)
    assert "scores" in stored.available()
    for bins in (10, 20, 25, 100):
        a, b = _measure(direct, bins=bins), _measure(stored, bins=bins)
        assert b.evidence["computed_from"] == "evidence" and a.evidence["computed_from"] == "predictions"
        assert b.value == pytest.approx(a.value, abs=1e-12)
        assert b.evidence["mce"] == pytest.approx(a.evidence["mce"], abs=1e-12)
        assert b.by_group.keys() == a.by_group.keys()
        for g in a.by_group:
            assert b.by_group[g]["ece"] == pytest.approx(a.by_group[g]["ece"], abs=1e-12)
            assert b.by_group[g]["n"] == a.by_group[g]["n"]
    with pytest.raises(EvaluationError, match=r"keeps 100 bins per group; bins must divide it .* got 15"):
        _measure(stored, bins=15)
    with pytest.raises(EvaluationError, match="stored evidence has no calibration histogram"):
        _measure(CheckContext(evidence={"metrics": {"overall": {"n": 3}}}))


def test_scores_outside_unit_interval_or_missing_are_refused() -> None:
    frame = pd.DataFrame({"y": [0, 1, 1], "yhat": [0, 1, 1], "p": [0.2, 1.5, 0.7]})
    with pytest.raises(EvaluationError, match=r"score column 'p' has values outside \[0, 1\]"):
        _measure(CheckContext(predictions=frame, label="y", prediction="yhat", score="p"))
    frame["p"] = [0.2, np.nan, 0.7]
    with pytest.raises(EvaluationError, match="score column 'p' has missing values"):
        _measure(CheckContext(predictions=frame, label="y", prediction="yhat", score="p"))


PACK = """
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: t, version: "1"}
checks:
  - {id: calib, uses: performance.calibration, with: {bins: 10}, assert: {lte: LIMIT}}
  - {id: calib.worst, uses: performance.calibration, with: {bins: 20, metric: mce, aggregate: worst_group,
     sensitive: [sex], minGroupSize: 30}, assert: {lte: 0.5}}
"""


@pytest.mark.parametrize(("limit", "status"), [(0.2, Status.PASS), (0.01, Status.FAIL)])
def test_a_pack_gates_on_calibration(limit: float, status: Status) -> None:
    frame = _frame()
    registry = CheckRegistry(builtin_checks())
    pack = parse_pack(PACK.replace("LIMIT", str(limit)), registry=registry)
    result = run_pack(pack, context_for_frame(frame, label="y", prediction="yhat", score="p"), registry=registry)
    calib, worst = result.results
    ece, _ = _reference(frame["y"].to_numpy(), frame["p"].to_numpy(), 10)
    assert calib.value == pytest.approx(ece, abs=1e-12)
    assert 0.01 < ece < 0.2
    assert calib.status is status
    assert worst.status is Status.PASS and set(worst.by_group) == {"sex=F", "sex=M"}


def test_calibration_needs_scores_and_is_not_applicable_without_them() -> None:
    frame = _frame().drop(columns=["p"])
    registry = CheckRegistry(builtin_checks())
    pack = parse_pack(PACK.replace("LIMIT", "0.1"), registry=registry)
    result = run_pack(pack, context_for_frame(frame, label="y", prediction="yhat"), registry=registry)
    assert {r.status for r in result.results} <= {Status.NOT_RUN, Status.NOT_APPLICABLE}


def test_spark_path_equals_pandas_from_the_auc_histogram(spark: Any) -> None:
    from governance.spark import predictions_evidence

    frame = predictions_frame(50_000, seed=11)
    df = spark.createDataFrame(frame)
    doc = predictions_evidence(df, label="label", prediction="prediction", score="score",
                               sensitive=["sex", "race", "age_band"])
    pandas_doc = metrics_evidence(frame, "label", "prediction", "score", ["sex", "race", "age_band"])
    spark_cal, pandas_cal = doc["metrics"]["calibration"], pandas_doc["calibration"]
    assert spark_cal["resolution"] == pandas_cal["resolution"] == 100
    # every score lands in the same bin: counts and positives are equal exactly, sums to rounding
    assert spark_cal["overall"]["n"] == pandas_cal["overall"]["n"]
    assert spark_cal["overall"]["positives"] == pandas_cal["overall"]["positives"]
    assert spark_cal["overall"]["score_sum"] == pytest.approx(pandas_cal["overall"]["score_sum"], rel=1e-12)
    assert spark_cal["by_group"].keys() == pandas_cal["by_group"].keys()
    for key, groups in pandas_cal["by_group"].items():
        assert spark_cal["by_group"][key].keys() == groups.keys()
        for g, hist in groups.items():
            assert spark_cal["by_group"][key][g]["n"] == hist["n"]
            assert spark_cal["by_group"][key][g]["positives"] == hist["positives"]
    on_spark = CheckContext(evidence={**doc, "sensitive": ["sex", "race", "age_band"]})
    assert "scores" in on_spark.available()
    on_pandas = CheckContext(predictions=frame, label="label", prediction="prediction", score="score",
                             sensitive=("sex", "race", "age_band"))
    for bins in (10, 20):
        for metric in ("ece", "mce"):
            a, b = _measure(on_pandas, bins=bins, metric=metric), _measure(on_spark, bins=bins, metric=metric)
            assert b.value == pytest.approx(a.value, abs=1e-9)
            for g in a.by_group:
                assert b.by_group[g][metric] == pytest.approx(a.by_group[g][metric], abs=1e-9)
    ece, mce = _reference(frame["label"].to_numpy(), frame["score"].to_numpy(), 10)
    assert _measure(on_spark, bins=10, metric="mce").value == pytest.approx(mce, abs=1e-9)
    assert _measure(on_spark, bins=10).value == pytest.approx(ece, abs=1e-9)
