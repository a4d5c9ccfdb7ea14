"""Evidence pushed down to the cluster: small aggregates computed where the data lives.

Every number the gate reads is additive, so Spark computes counts and the driver receives only them:

* **confusion counts**, every grouping (each sensitive column and their intersection) from one
  ``groupBy(sensitive..., label, prediction).count()``: the driver gets one row per distinct
  combination, and :func:`governance.checks.confusion_by_group` (the pandas path's own function, with
  the counts as row weights) turns them into the stored counts.  Rates, disparities and the
  classification metrics come from the same functions as on the pandas path, so they are equal exactly.
* **score histograms** per intersectional group and label, with :data:`DEFAULT_SCORE_BINS` equal-width
  bins over [0, 1] (over [min, max] when scores leave [0, 1]); ROC AUC is computed from them, counting a
  positive and a negative in the same bin as a tie (1/2).  Pairs in different bins are ordered exactly,
  so ``|binned - exact| <= 1/2 * sum_b pos_b * neg_b / (P * N)``: the share of positive-negative pairs
  that share a bin, halved.  That bound is computed from the same histogram and stored next to every AUC
  (``evidence["score_bins"]``); with 1,000 bins and smooth scores it is of the order of 1e-4.  Log loss
  is exact up to floating-point summation order (sums of ``-log p`` per group and label, no bins).
  The same ``groupBy`` sums the scores per bin, so calibration (``metrics["calibration"]``: counts,
  positives and score sums per group at 100 bins) needs no other pass; see
  :mod:`governance.checks._calibration` for why its bins equal the pandas path's.
* **drift counts** on the stored training baseline's bin edges (numeric) and category frequencies,
  and **data-quality counts** (nulls, values outside the training range, unseen categories, the schema),
  all in one ``agg`` over the feature columns; :func:`governance.checks.drift_statistics`'s and
  :func:`governance.checks.quality_summary`'s own formulas turn them into PSI, KS and rates.

No row is collected: results come back through Arrow as small tables (groups x labels x bins at most).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from governance.checks import (
    CALIBRATION_RESOLUTION,
    MISSING_GROUP,
    ColumnCounts,
    GroupCounts,
    classification_from_counts,
    confusion_by_group,
    drift_bins,
    drift_from_counts,
    groupings,
    quality_from_counts,
    quality_rule,
    to_binary,
)
from governance.errors import EvaluationError, InputError
from governance.spark._session import require_pyspark

__all__ = [
    "DEFAULT_SCORE_BINS",
    "auc_from_histograms",
    "confusion_counts",
    "data_evidence",
    "predictions_evidence",
]

DEFAULT_SCORE_BINS = 1000
_N = "__gov_n"
_BIN = "__gov_bin"
_LOSS_POS = "__gov_loss_pos"
_LOSS_NEG = "__gov_loss_neg"
_SCORE_SUM = "__gov_score_sum"
_CLIP = 1e-15


def _check_columns(df: Any, wanted: Sequence[tuple[str, str | None]], source: str) -> None:
    have = list(df.columns)
    absent = [f"{role} column {name!r}" for role, name in wanted if name is not None and name not in have]
    if absent:
        raise InputError(f"{source}: no {'; no '.join(absent)}; columns are: {', '.join(have) or '(none)'}")


def auc_from_histograms(pos: np.ndarray[Any, Any], neg: np.ndarray[Any, Any]) -> tuple[float | None, float | None]:
    """ROC AUC from per-bin counts of positives and negatives (ties within a bin count 1/2), and the
    bound on its distance from the exact AUC; ``(None, None)`` when a class is absent."""
    p, n = float(pos.sum()), float(neg.sum())
    if p == 0 or n == 0:
        return None, None
    below = np.cumsum(neg) - neg  # negatives in lower bins
    same = float(np.dot(pos, neg))
    auc = (float(np.dot(pos, below)) + 0.5 * same) / (p * n)
    return auc, 0.5 * same / (p * n)


def _group_labels(frame: pd.DataFrame, cols: Sequence[str]) -> pd.Series:
    """Group names as the pandas path writes them (``sex=F & race=B``; missing values ``(missing)``)."""
    keys = frame.loc[:, list(cols)].astype("object").where(frame.loc[:, list(cols)].notna(), MISSING_GROUP)
    parts = [f"{c}=" + keys[c].astype(str) for c in cols]
    out = parts[0]
    for part in parts[1:]:
        out = out + " & " + part
    return out


def confusion_counts(
    df: Any, *, label: str, prediction: str, sensitive: Sequence[str], pos_label: Any = None
) -> dict[str, GroupCounts]:
    """Confusion counts of every grouping from one ``groupBy(sensitive..., label, prediction).count()``."""
    functions = require_pyspark()
    rows = df.groupBy(*sensitive, label, prediction).agg(functions.count(functions.lit(1)).alias(_N))
    return _confusion_from_rows(rows.toArrow().to_pandas(), label, prediction, sensitive, pos_label)


def _confusion_from_rows(
    rows: pd.DataFrame, label: str, prediction: str, sensitive: Sequence[str], pos_label: Any
) -> dict[str, GroupCounts]:
    y_true = to_binary(rows[label].to_numpy(), pos_label, f"label column {label!r}")
    y_pred = to_binary(rows[prediction].to_numpy(), pos_label, f"prediction column {prediction!r}")
    weights = rows[_N].to_numpy(dtype=np.int64)
    out: dict[str, GroupCounts] = {}
    for cols in groupings(list(sensitive), True):
        gc = confusion_by_group(y_true, y_pred, rows.loc[:, list(cols)], weights=weights)
        out[gc.key] = gc
    return out


def _score_range(df: Any, score: str) -> tuple[float, float]:
    functions = require_pyspark()
    value = functions.col(score).cast("double")
    row = df.agg(
        functions.min(value).alias("lo"),
        functions.max(value).alias("hi"),
        functions.count(functions.when(value.isNull() | functions.isnan(value), 1)).alias("missing"),
    ).collect()[0]
    if int(row["missing"]):
        raise EvaluationError(f"score column {score!r} has {int(row['missing'])} missing values; drop or fill them")
    lo, hi = row["lo"], row["hi"]
    if lo is None:
        return 0.0, 1.0
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return float(lo), float(hi)


def _metrics_row(counts: np.ndarray[Any, Any]) -> dict[str, Any]:
    tn, fp, fn, tp = (int(x) for x in counts)
    return {"n": tn + fp + fn + tp, **classification_from_counts(tn, fp, fn, tp)}


def predictions_evidence(
    df: Any,
    *,
    label: str,
    prediction: str,
    score: str | None = None,
    sensitive: Sequence[str] = (),
    pos_label: Any = None,
    score_bins: int = DEFAULT_SCORE_BINS,
    score_range: tuple[float, float] | None = None,
    source: str = "Spark DataFrame",
) -> dict[str, Any]:
    """The ``confusion``, ``metrics`` and ``score_metrics`` evidence of a predictions DataFrame.

    With a score, the one ``groupBy`` also keys on the score's bin (and sums the log-loss terms), so a
    DataFrame that computes its predictions is evaluated once.  ``score_range`` skips the pass that finds
    the scores' range (give ``(0, 1)`` for probabilities).
    """
    functions = require_pyspark()
    if score_bins < 2:
        raise InputError(f"score_bins: expected at least 2, got {score_bins}")
    _check_columns(
        df,
        [("label", label), ("prediction", prediction), ("score", score), *(("sensitive", s) for s in sensitive)],
        source,
    )
    keys: list[Any] = [*sensitive, label, prediction]
    aggs: list[Any] = [functions.count(functions.lit(1)).alias(_N)]
    lo, hi = 0.0, 1.0
    if score is not None:
        lo, hi = score_range if score_range is not None else _score_range(df, score)
        value = functions.col(score).cast("double")
        if hi > lo:
            scaled = functions.floor((value - functions.lit(lo)) * functions.lit(score_bins / (hi - lo)))
            bin_expr = functions.least(functions.greatest(scaled, functions.lit(0)), functions.lit(score_bins - 1))
        else:
            bin_expr = functions.lit(0)
        keys.append(bin_expr.cast("int").alias(_BIN))
        clipped = functions.least(functions.greatest(value, functions.lit(_CLIP)), functions.lit(1 - _CLIP))
        aggs += [
            functions.sum(-functions.log(clipped)).alias(_LOSS_POS),
            functions.sum(-functions.log(functions.lit(1.0) - clipped)).alias(_LOSS_NEG),
            functions.sum(value).alias(_SCORE_SUM),
        ]
    rows = df.groupBy(*keys).agg(*aggs).toArrow().to_pandas()
    if not len(rows):
        raise EvaluationError(f"{source}: no rows to evaluate")
    confusion = _confusion_from_rows(rows, label, prediction, sensitive, pos_label)
    total = np.zeros(4, dtype=np.int64)
    for gc in confusion.values():
        total = gc.counts.sum(axis=0)
        break
    if not sensitive:
        y_t = to_binary(rows[label].to_numpy(), pos_label, f"label column {label!r}")
        y_p = to_binary(rows[prediction].to_numpy(), pos_label, f"prediction column {prediction!r}")
        cells = (y_t.astype(np.int64) << 1) | y_p.astype(np.int64)
        total = np.bincount(cells, weights=rows[_N].to_numpy(), minlength=4).astype(np.int64)
    overall = _metrics_row(total)
    by_group: dict[str, dict[str, dict[str, Any]]] = {
        key: {g: _metrics_row(c) for g, c in zip(gc.groups, gc.counts, strict=True)}
        for key, gc in confusion.items()
    }
    doc: dict[str, Any] = {
        "n": int(total.sum()),
        "confusion": {key: gc.to_dict() for key, gc in confusion.items()},
        "metrics": {"overall": overall, "by_group": by_group},
    }
    if score is not None:
        grouped = _grouped(rows, sensitive)
        bounds = _score_metrics(rows, label, grouped, pos_label, score_bins, overall, by_group)
        doc["score_metrics"] = {k: overall.get(k) for k in ("roc_auc", "log_loss")}
        doc["score_bins"] = {"bins": score_bins, "range": [lo, hi], "roc_auc_error_bound": bounds}
        if (lo, hi) == (0.0, 1.0):
            doc["metrics"]["calibration"] = _calibration(rows, label, grouped, pos_label, score_bins)
    return doc


def _grouped(rows: pd.DataFrame, sensitive: Sequence[str]) -> dict[str, tuple[np.ndarray[Any, Any], list[str]]]:
    """Each grouping's group code per histogram row and the group names (computed once, used twice)."""
    out: dict[str, tuple[np.ndarray[Any, Any], list[str]]] = {}
    for cols in groupings(list(sensitive), True):
        codes, uniques = pd.factorize(_group_labels(rows, cols))
        out["&".join(cols)] = (codes.astype(np.int64), [str(u) for u in uniques])
    return out


def _score_metrics(
    rows: pd.DataFrame,
    label: str,
    grouped: Mapping[str, tuple[np.ndarray[Any, Any], list[str]]],
    pos_label: Any,
    bins: int,
    overall: dict[str, Any],
    by_group: dict[str, dict[str, dict[str, Any]]],
) -> dict[str, Any]:
    """Fill roc_auc and log_loss into the metrics rows; return the AUC error bounds (same shape)."""
    y = to_binary(rows[label].to_numpy(), pos_label, f"label column {label!r}")
    n = rows[_N].to_numpy(dtype=np.int64)
    b = rows[_BIN].to_numpy(dtype=np.int64)
    loss = np.where(y, rows[_LOSS_POS].to_numpy(dtype=np.float64), rows[_LOSS_NEG].to_numpy(dtype=np.float64))

    def fill(codes: np.ndarray[Any, Any], groups: int) -> tuple[list[Any], list[Any], list[float]]:
        pos = np.zeros((groups, bins), dtype=np.int64)
        neg = np.zeros((groups, bins), dtype=np.int64)
        np.add.at(pos, (codes[y], b[y]), n[y])
        np.add.at(neg, (codes[~y], b[~y]), n[~y])
        sums = np.zeros(groups, dtype=np.float64)
        np.add.at(sums, codes, loss)
        aucs, errs = zip(*(auc_from_histograms(pos[g], neg[g]) for g in range(groups)), strict=True)
        sizes = pos.sum(axis=1) + neg.sum(axis=1)
        return list(aucs), list(errs), [float(s / m) if m else float("nan") for s, m in zip(sums, sizes, strict=True)]

    aucs, errs, losses = fill(np.zeros(len(rows), dtype=np.int64), 1)
    overall.update(roc_auc=aucs[0], log_loss=losses[0])
    bounds: dict[str, Any] = {"overall": errs[0], "by_group": {}}
    for key, (codes, uniques) in grouped.items():
        g_aucs, g_errs, g_losses = fill(codes, len(uniques))
        bounds["by_group"][key] = {}
        for i, name in enumerate(uniques):
            row = by_group[key].get(str(name))
            if row is None:
                raise EvaluationError(f"group {name!r} of {key!r} has a score histogram but no confusion counts")
            row.update(roc_auc=g_aucs[i], log_loss=g_losses[i])
            bounds["by_group"][key][str(name)] = g_errs[i]
    return bounds


def _calibration(rows: pd.DataFrame, label: str, grouped: Mapping[str, tuple[np.ndarray[Any, Any], list[str]]],
                 pos_label: Any, bins: int) -> dict[str, Any]:
    """Calibration evidence from the same histogram rows (counts, positives and score sums per fine bin),
    regrouped to the stored resolution; the pandas path's format (:func:`calibration_evidence`)."""
    resolution = math.gcd(bins, CALIBRATION_RESOLUTION)
    step = bins // resolution
    y = to_binary(rows[label].to_numpy(), pos_label, f"label column {label!r}")
    n = rows[_N].to_numpy(dtype=np.int64)
    coarse = rows[_BIN].to_numpy(dtype=np.int64) // step
    total = rows[_SCORE_SUM].to_numpy(dtype=np.float64)

    def hist(codes: np.ndarray[Any, Any], groups: int) -> list[dict[str, Any]]:
        cell = codes * resolution + coarse
        size = groups * resolution
        count = np.bincount(cell, weights=n, minlength=size).reshape(groups, resolution)
        pos = np.bincount(cell[y], weights=n[y], minlength=size).reshape(groups, resolution)
        sums = np.bincount(cell, weights=total, minlength=size).reshape(groups, resolution)
        whole = np.rint(count).astype(np.int64)
        positives = np.rint(pos).astype(np.int64)
        return [{"n": whole[g].tolist(), "positives": positives[g].tolist(), "score_sum": sums[g].tolist()}
                for g in range(groups)]

    doc: dict[str, Any] = {"resolution": resolution, "overall": hist(np.zeros(len(rows), dtype=np.int64), 1)[0],
                           "by_group": {}}
    for key, (codes, uniques) in grouped.items():
        tables = hist(codes, len(uniques))
        doc["by_group"][key] = {name: tables[i] for i, name in enumerate(uniques)}
    return doc


def _numeric(field: Any) -> bool:
    from pyspark.sql.types import BooleanType, NumericType

    return isinstance(field.dataType, NumericType) and not isinstance(field.dataType, BooleanType)


def _as_text(functions: Any, field: Any) -> Any:
    """Values as the pandas path's ``astype(str)`` spells them (booleans ``True``/``False``)."""
    from pyspark.sql.types import BooleanType

    column = functions.col(field.name)
    if isinstance(field.dataType, BooleanType):
        return functions.when(column, functions.lit("True")).when(~column, functions.lit("False"))
    return column.cast("string")


def data_evidence(df: Any, features: Sequence[str], baseline: Mapping[str, Any] | None) -> dict[str, Any]:
    """``data_quality`` (and ``drift`` with a baseline) of the feature columns, from one ``agg``."""
    functions = require_pyspark()
    from pyspark.sql.types import DoubleType, FloatType

    _check_columns(df, [("feature", f) for f in features], "evaluation data")
    spec_of = (baseline or {}).get("columns") or {}
    by_name = {f.name: f for f in df.schema.fields}
    exprs: list[Any] = [functions.count(functions.lit(1)).alias("rows")]
    plan: dict[str, dict[str, Any]] = {}

    def add(expr: Any) -> str:
        name = f"c{len(exprs)}"
        exprs.append(expr.alias(name))
        return name

    for name in features:
        field = by_name[name]
        column = functions.col(name)
        missing = column.isNull()
        if isinstance(field.dataType, DoubleType | FloatType):
            missing = missing | functions.isnan(column)
        entry: dict[str, Any] = {"field": field, "nulls": add(functions.count(functions.when(missing, 1)))}
        spec = spec_of.get(name)
        rule = quality_rule(spec)
        number = column.try_cast("double")
        valid_number = number.isNotNull() & ~functions.isnan(number)
        text = _as_text(functions, field)
        if rule == "range" and spec is not None:
            entry["valid"] = add(functions.count(functions.when(valid_number, 1)))
            outside = valid_number & ((number < float(spec["min"])) | (number > float(spec["max"])))
            entry["outside"] = add(functions.count(functions.when(outside, 1)))
        elif rule == "unseen" and spec is not None:
            seen = list((spec.get("frequencies") or {}).keys())
            entry["valid"] = add(functions.count(functions.when(~missing, 1)))
            entry["unseen"] = add(functions.count(functions.when(~missing & ~text.isin(seen), 1)))
        if spec is not None and spec.get("kind") == "numeric":
            edges = drift_bins(spec)
            if edges is not None:
                index = sum(
                    (functions.when(number >= float(e), 1).otherwise(0) for e in edges[1:-1]), functions.lit(0)
                )
                entry["bins"] = [
                    add(functions.count(functions.when(valid_number & (index == k), 1))) for k in range(len(edges) - 1)
                ]
        elif spec is not None:
            keys = list(dict(spec.get("frequencies") or {}))
            entry["nonmissing"] = add(functions.count(functions.when(~missing, 1)))
            entry["categories"] = [add(functions.count(functions.when(~missing & (text == k), 1))) for k in keys]
        plan[name] = entry
    row = df.agg(*exprs).collect()[0].asDict()
    rows = int(row["rows"])
    counts: dict[str, ColumnCounts] = {}
    actual: dict[str, np.ndarray[Any, Any]] = {}
    for name, entry in plan.items():
        field = entry["field"]
        counts[name] = ColumnCounts(
            rows=rows,
            nulls=int(row[entry["nulls"]]),
            dtype=field.dataType.simpleString(),
            numeric=_numeric(field),
            valid=int(row[entry["valid"]]) if "valid" in entry else 0,
            outside=int(row[entry["outside"]]) if "outside" in entry else None,
            unseen=int(row[entry["unseen"]]) if "unseen" in entry else None,
        )
        if "bins" in entry:
            actual[name] = np.array([int(row[c]) for c in entry["bins"]], dtype=np.int64)
        elif "categories" in entry:
            known = np.array([int(row[c]) for c in entry["categories"]], dtype=np.int64)
            actual[name] = np.append(known, int(row[entry["nonmissing"]]) - int(known.sum()))
    out: dict[str, Any] = {"data_quality": quality_from_counts(counts, baseline)}
    if baseline is not None:
        out["drift"] = drift_from_counts(baseline, actual)
    return out
