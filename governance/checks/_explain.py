"""Explainability with shap: global importance (mean |SHAP|), protected-feature rank, proxy features.

Explainer choice: ``TreeExplainer`` for tree models and ``LinearExplainer`` for linear models (exact and
cheap), also as the last step of a scikit-learn ``Pipeline`` whose earlier steps keep the feature names
(scalers, imputers): the model is explained on the transformed features, which for a linear model
gives exactly the pipeline's SHAP values per original feature.  Anything else gets
``PermutationExplainer`` on a smaller capped, seeded sample (``DEFAULT_AGNOSTIC_CAP`` rows, two
antithetic permutations) with an independent masker.  ``KernelExplainer`` is never used by default.
Long computations show a rich progress bar on a terminal.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from sqlmodel import select

from governance.catalog import DatasetField, RunIO
from governance.checks._base import Check, CheckContext, CheckParams, Measurement
from governance.domain import Importance
from governance.errors import EvaluationError, InputError

__all__ = ["DEFAULT_AGNOSTIC_CAP", "DEFAULT_SAMPLE_CAP", "explain_checks", "global_importance", "proxy_correlations"]

DEFAULT_SAMPLE_CAP = 2000
DEFAULT_AGNOSTIC_CAP = 300
_BACKGROUND = 100


def _kind(estimator: Any) -> str:
    name = type(estimator).__name__
    module = type(estimator).__module__
    if (
        module.startswith(("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm", "catboost"))
        and ("Forest" in name or "Tree" in name or "Boost" in name or "XGB" in name or "LGBM" in name)
        and "Hist" not in name
        and "AdaBoost" not in name
    ):
        return "tree"
    if module.startswith("sklearn.linear_model") and hasattr(estimator, "coef_"):
        return "linear"
    return "agnostic"


def _unwrap_pipeline(estimator: Any, features: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """For a Pipeline ending in a tree or linear model whose earlier steps keep the column names,
    the final model and the transformed features; otherwise the inputs unchanged."""
    steps = getattr(estimator, "steps", None)
    if not steps or len(steps) < 2 or _kind(steps[-1][1]) == "agnostic":
        return estimator, features
    transformed: Any = features
    for _name, step in steps[:-1]:
        if step in (None, "passthrough"):
            continue
        names = getattr(step, "get_feature_names_out", None)
        if names is None or list(names()) != [str(c) for c in features.columns]:
            return estimator, features
        transformed = step.transform(transformed)
    frame = pd.DataFrame(np.asarray(transformed, dtype=np.float64), columns=features.columns, index=features.index)
    return steps[-1][1], frame


def _positive_output(values: Any) -> np.ndarray[Any, Any]:
    arr = np.asarray(values.values if hasattr(values, "values") else values, dtype=np.float64)
    if arr.ndim == 3:  # (n, features, outputs): the positive class
        arr = arr[:, :, -1]
    return arr


def _progress(total: int, show: bool | None) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    enabled = sys.stderr.isatty() if show is None else show
    return Progress(
        TextColumn("SHAP"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rows"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )


def _import_shap() -> Any:
    """shap, imported on first use; its import-time deprecation noise (matplotlib, numba) is not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        import shap

    return shap


def global_importance(
    estimator: Any,
    features: pd.DataFrame,
    *,
    max_samples: int = DEFAULT_SAMPLE_CAP,
    seed: int = 0,
    explainer: str = "auto",
    show_progress: bool | None = None,
    chunk: int = 250,
    permutations: int = 2,
    agnostic_max_samples: int = DEFAULT_AGNOSTIC_CAP,
) -> dict[str, Any]:
    """Mean |SHAP| per feature on at most ``max_samples`` rows (``agnostic_max_samples`` for the
    permutation explainer), seeded.

    Returns ``{"importance": {feature: value}, "explainer": name, "sample_size": n}``.
    """
    shap = _import_shap()

    if features.shape[1] == 0 or len(features) == 0:
        raise InputError("global importance needs a non-empty feature frame")
    if explainer == "auto":
        estimator, features = _unwrap_pipeline(estimator, features)
    kind = _kind(estimator) if explainer == "auto" else explainer
    cap = max_samples if kind in ("tree", "linear") else min(max_samples, agnostic_max_samples)
    sample = features.sample(n=cap, random_state=seed) if len(features) > cap else features
    background = shap.sample(features, min(_BACKGROUND, len(features)), random_state=seed)
    if kind == "tree":
        values = shap.TreeExplainer(estimator).shap_values(sample, check_additivity=False)
        name = "TreeExplainer"
    elif kind == "linear":
        values = shap.LinearExplainer(estimator, shap.maskers.Independent(background)).shap_values(sample)
        name = "LinearExplainer"
    elif kind in ("permutation", "agnostic"):
        predict = getattr(estimator, "predict_proba", None)

        def fn(x: Any) -> Any:
            frame = pd.DataFrame(x, columns=features.columns)
            return predict(frame)[:, -1] if predict is not None else estimator.predict(frame)

        masker = shap.maskers.Independent(background)
        perm = shap.PermutationExplainer(fn, masker, seed=seed)
        max_evals = 2 * (features.shape[1] + 1) * permutations
        parts = []
        with _progress(len(sample), show_progress) as progress:
            task = progress.add_task("shap", total=len(sample))
            for start in range(0, len(sample), chunk):
                block = sample.iloc[start : start + chunk]
                parts.append(perm(block, max_evals=max_evals, silent=True).values)
                progress.advance(task, len(block))
        values = np.concatenate(parts, axis=0)
        name = "PermutationExplainer"
    else:
        raise InputError(f"explainer: expected auto, tree, linear or permutation, got {explainer!r}")
    arr = _positive_output(values)
    mean_abs = np.abs(arr).mean(axis=0)
    importance = {str(c): float(v) for c, v in zip(features.columns, mean_abs, strict=True)}
    return {
        "importance": dict(sorted(importance.items(), key=lambda kv: -kv[1])),
        "explainer": name,
        "sample_size": len(sample),
    }


def _encode(series: pd.Series) -> np.ndarray[Any, Any]:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numeric: np.ndarray[Any, Any] = series.to_numpy(dtype=np.float64)
        return numeric
    codes: np.ndarray[Any, Any] = pd.factorize(series, sort=True)[0].astype(np.float64)
    return codes


def _abs_corr(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 3:
        return 0.0
    xs, ys = x[ok], y[ok]
    if xs.std() == 0 or ys.std() == 0:
        return 0.0
    return float(abs(np.corrcoef(xs, ys)[0, 1]))


def proxy_correlations(
    frame: pd.DataFrame, protected: Sequence[str], features: Sequence[str]
) -> dict[str, dict[str, float]]:
    """|correlation| of every feature with every protected attribute (one-hot for categories, worst level)."""
    out: dict[str, dict[str, float]] = {}
    for attr in protected:
        if attr not in frame.columns:
            continue
        col = frame[attr]
        if pd.api.types.is_numeric_dtype(col) and col.nunique() > 2:
            targets = [col.to_numpy(dtype=np.float64)]
        else:
            levels = col.dropna().unique()
            targets = [
                (col == lvl).to_numpy(dtype=np.float64) for lvl in levels[: 50 if len(levels) > 2 else 1]
            ]
        out[attr] = {}
        for feat in features:
            if feat == attr or feat not in frame.columns:
                continue
            x = _encode(frame[feat])
            out[attr][str(feat)] = max((_abs_corr(x, t) for t in targets), default=0.0)
    return out


def _importance(ctx: CheckContext, params: Any) -> Importance:
    stored = ctx.evidence.importance
    if stored is not None and stored.by_feature:
        return stored
    if ctx.estimator is None or ctx.features is None:
        raise EvaluationError("no stored importance and no estimator/features to compute it")
    return Importance.model_validate(
        global_importance(ctx.estimator, ctx.features, max_samples=params.max_samples, seed=params.seed))


def _protected(ctx: CheckContext, explicit: list[str] | None) -> list[str]:
    found = list(explicit or ctx.sensitive or ctx.evidence.sensitive)
    if not found:
        raise EvaluationError("no protected attributes: set `protected` in the check's `with`")
    return found


class RankParams(CheckParams):
    protected: list[str] | None = None
    top_k: int = Field(default=5, ge=1)
    max_samples: int = Field(default=DEFAULT_SAMPLE_CAP, ge=10)
    seed: int = 0


class ProtectedFeatureRank(Check):
    """1.0 when no protected attribute (or tagged proxy) is among the top-k features by mean |SHAP|."""

    id = "explainability.protected_feature_rank"
    version = "1"
    Params: ClassVar[type[CheckParams]] = RankParams
    requires = frozenset({"importance"})
    description = "no protected attribute among the top-k features by global importance"

    def compute(self, ctx: CheckContext, params: RankParams) -> Measurement:
        imp = _importance(ctx, params)
        ranking = sorted(imp.by_feature.items(), key=lambda kv: -kv[1])
        protected = set(_protected(ctx, params.protected))
        rank = {f: i + 1 for i, (f, _) in enumerate(ranking)}
        top = [f for f, _ in ranking[: params.top_k]]
        offenders = [f for f in top if f in protected]
        by_group: dict[str, dict[str, float | int | None]] = {
            f: {"rank": rank[f], "importance": float(v), "protected": int(f in protected)}
            for f, v in ranking
            if rank[f] <= params.top_k or f in protected
        }
        message = (
            f"protected feature(s) in the top {params.top_k}: {', '.join(offenders)}"
            if offenders
            else f"no protected feature in the top {params.top_k}"
        )
        return Measurement(value=0.0 if offenders else 1.0, by_group=by_group, evidence=imp.stored(),
                           message=message)


class ProxyParams(CheckParams):
    protected: list[str] | None = None
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    use_lineage: bool = True


def _lineage_proxies(ctx: CheckContext) -> dict[str, list[str]]:
    """Features whose training-data column tags mark them ``protected`` or ``proxy:<attr>``."""
    stored = ctx.evidence.column_tags
    tags: dict[str, list[str]] = dict(stored) if stored else {}
    if not tags and ctx.catalog is not None and ctx.model.get("training_run_id") is not None:
        with ctx.session() as session:
            edges = session.exec(
                select(RunIO).where(
                    RunIO.run_id == ctx.model["training_run_id"],
                    RunIO.direction == "input",
                    RunIO.artifact_kind == "dataset",
                )
            ).all()
            for edge in edges:
                for fld in session.exec(
                    select(DatasetField).where(DatasetField.dataset_version_id == edge.artifact_id)
                ).all():
                    tags.setdefault(fld.name, []).extend(fld.tags or [])
    return {f: t for f, t in tags.items() if any(x == "protected" or x.startswith("proxy:") for x in t)}


class ProxyFeatures(Check):
    """The number of model features tied to a protected attribute by column lineage tags or correlation."""

    id = "explainability.proxy_features"
    version = "1"
    Params: ClassVar[type[CheckParams]] = ProxyParams
    requires = frozenset({"data"})
    description = "features that act as proxies for protected attributes (lineage tags or correlation)"

    def compute(self, ctx: CheckContext, params: ProxyParams) -> Measurement:
        protected = _protected(ctx, params.protected)
        feature_names = list(ctx.model.get("features") or [])
        frame = ctx.features
        if frame is not None and ctx.predictions is not None:
            extra = [c for c in protected if c in ctx.predictions.columns and c not in frame.columns]
            if extra and len(ctx.predictions) == len(frame):
                frame = frame.assign(**{c: ctx.predictions[c].to_numpy() for c in extra})
        if not feature_names and ctx.features is not None:
            feature_names = [str(c) for c in ctx.features.columns]
        if frame is not None:
            corr = proxy_correlations(frame, protected, [f for f in feature_names if f not in protected])
        elif ctx.evidence.proxy_correlations:
            corr = dict(ctx.evidence.proxy_correlations)
        else:
            corr = {}
        tagged = _lineage_proxies(ctx) if params.use_lineage else {}
        if not corr and not tagged and ctx.catalog is None:
            raise EvaluationError(
                "proxy_features needs the feature frame, stored correlations or column lineage"
            )
        by_group: dict[str, dict[str, float | int | None]] = {}
        for attr, values in corr.items():
            for feat, r in values.items():
                if r > params.threshold:
                    row = by_group.setdefault(feat, {})
                    row[f"corr:{attr}"] = float(r)
        for feat in tagged:
            if feat in protected or (feature_names and feat not in feature_names):
                continue
            by_group.setdefault(feat, {})["lineage"] = 1
        names = sorted(by_group)
        message = f"proxy feature(s): {', '.join(names)}" if names else "no proxy features found"
        return Measurement(
            value=float(len(names)),
            by_group=by_group,
            message=message,
            evidence={"threshold": params.threshold, "correlations": corr, "lineage_tags": tagged},
        )


def explain_checks() -> list[Check]:
    return [ProtectedFeatureRank(), ProxyFeatures()]
