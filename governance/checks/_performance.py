"""Performance checks: overall, worst group, no worse than the champion (the version at an alias), and
calibration (ECE/MCE, see ``_calibration``).

From the predictions table when present, else from the metrics stored in the evidence
(``evidence["metrics"] = {"overall": {...}, "by_group": {grouping: {group: {...}}}}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field
from sqlmodel import col, select

from governance.catalog import Evidence, ModelAlias, ModelVersion
from governance.checks._base import Check, CheckContext, CheckParams, Measurement
from governance.checks._calibration import CalibrationCheck, calibration_evidence
from governance.checks._confusion import to_binary
from governance.checks._fairness import groupings
from governance.domain import EvidenceDocument, Metrics
from governance.errors import EvaluationError

__all__ = [
    "CLASSIFICATION",
    "HIGHER_IS_BETTER",
    "METRICS",
    "SCORED",
    "classification_from_counts",
    "compute_metrics",
    "metrics_evidence",
    "performance_checks",
]

CLASSIFICATION = ("accuracy", "balanced_accuracy", "f1", "precision", "recall")
SCORED = ("roc_auc", "log_loss")
REGRESSION = ("rmse", "mae", "r2")
METRICS = (*CLASSIFICATION, *SCORED, *REGRESSION)
HIGHER_IS_BETTER = {m: m not in ("log_loss", "rmse", "mae") for m in METRICS}


def classification_from_counts(tn: int, fp: int, fn: int, tp: int) -> dict[str, float | None]:
    """Accuracy, precision, recall, F1 and balanced accuracy from confusion counts (sklearn's definitions).

    Both engines use it: the pandas path on counts it takes from the arrays, the Spark path on counts
    aggregated on the cluster.
    """
    n = tn + fp + fn + tp
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    spec = tn / (tn + fp) if tn + fp else 0.0
    return {
        "accuracy": (tp + tn) / n if n else None,
        "precision": prec,
        "recall": rec,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "balanced_accuracy": (rec + spec) / 2 if (tp + fn and tn + fp) else (rec or spec),
    }


def compute_metrics(
    y_true: Any, y_pred: Any, score: Any, metrics: Sequence[str], *, pos_label: Any = None
) -> dict[str, float | None]:
    """Metrics with sklearn's definitions; a metric undefined on this data (one class for AUC) is None."""
    from sklearn import metrics as skm

    out: dict[str, float | None] = {}
    wanted = set(metrics)
    if wanted & {*CLASSIFICATION, *SCORED}:
        t = to_binary(y_true, pos_label, "label column")
        if wanted & set(CLASSIFICATION):
            p = to_binary(y_pred, pos_label, "prediction column")
            tp = int(np.sum(t & p))
            fp = int(np.sum(~t & p))
            fn = int(np.sum(t & ~p))
            tn = len(t) - tp - fp - fn
            table = classification_from_counts(tn, fp, fn, tp)
            out.update({m: table[m] for m in CLASSIFICATION if m in wanted})
        if wanted & set(SCORED):
            if score is None:
                raise EvaluationError("roc_auc and log_loss need a score column (predicted probability)")
            s = np.asarray(score, dtype=np.float64)
            both = bool(t.any() and (~t).any())
            if "roc_auc" in wanted:
                out["roc_auc"] = float(skm.roc_auc_score(t, s)) if both else None
            if "log_loss" in wanted:
                out["log_loss"] = float(skm.log_loss(t, np.clip(s, 1e-15, 1 - 1e-15), labels=[False, True]))
    if wanted & set(REGRESSION):
        yt = np.asarray(y_true, dtype=np.float64)
        yp = np.asarray(y_pred, dtype=np.float64)
        err = yp - yt
        if "rmse" in wanted:
            out["rmse"] = float(np.sqrt(np.mean(err**2)))
        if "mae" in wanted:
            out["mae"] = float(np.mean(np.abs(err)))
        if "r2" in wanted:
            denom = float(np.sum((yt - yt.mean()) ** 2))
            out["r2"] = 1.0 - float(np.sum(err**2)) / denom if denom else None
    return out


def _task_metrics(score: bool, regression: bool) -> list[str]:
    if regression:
        return list(REGRESSION)
    return list(CLASSIFICATION) + (list(SCORED) if score else [])


def metrics_evidence(
    frame: pd.DataFrame,
    label: str,
    prediction: str,
    score: str | None,
    sensitive: Sequence[str],
    *,
    regression: bool = False,
    pos_label: Any = None,
) -> dict[str, Any]:
    """The ``metrics`` block of an evidence document: overall and per group of every grouping."""
    names = _task_metrics(score is not None, regression)

    def one(part: pd.DataFrame) -> dict[str, float | None]:
        return compute_metrics(
            part[label].to_numpy(),
            part[prediction].to_numpy(),
            None if score is None else part[score].to_numpy(),
            names,
            pos_label=pos_label,
        )

    by_group: dict[str, dict[str, dict[str, Any]]] = {}
    for cols in groupings(list(sensitive), True):
        key = "&".join(cols)
        by_group[key] = {}
        keys = frame.loc[:, list(cols)].astype("object").where(frame.loc[:, list(cols)].notna(), "(missing)")
        for values, part in frame.groupby([keys[c] for c in cols], sort=True, dropna=False):
            vals = values if isinstance(values, tuple) else (values,)
            label_ = " & ".join(f"{c}={v}" for c, v in zip(cols, vals, strict=True))
            by_group[key][label_] = {"n": len(part), **one(part)}
    doc: dict[str, Any] = {"overall": {"n": len(frame), **one(frame)}, "by_group": by_group}
    if score is not None and not regression:
        doc["calibration"] = calibration_evidence(frame, label, score, sensitive, pos_label=pos_label)
    return doc


class PerformanceParams(CheckParams):
    aggregate: Literal["overall", "worst_group"] = "overall"
    sensitive: list[str] | None = None
    min_group_size: int = Field(default=0, ge=0)
    pos_label: int | str | bool | None = None


def _evidence_metrics(ctx: CheckContext, metric: str, sensitive: Sequence[str]) -> Metrics:
    if ctx.predictions is not None and ctx.label and ctx.prediction:
        return Metrics.model_validate(metrics_evidence(
            ctx.predictions, ctx.label, ctx.prediction, ctx.score, sensitive, regression=metric in REGRESSION
        ))
    stored = ctx.evidence.metrics
    if stored is None or metric not in stored.overall:
        raise EvaluationError(
            f"stored evidence has no {metric!r} metric; re-run governance.evaluate"
            + (" with a score (predict_proba)" if metric in SCORED else "")
        )
    return stored


class PerformanceCheck(Check):
    """One metric, overall or for the worst group."""

    Params: ClassVar[type[CheckParams]] = PerformanceParams
    metric: ClassVar[str]

    def compute(self, ctx: CheckContext, params: PerformanceParams) -> Measurement:
        metric = self.metric
        sensitive = list(params.sensitive or ctx.sensitive or ctx.evidence.sensitive)
        if params.aggregate == "overall":
            sensitive = []
        data = _evidence_metrics(ctx, metric, sensitive)
        overall = data.overall.get(metric)
        if params.aggregate == "overall":
            return Measurement(
                value=overall,
                evidence={"n": data.overall.get("n")},
                insufficient=None if overall is not None else f"{metric} is undefined on this data",
            )
        if not sensitive:
            raise EvaluationError("aggregate: worst_group needs sensitive features")
        by_group: dict[str, dict[str, float | int | None]] = {}
        sizes: dict[str, int] = {}
        for cols in groupings(sensitive, True):
            groups = data.by_group.get("&".join(cols))
            if groups is None:
                raise EvaluationError(f"no per-group metrics for {'&'.join(cols)!r} in the evidence")
            for group, row in groups.items():
                by_group[group] = {"n": row.get("n"), metric: row.get(metric)}
                sizes[group] = int(row.get("n") or 0)
        defined = {g: v[metric] for g, v in by_group.items() if v[metric] is not None}
        if not defined:
            return Measurement(
                by_group=by_group, group_sizes=sizes, insufficient=f"{metric} undefined in every group"
            )
        pick = max if not HIGHER_IS_BETTER[metric] else min
        worst = pick(defined, key=lambda g: float(defined[g] or 0.0))
        small = [g for g, n in sizes.items() if n < params.min_group_size]
        undefined = [g for g in by_group if g not in defined]
        reason = None
        if small:
            reason = f"group(s) smaller than minGroupSize {params.min_group_size}: {', '.join(small[:5])}"
        elif undefined:
            reason = f"{metric} undefined for group(s) {', '.join(undefined[:5])}"
        return Measurement(
            value=defined[worst],
            by_group=by_group,
            group_sizes=sizes,
            evidence={"worst_group": worst, "overall": overall},
            insufficient=reason,
        )


def _make(metric: str) -> PerformanceCheck:
    requires = {"predictions"} | ({"scores"} if metric in SCORED else set())
    cls = type(
        f"Perf_{metric}",
        (PerformanceCheck,),
        {
            "id": f"performance.{metric}",
            "metric": metric,
            "version": "1",
            "requires": frozenset(requires),
            "description": f"{metric} (overall or worst group)",
            "__module__": __name__,
        },
    )
    check: PerformanceCheck = cls()
    return check


class ChampionParams(CheckParams):
    metric: Literal[
        "accuracy",
        "balanced_accuracy",
        "f1",
        "precision",
        "recall",
        "roc_auc",
        "log_loss",
        "rmse",
        "mae",
        "r2",
    ] = "roc_auc"
    alias: str = "production"


class NoWorseThanChampion(Check):
    """Candidate minus champion (sign-adjusted: positive is better) on one metric; assert ``gte: -tol``."""

    id = "performance.no_worse_than_champion"
    version = "1"
    Params: ClassVar[type[CheckParams]] = ChampionParams
    requires = frozenset({"predictions", "catalog", "model_version"})
    description = "the candidate is no worse than the version at an alias, from its stored evidence"

    def compute(self, ctx: CheckContext, params: ChampionParams) -> Measurement:
        metric = params.metric
        mine = _evidence_metrics(ctx, metric, []).overall.get(metric)
        model_id = ctx.model.get("model_id")
        with ctx.session() as session:
            alias = session.exec(
                select(ModelAlias).where(ModelAlias.model_id == model_id, ModelAlias.alias == params.alias)
            ).first()
            if alias is None:
                return Measurement(
                    value=0.0,
                    evidence={"champion": None, "candidate": mine},
                    message=f"no version at alias {params.alias!r}: nothing to compare against",
                )
            champion = session.get(ModelVersion, alias.model_version_id)
            rows = session.exec(
                select(Evidence)
                .where(Evidence.model_version_id == alias.model_version_id)
                .order_by(col(Evidence.id).desc())
            ).all()
        theirs = None
        for row in rows:
            stored = EvidenceDocument.read(row.data, where=f"evidence #{row.id}").metrics
            theirs = None if stored is None else stored.overall.get(metric)
            if theirs is not None:
                break
        version = champion.version if champion is not None else None
        if alias.model_version_id == ctx.model.get("model_version_id"):
            return Measurement(
                value=0.0,
                evidence={"champion_version": version, "candidate": mine},
                message="the candidate is the champion",
            )
        if theirs is None:
            return Measurement(
                evidence={"champion_version": version},
                insufficient=f"champion version {version} has no stored {metric}",
            )
        if mine is None:
            return Measurement(insufficient=f"{metric} is undefined for the candidate")
        delta = mine - theirs if HIGHER_IS_BETTER[metric] else theirs - mine
        return Measurement(
            value=float(delta),
            evidence={
                "metric": metric,
                "candidate": mine,
                "champion": theirs,
                "champion_version": version,
                "alias": params.alias,
            },
        )


def performance_checks() -> list[Check]:
    return [*(_make(m) for m in METRICS), NoWorseThanChampion(), CalibrationCheck()]
