"""Fairness rates from one pass of confusion counts vs fairlearn's MetricFrame; SHAP global importance.

    python -m benchmarks.bench_fairness [--quick]

* all per-group rates (selection rate, TPR, FPR, FNR, TNR, accuracy, precision) and every disparity for
  1M rows and 5 groups, target <= 0.2 s; the peer is fairlearn ``MetricFrame`` with 4 metrics on the
  same data (in quick mode the peer runs on 100k rows and its time is scaled x10, noted in the row);
* SHAP global importance (mean |SHAP|) on a 100k-row evaluation set within the default sample cap,
  for a tree model (TreeExplainer) and a linear model (LinearExplainer).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandas as pd

from benchmarks._common import Result, median_time
from governance.checks._confusion import DISPARITIES, confusion_by_group, rates
from governance.checks._explain import DEFAULT_SAMPLE_CAP, _import_shap, global_importance


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = rng.integers(0, 2, n)
    groups = pd.Categorical(np.array(["a", "b", "c", "d", "e"])[rng.integers(0, 5, n)])
    return y, p, pd.DataFrame({"group": groups})


def _ours(y: np.ndarray, p: np.ndarray, sens: pd.DataFrame) -> dict[str, object]:
    gc = confusion_by_group(y == 1, p == 1, sens)
    r = rates(gc.counts)
    return {"rates": r, **{k: f(r) for k, f in DISPARITIES.items()}}


def _fairlearn(y: np.ndarray, p: np.ndarray, sens: pd.DataFrame) -> object:
    from fairlearn.metrics import (
        MetricFrame,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    frame = MetricFrame(
        metrics={
            "sel": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "fnr": false_negative_rate,
        },
        y_true=y,
        y_pred=p,
        sensitive_features=sens["group"],
    )
    return frame.by_group, frame.difference()


def run(quick: bool = False) -> list[Result]:
    results: list[Result] = []
    n = 1_000_000
    y, p, sens = _data(n)
    ours = median_time(lambda: _ours(y, p, sens), repeat=5 if quick else 15)
    peer_n = 100_000 if quick else n
    py, pp, ps = (y[:peer_n], p[:peer_n], sens.iloc[:peer_n]) if quick else (y, p, sens)
    start = time.perf_counter()
    _fairlearn(py, pp, ps)
    peer = (time.perf_counter() - start) * (n / peer_n)
    note = (
        "7 rates + 6 disparities, 5 groups, categorical sensitive column; "
        "peer: fairlearn MetricFrame, 4 metrics"
        + (", measured on 100k rows and scaled x10 (quick mode)" if quick else ", same 1M rows")
    )
    results.append(
        Result(
            "fairness rates, 1M rows, 5 groups",
            ours,
            "s",
            target=0.2,
            peer="fairlearn MetricFrame",
            peer_measured=peer,
            note=note,
        )
    )
    strings = sens.assign(group=sens["group"].astype(str))
    ours_str = median_time(lambda: _ours(y, p, strings), repeat=3 if quick else 7)
    results.append(
        Result(
            "fairness rates, 1M rows, 5 groups, string column",
            ours_str,
            "s",
            target=0.2,
            note="same, sensitive column as Python strings (factorize cost included)",
        )
    )

    _import_shap()
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    rows = 100_000
    x = pd.DataFrame(rng.normal(size=(rows, 8)), columns=[f"f{i}" for i in range(8)])
    target = ((x["f0"] + 0.5 * x["f1"] - 0.3 * x["f2"] + rng.normal(0, 0.5, rows)) > 0).astype(int)
    fit_rows = 5_000
    forest = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0, n_jobs=1)
    forest.fit(x.iloc[:fit_rows], target.iloc[:fit_rows])
    linear = LogisticRegression(max_iter=500).fit(x.iloc[:fit_rows], target.iloc[:fit_rows])
    for label, model in (("tree (RandomForest, 50 trees)", forest), ("linear (LogisticRegression)", linear)):
        start = time.perf_counter()
        out = global_importance(model, x, show_progress=False)
        elapsed = time.perf_counter() - start
        results.append(
            Result(
                f"SHAP global importance, 100k rows, {label}",
                elapsed,
                "s",
                note=f"{out['explainer']}, sample cap {DEFAULT_SAMPLE_CAP} rows (seeded), 8 features",
            )
        )
    return results


def main(argv: list[str] | None = None) -> int:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = run(quick=quick)
    for r in rows:
        ratio = f"{r.ratio:.0f}x" if r.ratio else "-"
        peer = f"{r.peer_measured:.3f} s" if r.peer_measured is not None else "-"
        print(
            f"{r.name:<60} {r.measured:9.4f} {r.unit}  target {r.target}  met {r.met}  "
            f"peer {peer}  {ratio}  {r.note}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
