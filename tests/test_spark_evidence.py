"""The Spark engine's evidence equals the pandas path's: exactly for counts and everything derived from
them, within the stored bound for histogram AUC (a real local Spark session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from governance.checks import baseline_stats, drift_statistics, quality_summary
from governance.checks._fairness import confusion_evidence
from governance.checks._performance import metrics_evidence
from governance.spark import auc_from_histograms, data_evidence, predictions_evidence
from tests._spark_support import predictions_frame, spark

__all__ = ["spark"]

SENSITIVE = ["sex", "race", "age_band"]
CLASSIFICATION = ("accuracy", "balanced_accuracy", "f1", "precision", "recall")


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    frame = predictions_frame(20_000, seed=1)
    path = tmp_path_factory.mktemp("spark") / "predictions.parquet"
    frame.to_parquet(path, index=False)
    return path, pd.read_parquet(path)


def test_confusion_and_metrics_equal_the_pandas_path(spark: Any, table: tuple[Path, pd.DataFrame]) -> None:
    path, frame = table
    doc = predictions_evidence(
        spark.read.parquet(str(path)), label="label", prediction="prediction", score="score", sensitive=SENSITIVE
    )
    assert doc["confusion"] == confusion_evidence(frame, "label", "prediction", SENSITIVE)
    assert set(doc["confusion"]) == {"sex", "race", "age_band", "sex&race&age_band"}
    assert len(doc["confusion"]["sex&race&age_band"]["groups"]) == 2 * 3 * 4
    expected = metrics_evidence(frame, "label", "prediction", "score", SENSITIVE)
    assert doc["n"] == expected["overall"]["n"] == len(frame)
    bounds = doc["score_bins"]["roc_auc_error_bound"]

    def same(got: dict[str, Any], want: dict[str, Any], bound: float) -> None:
        assert got["n"] == want["n"]
        for name in CLASSIFICATION:
            assert got[name] == want[name], name  # the same function on the same counts: bit-equal
        assert got["log_loss"] == pytest.approx(want["log_loss"], rel=1e-12)
        assert abs(got["roc_auc"] - want["roc_auc"]) <= bound + 1e-12
        assert 0 < bound < 2e-3  # 1,000 bins: a small, non-trivial bound

    same(doc["metrics"]["overall"], expected["overall"], bounds["overall"])
    assert doc["metrics"]["by_group"].keys() == expected["by_group"].keys()
    for key, groups in expected["by_group"].items():
        assert doc["metrics"]["by_group"][key].keys() == groups.keys()
        for group, want in groups.items():
            same(doc["metrics"]["by_group"][key][group], want, bounds["by_group"][key][group])


def test_auc_bound_holds_and_shrinks_with_bins(spark: Any, table: tuple[Path, pd.DataFrame]) -> None:
    path, frame = table
    df = spark.read.parquet(str(path))
    exact = metrics_evidence(frame, "label", "prediction", "score", [])["overall"]["roc_auc"]
    coarse = predictions_evidence(df, label="label", prediction="prediction", score="score", score_bins=10)
    err10 = coarse["score_bins"]["roc_auc_error_bound"]["overall"]
    fine = predictions_evidence(df, label="label", prediction="prediction", score="score", score_bins=1000)
    err1000 = fine["score_bins"]["roc_auc_error_bound"]["overall"]
    assert abs(coarse["metrics"]["overall"]["roc_auc"] - exact) <= err10
    assert abs(fine["metrics"]["overall"]["roc_auc"] - exact) <= err1000
    assert err1000 < err10 / 20


def test_auc_from_histograms_ties_and_missing_class() -> None:
    auc, err = auc_from_histograms(np.array([0, 2]), np.array([2, 0]))
    assert (auc, err) == (1.0, 0.0)
    auc, err = auc_from_histograms(np.array([1, 1]), np.array([1, 1]))
    assert auc == 0.5 and err == 0.25  # half the pairs share a bin
    assert auc_from_histograms(np.array([3, 1]), np.array([0, 0])) == (None, None)


def test_quality_and_drift_equal_the_pandas_path(spark: Any, table: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    path, frame = table
    train = predictions_frame(5_000, seed=2)
    train["income"] = train["income"] - 5.0  # shifted: drift is not zero
    baseline = baseline_stats(train.loc[:, ["income", "region", "age_band", "sex"]], bins=10)
    baseline["columns"]["region"]["frequencies"].pop("moon")  # a category the training data lacked
    baseline["columns"]["region"]["other"] = 0
    features = ["income", "region", "age_band", "sex", "race"]
    doc = data_evidence(spark.read.parquet(str(path)), features, baseline)
    want_quality = quality_summary(frame.loc[:, features], baseline)
    got_quality = doc["data_quality"]
    assert got_quality["schema"] == want_quality["schema"] == {
        "missing": [], "unexpected": ["race"], "type_mismatch": []}
    for name in features:
        got = {k: v for k, v in got_quality["columns"][name].items() if k != "dtype"}
        want = {k: v for k, v in want_quality["columns"][name].items() if k != "dtype"}
        assert got == want, name
    assert got_quality["columns"]["income"]["null_rate"] > 0
    assert got_quality["columns"]["region"]["unseen_categories"] > 0
    want_drift = drift_statistics(frame.loc[:, features], baseline)
    assert doc["drift"] == want_drift
    assert doc["drift"]["income"]["psi"] > 0.01


def test_missing_column_is_one_line_input_error(spark: Any, table: tuple[Path, pd.DataFrame]) -> None:
    from governance.errors import InputError

    path, _ = table
    with pytest.raises(InputError, match=r"no sensitive column 'gender'; columns are: sex, race"):
        predictions_evidence(spark.read.parquet(str(path)), label="label", prediction="prediction",
                             sensitive=["gender"], source="p.parquet")
