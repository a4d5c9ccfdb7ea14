"""Data quality (schema match, null rates, value ranges) and drift (PSI, KS) against the training baseline.

The baseline is the training dataset version's column statistics stored in the catalog
(``DatasetVersion.stats``), so no raw training data is needed::

    {"columns": {name: {"kind": "numeric", "count", "nulls", "bin_edges", "bin_counts", "mean", "std",
                        "min", "max"}
                 | {"kind": "categorical", "count", "nulls", "frequencies": {value: n}, "other": n}}}

KS is computed from the binned CDFs (the baseline keeps bins, not rows): it is the largest CDF gap at
the baseline's bin edges, a lower bound of the exact two-sample statistic.  KS is not defined for
categorical columns (reported as null).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from sqlmodel import col, select

from governance.catalog import DatasetVersion, RunIO
from governance.checks._base import Check, CheckContext, CheckParams, Measurement
from governance.errors import EvaluationError

if TYPE_CHECKING:  # pragma: no cover
    from sqlmodel import Session

__all__ = [
    "ColumnCounts",
    "baseline_stats",
    "data_checks",
    "drift_bins",
    "drift_from_counts",
    "drift_statistics",
    "load_baseline",
    "quality_from_counts",
    "quality_rule",
    "quality_summary",
    "training_baseline",
]

_EPS = 1e-4


def baseline_stats(frame: pd.DataFrame, *, bins: int = 10, max_categories: int = 50) -> dict[str, Any]:
    """Column statistics in the catalog's baseline format (quantile bins, top categories)."""
    columns: dict[str, Any] = {}
    for name in frame.columns:
        col = frame[name]
        nulls = int(col.isna().sum())
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.dropna().to_numpy(dtype=np.float64)
            if len(values):
                edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
                if len(edges) < 2:
                    edges = np.array([edges[0], edges[0] + 1.0])
                counts = np.histogram(values, bins=edges)[0]
            else:
                edges, counts = np.array([0.0, 1.0]), np.array([0])
            columns[str(name)] = {
                "kind": "numeric",
                "count": len(values),
                "nulls": nulls,
                "bin_edges": edges.tolist(),
                "bin_counts": counts.astype(int).tolist(),
                "mean": float(values.mean()) if len(values) else None,
                "std": float(values.std()) if len(values) else None,
                "min": float(values.min()) if len(values) else None,
                "max": float(values.max()) if len(values) else None,
            }
        else:
            freq = col.dropna().astype(str).value_counts()
            top = freq.iloc[:max_categories]
            columns[str(name)] = {
                "kind": "categorical",
                "count": int(freq.sum()),
                "nulls": nulls,
                "frequencies": {str(k): int(v) for k, v in top.items()},
                "other": int(freq.iloc[max_categories:].sum()),
            }
    return {"columns": columns}


def _psi(expected: np.ndarray[Any, Any], actual: np.ndarray[Any, Any]) -> float:
    e = expected / max(expected.sum(), 1)
    a = actual / max(actual.sum(), 1)
    e = np.clip(e, _EPS, None)
    a = np.clip(a, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_counts(values: np.ndarray[Any, Any], edges: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    idx = np.searchsorted(edges[1:-1], values, side="right")  # outside the range -> first/last bin
    return np.bincount(idx, minlength=len(edges) - 1)


def drift_bins(spec: Mapping[str, Any]) -> np.ndarray[Any, Any] | None:
    """The bin edges a numeric baseline column is compared on, or None when it has no usable bins."""
    if len(spec.get("bin_edges") or []) < 2 or spec.get("unit"):
        return None
    return np.asarray(spec["bin_edges"], dtype=np.float64)


def drift_statistics(frame: pd.DataFrame, baseline: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """PSI and (binned) KS for every column present in both the frame and the baseline."""
    actual: dict[str, np.ndarray[Any, Any]] = {}
    for name, spec in (baseline.get("columns") or {}).items():
        if name not in frame.columns:
            continue
        col = frame[name]
        if spec.get("kind") == "numeric":
            edges = drift_bins(spec)
            if edges is None:
                continue
            values = pd.to_numeric(col, errors="coerce").dropna().to_numpy(dtype=np.float64)
            actual[name] = _numeric_counts(values, edges)
        else:
            keys = list(dict(spec.get("frequencies") or {}))
            current = col.dropna().astype(str).value_counts()
            known = np.array([current.get(k, 0) for k in keys], dtype=np.int64)
            actual[name] = np.append(known, int(current.sum()) - int(known.sum()))
    return drift_from_counts(baseline, actual)


def drift_from_counts(
    baseline: Mapping[str, Any], actual: Mapping[str, Any]
) -> dict[str, dict[str, float | None]]:
    """PSI and binned KS from the current data's counts on the baseline's bins.

    ``actual[column]`` is, for a numeric column, the count of non-missing values in each of the
    baseline's bins (a value below the first edge counts in the first bin, above the last edge in the
    last); for a categorical column, the count of each baseline category (in the baseline's order)
    followed by the count of every other non-missing value.  The pandas path and the Spark engine both
    compute these counts and share this function.
    """
    out: dict[str, dict[str, float | None]] = {}
    for name, spec in (baseline.get("columns") or {}).items():
        if name not in actual:
            continue
        counts = np.asarray(actual[name], dtype=np.float64)
        if spec.get("kind") == "numeric":
            expected = np.asarray(spec["bin_counts"], dtype=np.float64)
            cdf_e = np.cumsum(expected) / max(expected.sum(), 1)
            cdf_a = np.cumsum(counts) / max(counts.sum(), 1)
            out[name] = {"psi": _psi(expected, counts), "ks": float(np.max(np.abs(cdf_e - cdf_a)))}
        else:
            freq: dict[str, int] = dict(spec.get("frequencies") or {})
            expected = np.array([*freq.values(), spec.get("other", 0)], dtype=np.float64)
            out[name] = {"psi": _psi(expected, counts), "ks": None}
    return out


@dataclass(frozen=True)
class ColumnCounts:
    """What data quality needs to know about one column, as counts.

    ``outside``: non-missing numeric values outside the baseline's [min, max] (with ``valid`` the
    number of non-missing numeric values); ``unseen``: non-missing values that are not a baseline
    category (with ``valid`` the non-missing values).  Both None when the baseline does not ask.
    """

    rows: int
    nulls: int
    dtype: str
    numeric: bool
    valid: int = 0
    outside: int | None = None
    unseen: int | None = None


def quality_rule(spec: Mapping[str, Any] | None) -> str | None:
    """Which comparison a baseline column asks for: ``"range"``, ``"unseen"`` or None."""
    if spec and spec.get("kind") == "numeric" and spec.get("min") is not None:
        return "range"
    if spec and spec.get("kind") == "categorical" and not spec.get("other"):
        return "unseen"
    return None


def _is_numeric(col: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col))


def quality_summary(frame: pd.DataFrame, baseline: Mapping[str, Any] | None) -> dict[str, Any]:
    """Null rates, out-of-range fractions (against the baseline's min/max) and the schema comparison."""
    cols = (baseline or {}).get("columns") or {}
    counts: dict[str, ColumnCounts] = {}
    for name in frame.columns:
        col = frame[name]
        spec = cols.get(str(name))
        rule = quality_rule(spec)
        valid, outside, unseen = 0, None, None
        if rule == "range" and spec is not None:
            values = pd.to_numeric(col, errors="coerce").dropna().to_numpy(dtype=np.float64)
            valid = len(values)
            outside = int(((values < spec["min"]) | (values > spec["max"])).sum())
        elif rule == "unseen" and spec is not None:
            seen = set((spec.get("frequencies") or {}).keys())
            strings = col.dropna().astype(str)
            valid = len(strings)
            unseen = int((~strings.isin(seen)).sum())
        counts[str(name)] = ColumnCounts(
            rows=len(col), nulls=int(col.isna().sum()), dtype=str(col.dtype), numeric=_is_numeric(col),
            valid=valid, outside=outside, unseen=unseen,
        )
    return quality_from_counts(counts, baseline)


def quality_from_counts(columns: Mapping[str, ColumnCounts], baseline: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``data_quality`` evidence block from per-column counts (shared by the pandas and Spark paths)."""
    cols = (baseline or {}).get("columns") or {}
    out: dict[str, Any] = {}
    for name, c in columns.items():
        row: dict[str, Any] = {"null_rate": c.nulls / c.rows if c.rows else 0.0, "dtype": c.dtype}
        if c.outside is not None:
            row["out_of_range"] = c.outside / c.valid if c.valid else 0.0
        elif c.unseen is not None:
            row["unseen_categories"] = c.unseen / c.valid if c.valid else 0.0
        out[name] = row
    schema = None
    if cols:
        present = set(columns)
        expected = set(cols)
        kind_mismatch = [
            name
            for name in sorted(present & expected)
            if (cols[name].get("kind") == "numeric") != columns[name].numeric
        ]
        schema = {
            "missing": sorted(expected - present),
            "unexpected": sorted(present - expected),
            "type_mismatch": kind_mismatch,
        }
    return {"columns": out, "schema": schema}


def training_baseline(session: Session, training_run_id: int | None) -> tuple[dict[str, Any] | None, list[int]]:
    """The drift/schema baseline of a training run: its input dataset versions' column statistics.

    Returns the merged baseline (``{"columns": {...}}``, the first input that describes a column wins)
    and the ids of the dataset versions it came from; ``(None, [])`` when the run is unknown or none of
    its input datasets has statistics.  No raw training data is read.
    """
    if training_run_id is None:
        return None, []
    merged: dict[str, Any] = {"columns": {}}
    ids: list[int] = []
    edges = session.exec(
        select(RunIO)
        .where(RunIO.run_id == training_run_id, RunIO.direction == "input", RunIO.artifact_kind == "dataset")
        .order_by(col(RunIO.id))
    ).all()
    for edge in edges:
        dv = session.get(DatasetVersion, edge.artifact_id)
        columns = (dv.stats or {}).get("columns") if dv is not None else None
        if dv is None or not columns or dv.id in ids:
            continue
        ids.append(int(dv.id or 0))
        for name, spec in columns.items():
            merged["columns"].setdefault(name, spec)
    return (merged if merged["columns"] else None), ids


def load_baseline(ctx: CheckContext) -> dict[str, Any]:
    """The training baseline of a context: resolved with it, stored in the evidence, or read from the
    training run's input dataset versions; :class:`EvaluationError` when there is none."""
    if ctx.baseline:
        return dict(ctx.baseline)
    stored = ctx.evidence.baseline
    if stored:
        return dict(stored)
    run_id = ctx.model.get("training_run_id")
    if ctx.catalog is None or run_id is None:
        raise EvaluationError(
            "no training baseline: the model version has no training run with input data stats"
        )
    with ctx.session() as session:
        merged, _ = training_baseline(session, run_id)
    if merged is None:
        raise EvaluationError(f"training run {run_id} has no input dataset version with column statistics")
    return merged


def _features(ctx: CheckContext) -> pd.DataFrame | None:
    return ctx.features


class ColumnsParams(CheckParams):
    columns: list[str] | None = None


def _select(data: dict[str, Any], columns: list[str] | None) -> dict[str, Any]:
    if columns is None:
        return data
    absent = [c for c in columns if c not in data]
    if absent:
        raise EvaluationError(
            f"column(s) {', '.join(absent)} not in the evaluation data; have: {', '.join(sorted(data))}"
        )
    return {c: data[c] for c in columns}


def _quality(ctx: CheckContext) -> dict[str, Any]:
    frame = _features(ctx)
    if frame is not None:
        try:
            base = load_baseline(ctx)
        except EvaluationError:
            base = None
        return quality_summary(frame, base)
    stored = ctx.evidence.data_quality
    if not stored:
        raise EvaluationError("no evaluation features and no stored data-quality evidence")
    return dict(stored)


class SchemaMatch(Check):
    """Number of schema differences from the training data (missing, unexpected, type changes)."""

    id = "data_quality.schema_match"
    version = "1"
    Params: ClassVar[type[CheckParams]] = CheckParams
    requires = frozenset({"baseline"})
    description = "the evaluation data has the training data's columns and kinds"

    def compute(self, ctx: CheckContext, params: CheckParams) -> Measurement:
        frame = _features(ctx)
        schema = (
            quality_summary(frame, load_baseline(ctx))["schema"]
            if frame is not None
            else (ctx.evidence.data_quality or {}).get("schema")
        )
        if schema is None:
            raise EvaluationError("no schema comparison available (no features and none stored)")
        by_group: dict[str, dict[str, float | int | None]] = {}
        for kind in ("missing", "unexpected", "type_mismatch"):
            for name in schema[kind]:
                by_group[name] = {kind: 1}
        problems = len(schema["missing"]) + len(schema["type_mismatch"])
        msg = "; ".join(f"{k}: {', '.join(v)}" for k, v in schema.items() if v) or "schema matches"
        return Measurement(value=float(problems), by_group=by_group, evidence=schema, message=msg)


class NullRate(Check):
    """The largest null rate over the chosen columns."""

    id = "data_quality.null_rate"
    version = "1"
    Params: ClassVar[type[CheckParams]] = ColumnsParams
    description = "largest fraction of missing values in a column"
    requires = frozenset({"data"})

    def compute(self, ctx: CheckContext, params: ColumnsParams) -> Measurement:
        cols = _select(_quality(ctx)["columns"], params.columns)
        by_group = {c: {"null_rate": v["null_rate"]} for c, v in cols.items()}
        worst = max((v["null_rate"] for v in cols.values()), default=0.0)
        return Measurement(value=float(worst), by_group=by_group)


class ValueRange(Check):
    """The largest fraction of values outside the training range (numeric) or unseen (categorical)."""

    id = "data_quality.value_range"
    version = "1"
    Params: ClassVar[type[CheckParams]] = ColumnsParams
    requires = frozenset({"baseline"})
    description = "values outside the range seen in training"

    def compute(self, ctx: CheckContext, params: ColumnsParams) -> Measurement:
        cols = _select(_quality(ctx)["columns"], params.columns)
        by_group: dict[str, dict[str, float | int | None]] = {}
        for name, row in cols.items():
            frac = row.get("out_of_range", row.get("unseen_categories"))
            if frac is not None:
                by_group[name] = {"out_of_range": float(frac)}
        if not by_group:
            raise EvaluationError("no column has a training range to compare with")
        return Measurement(value=max(v["out_of_range"] or 0.0 for v in by_group.values()), by_group=by_group)


class DriftParams(CheckParams):
    columns: list[str] | None = None


class Drift(Check):
    """The largest drift statistic over features, against the stored training baseline."""

    Params: ClassVar[type[CheckParams]] = DriftParams
    requires = frozenset({"baseline"})
    statistic: ClassVar[str]

    def compute(self, ctx: CheckContext, params: DriftParams) -> Measurement:
        frame = _features(ctx)
        if frame is not None:
            stats = drift_statistics(frame, load_baseline(ctx))
        elif ctx.evidence.drift:
            stats = dict(ctx.evidence.drift)
        else:
            raise EvaluationError("no evaluation features and no stored drift statistics")
        stats = _select(stats, params.columns)
        values = {f: v[self.statistic] for f, v in stats.items() if v.get(self.statistic) is not None}
        if not values:
            return Measurement(
                by_group=stats, insufficient=f"no column has a {self.statistic.upper()} statistic"
            )
        worst = max(values, key=lambda f: float(values[f] or 0.0))
        return Measurement(
            value=float(values[worst] or 0.0),
            by_group=stats,
            evidence={"worst_feature": worst, "ks_method": "binned CDF at baseline bin edges"},
            message=f"largest {self.statistic.upper()} {values[worst]:.4g} on {worst}",
        )


class PsiDrift(Drift):
    id = "drift.psi"
    version = "1"
    statistic = "psi"
    description = "population stability index against the training baseline (largest over features)"


class KsDrift(Drift):
    id = "drift.ks"
    version = "1"
    statistic = "ks"
    description = "Kolmogorov-Smirnov statistic from binned CDFs against the training baseline"


def data_checks() -> list[Check]:
    return [SchemaMatch(), NullRate(), ValueRange(), PsiDrift(), KsDrift()]
