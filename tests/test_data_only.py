"""Data-only mode with the shipped packs, and metrics that need scores.

Checks that need a registered model version (lineage, documentation, explanations, drift against a
training baseline) are NOT_APPLICABLE to a predictions table: shown as such in every format, neither
a pass nor a failure, so the README's data-only example gates on fairness and performance alone.
Metrics that need scores are not applicable without scores and are never computed from hard labels.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from governance.checks import CheckRegistry, builtin_checks
from governance.policy import Status, context_for_frame, evaluate, parse_pack, run_pack

ROOT = Path(__file__).resolve().parents[1]


def _readme_data_only_command() -> list[str]:
    lines = [line.strip() for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()]
    # the tour's example (the Spark section has another, for a cluster path)
    found = [line for line in lines if line.startswith("gov check --predictions ") and "--engine" not in line]
    assert len(found) == 1, found
    return shlex.split(found[0])[1:]


def _table(path: Path, *, biased: bool) -> None:
    rng = np.random.default_rng(4)
    n = 2000
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(["a", "b", "c"], n)
    y = rng.integers(0, 2, n)
    p = np.clip(0.75 * y + 0.25 * rng.random(n) - (0.5 * (sex == "F") if biased else 0.0), 0, 1)
    frame = pd.DataFrame({"y": y, "yhat": (p >= 0.5).astype(int), "p": p, "sex": sex, "race": race})
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)


@pytest.mark.parametrize(("biased", "expected"), [(False, 0), (True, 1)])
def test_the_readmes_data_only_example_runs_verbatim(gov_env: Path, biased: bool, expected: int) -> None:
    argv = _readme_data_only_command()
    table = next(a for a in argv if a.endswith((".csv", ".parquet")))
    _table(gov_env / table, biased=biased)
    proc = subprocess.run([sys.executable, "-m", "governance.cli", *argv, "--format", "json"], cwd=gov_env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == expected, proc.stdout + proc.stderr
    results = {r["id"]: r for r in json.loads(proc.stdout)["results"]}
    assert results["lineage.traceable"]["status"] == "NOT_APPLICABLE"
    assert results["docs.card_complete"]["status"] == "NOT_APPLICABLE"
    assert {results[c]["status"] for c in ("perf.accuracy", "fairness.selection_rate_ratio")} <= {"PASS", "FAIL"}
    if biased:
        assert results["fairness.selection_rate_ratio"]["status"] == "FAIL"
    assert "lacks what these checks need" not in proc.stderr


def test_not_applicable_reads_as_such_in_the_text_table(gov_env: Path) -> None:
    argv = _readme_data_only_command()
    table = next(a for a in argv if a.endswith((".csv", ".parquet")))
    _table(gov_env / table, biased=False)
    proc = subprocess.run([sys.executable, "-m", "governance.cli", *argv], cwd=gov_env, capture_output=True,
                          text=True, timeout=300, check=False, env={"COLUMNS": "220", **_env()})
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "lineage.traceable" in line)
    assert "NOT_APPLICABLE" in row and "not applicable: a predictions table" in row
    assert "gate PASSED" in proc.stdout


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_")}


AUC_PACK = """
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: t, version: "1"}
checks:
  - {id: auc, uses: performance.roc_auc, assert: {gte: 0.7}}
  - {id: acc, uses: performance.accuracy, assert: {gte: 0.5}}
"""


def test_a_score_column_of_hard_labels_is_not_a_score() -> None:
    frame = pd.DataFrame({"y": [0, 1] * 50, "yhat": [0, 1] * 50, "s": [0.0, 1.0] * 50})
    registry = CheckRegistry(builtin_checks())
    result = run_pack(parse_pack(AUC_PACK, registry=registry),
                      context_for_frame(frame, label="y", prediction="yhat", score="s"), registry=registry)
    auc, acc = result.results
    assert auc.status is Status.NOT_APPLICABLE and auc.value is None
    assert "score column 's' holds only 0 and 1" in auc.message
    assert acc.status is Status.PASS and result.status is Status.PASS


class HardProba(ClassifierMixin, BaseEstimator):
    """A classifier whose predict_proba is its hard prediction (as a reductions mixture of one)."""

    def fit(self, x: pd.DataFrame, y: pd.Series) -> HardProba:
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return (x["a"].to_numpy() > 0).astype(int)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        hard = self.predict(x).astype(float)
        return np.column_stack([1 - hard, hard])


def test_evaluate_records_no_scores_for_hard_probabilities(gov_env: Path) -> None:
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"a": rng.normal(size=400), "sex": rng.choice(["F", "M"], 400)})
    data["y"] = (data["a"] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    record = evaluate(HardProba().fit(data[["a"]], data["y"]), data, label="y", sensitive=["sex"])
    doc = record.data
    assert doc["score"] is None and "returns only 0 and 1" in doc["no_scores"]
    assert "roc_auc" not in doc["metrics"]["overall"] and "log_loss" not in doc["metrics"]["overall"]
    assert "score_metrics" not in doc
    ctx_result = run_pack(parse_pack(AUC_PACK), _stored(doc))
    assert ctx_result.results[0].status is Status.NOT_APPLICABLE


def _stored(doc: dict[str, object]) -> object:
    from governance.checks import CheckContext

    return CheckContext(evidence=dict(doc), inapplicable={"scores": str(doc["no_scores"])},
                        model={"model_version_id": 1})
