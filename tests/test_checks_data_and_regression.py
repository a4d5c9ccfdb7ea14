"""Regression metrics agree with scikit-learn; data_quality.value_range against a training baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import Ridge

from governance.checks import CheckContext, CheckRegistry, baseline_stats, builtin_checks
from governance.policy import Status, context_for_frame, evaluate, parse_pack, run_pack

TOL = 1e-9

REGRESSION_PACK = """
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: reg, version: "1"}
checks:
  - {id: rmse, uses: performance.rmse, assert: {lte: 2.0}}
  - {id: mae, uses: performance.mae, assert: {lte: 1.5}}
  - {id: r2, uses: performance.r2, assert: {gte: 0.9}}
  - {id: worst_rmse, uses: performance.rmse, with: {aggregate: worst_group, sensitive: [region]},
     assert: {lte: 2.0}}
"""


@pytest.fixture(scope="module")
def registry() -> CheckRegistry:
    return CheckRegistry(builtin_checks())


def _regression_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east"], n)
    y = rng.normal(100, 15, n)
    noise = rng.normal(0, 1, n) * np.where(region == "east", 3.0, 1.0)  # the east is predicted worse
    return pd.DataFrame({"y": y, "y_hat": y + noise + 0.2, "region": region})


def test_regression_metrics_agree_with_sklearn(registry: CheckRegistry) -> None:
    frame = _regression_frame()
    ctx = context_for_frame(frame, label="y", prediction="y_hat", sensitive=["region"])
    result = run_pack(parse_pack(REGRESSION_PACK, registry=registry), ctx, registry=registry)
    by_id = {r.id: r for r in result.results}
    rmse = float(np.sqrt(skm.mean_squared_error(frame.y, frame.y_hat)))
    assert by_id["rmse"].value == pytest.approx(rmse, abs=TOL)
    assert by_id["mae"].value == pytest.approx(skm.mean_absolute_error(frame.y, frame.y_hat), abs=TOL)
    assert by_id["r2"].value == pytest.approx(skm.r2_score(frame.y, frame.y_hat), abs=TOL)
    per_region = {
        g: float(np.sqrt(skm.mean_squared_error(part.y, part.y_hat))) for g, part in frame.groupby("region")
    }
    worst = by_id["worst_rmse"]
    assert worst.value == pytest.approx(per_region["east"], abs=TOL)
    assert worst.measurement is not None and worst.measurement.evidence["worst_group"] == "region=east"
    for region, value in per_region.items():
        assert worst.by_group[f"region={region}"]["rmse"] == pytest.approx(value, abs=TOL)
    # the east's noise is three times the others': overall passes, the worst group does not
    assert by_id["rmse"].status is Status.PASS and worst.status is Status.FAIL
    assert by_id["r2"].status is Status.PASS and by_id["mae"].status is Status.PASS


def test_r2_is_undefined_on_a_constant_label(registry: CheckRegistry) -> None:
    frame = pd.DataFrame({"y": [3.0] * 10, "y_hat": np.linspace(2, 4, 10)})
    pack = parse_pack(REGRESSION_PACK, registry=registry)
    result = run_pack(pack, context_for_frame(frame, label="y", prediction="y_hat"), registry=registry)
    r2 = next(r for r in result.results if r.id == "r2")
    assert r2.status is Status.INSUFFICIENT_EVIDENCE and "undefined" in r2.message
    rmse = next(r for r in result.results if r.id == "rmse")
    assert rmse.value == pytest.approx(np.sqrt(skm.mean_squared_error(frame.y, frame.y_hat)), abs=TOL)


def test_evaluate_stores_regression_metrics_that_reassert_without_data(registry: CheckRegistry) -> None:
    rng = np.random.default_rng(4)
    data = pd.DataFrame({"x1": rng.normal(size=800), "x2": rng.normal(size=800),
                         "region": rng.choice(["north", "south"], 800)})
    data["y"] = 3 * data.x1 - 2 * data.x2 + rng.normal(0, 0.5, 800)
    model = Ridge(alpha=1.0).fit(data[["x1", "x2"]], data.y)
    record = evaluate(model, data, label="y", sensitive=["region"], features=["x1", "x2"], registry=registry)
    assert record.data["task"] == "regression" and "confusion" not in record.data
    predicted = model.predict(data[["x1", "x2"]])
    overall = record.data["metrics"]["overall"]
    assert overall["rmse"] == pytest.approx(float(np.sqrt(skm.mean_squared_error(data.y, predicted))), abs=TOL)
    assert overall["mae"] == pytest.approx(skm.mean_absolute_error(data.y, predicted), abs=TOL)
    assert overall["r2"] == pytest.approx(skm.r2_score(data.y, predicted), abs=TOL)
    # the stored evidence alone (no frame) is enough for the gate
    stored_only = CheckContext(evidence=record.data, sensitive=("region",))
    result = run_pack(parse_pack(REGRESSION_PACK, registry=registry), stored_only, registry=registry)
    assert {r.id: r.status for r in result.results} == {
        "rmse": Status.PASS, "mae": Status.PASS, "r2": Status.PASS, "worst_rmse": Status.PASS}
    north = data.region == "north"
    expected = float(np.sqrt(skm.mean_squared_error(data.y[north], predicted[north.to_numpy()])))
    assert result.results[3].by_group["region=north"]["rmse"] == pytest.approx(expected, abs=TOL)


VALUE_RANGE_PACK = """
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: ranges, version: "1"}
checks:
  - {id: range, uses: data_quality.value_range, assert: {lte: 0.05}}
  - {id: income_range, uses: data_quality.value_range, with: {columns: [income]}, assert: {lte: 0.05}}
"""


def test_value_range_against_the_training_baseline(registry: CheckRegistry) -> None:
    rng = np.random.default_rng(9)
    train = pd.DataFrame({"income": rng.uniform(20, 80, 2000), "city": rng.choice(["a", "b", "c"], 2000)})
    baseline = baseline_stats(train)
    current = pd.DataFrame({
        "income": np.concatenate([rng.uniform(20, 80, 900), rng.uniform(90, 100, 60), [10.0] * 40]),
        "city": ["a"] * 700 + ["b"] * 200 + ["d"] * 100,  # "d" never seen in training
    })
    pack = parse_pack(VALUE_RANGE_PACK, registry=registry)
    result = run_pack(pack, CheckContext(features=current, baseline=baseline), registry=registry)
    whole, income = result.results
    lo, hi = train.income.min(), train.income.max()
    outside = float(((current.income < lo) | (current.income > hi)).mean())
    assert outside == pytest.approx(0.1)  # 60 above and 40 below the training range, of 1000
    assert whole.by_group["income"]["out_of_range"] == pytest.approx(outside, abs=TOL)
    assert whole.by_group["city"]["out_of_range"] == pytest.approx(0.1, abs=TOL)
    assert whole.value == pytest.approx(0.1, abs=TOL) and whole.status is Status.FAIL
    assert income.value == pytest.approx(outside, abs=TOL) and set(income.by_group) == {"income"}

    inside = pd.DataFrame({"income": rng.uniform(21, 79, 500), "city": rng.choice(["a", "c"], 500)})
    clean = run_pack(pack, CheckContext(features=inside, baseline=baseline), registry=registry)
    assert [r.status for r in clean.results] == [Status.PASS, Status.PASS]
    assert clean.results[0].value == 0.0

    # no baseline: not run (the gate fails closed), never a silent pass
    missing = run_pack(pack, CheckContext(features=current), registry=registry)
    assert [r.status for r in missing.results] == [Status.NOT_RUN, Status.NOT_RUN]
    assert missing.status is Status.ERROR
    # a column the evaluation data does not have is an ERROR naming it
    absent = parse_pack(VALUE_RANGE_PACK.replace("columns: [income]", "columns: [salary]"), registry=registry)
    outcome = run_pack(absent, CheckContext(features=current, baseline=baseline), registry=registry).results[1]
    assert outcome.status is Status.ERROR and "salary" in outcome.message
