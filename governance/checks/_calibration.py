"""Calibration: expected and maximum calibration error over equal-width score bins, overall and per group.

Bin ``b`` of ``M`` holds scores in ``[b/M, (b+1)/M)`` (the last bin also holds 1.0).  With ``n_b``
scores in bin ``b``, ``pos_b`` of them positives and ``sum_b`` their sum, and ``N`` scores in all:

* ECE = sum_b (n_b / N) * |pos_b / n_b - sum_b / n_b| = sum_b |pos_b - sum_b| / N;
* MCE = max over non-empty bins of |pos_b - sum_b| / n_b.

The mean score and the share of positives per bin are :func:`sklearn.calibration.calibration_curve`'s
``prob_pred`` and ``prob_true`` with ``strategy="uniform"``, except for a score exactly on an inner bin
edge, which sklearn puts in the lower bin and this puts in the upper one (as ``numpy.histogram`` does).

The counts are additive, so the engines agree: a predictions frame is binned and summed here, exactly;
stored evidence (``evidence["metrics"]["calibration"]``) keeps the same counts and sums at
:data:`CALIBRATION_RESOLUTION` bins per group, from which any bin count dividing it is an exact
regrouping.  On Spark the counts and sums come from the score histogram the AUC already computes (one
``groupBy``): bin ``b`` of ``M`` is fine bin ``floor(s * 1000) // (1000 / M)``, and pandas bins the same
way, so both assign every score to the same bin; the sums differ only by floating-point summation
order (ECE and MCE agree to 1e-9; tests compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from governance.checks._base import Check, CheckContext, CheckParams, Measurement
from governance.checks._confusion import MISSING_GROUP, to_binary
from governance.checks._fairness import groupings
from governance.errors import EvaluationError

__all__ = [
    "CALIBRATION_RESOLUTION",
    "FINE_BINS",
    "CalibrationCheck",
    "bin_index",
    "calibration_error",
    "calibration_evidence",
    "coarsen",
]

#: the fine binning both engines share (the Spark path's AUC histogram, ``DEFAULT_SCORE_BINS``)
FINE_BINS = 1000
#: bins per group kept in stored evidence; a check's ``bins`` must divide it to be computed from evidence
CALIBRATION_RESOLUTION = 100


def bin_index(score: np.ndarray[Any, Any], bins: int) -> np.ndarray[Any, Any]:
    """Each score's bin of ``bins`` equal-width bins over [0, 1] (see the module docstring)."""
    s = np.asarray(score, dtype=np.float64)
    if FINE_BINS % bins == 0:
        fine = np.clip(np.floor(s * float(FINE_BINS)), 0, FINE_BINS - 1).astype(np.int64)
        return fine // (FINE_BINS // bins)
    return np.clip(np.floor(s * float(bins)), 0, bins - 1).astype(np.int64)


def _histogram(y: np.ndarray[Any, Any], s: np.ndarray[Any, Any], codes: np.ndarray[Any, Any], groups: int,
               bins: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    cell = codes * bins + bin_index(s, bins)
    size = groups * bins
    n = np.bincount(cell, minlength=size).reshape(groups, bins)
    pos = np.bincount(cell, weights=y.astype(np.float64), minlength=size).reshape(groups, bins)
    total = np.bincount(cell, weights=s, minlength=size).reshape(groups, bins)
    return n.astype(np.int64), np.rint(pos).astype(np.int64), total


def calibration_error(n: Sequence[int] | np.ndarray[Any, Any], pos: Sequence[int] | np.ndarray[Any, Any],
                      score_sum: Sequence[float] | np.ndarray[Any, Any]) -> dict[str, Any]:
    """ECE, MCE and the reliability table (non-empty bins) from per-bin counts, positives and score sums."""
    counts = np.asarray(n, dtype=np.float64)
    positives = np.asarray(pos, dtype=np.float64)
    sums = np.asarray(score_sum, dtype=np.float64)
    gap = np.abs(positives - sums)
    total = float(counts.sum())
    if total == 0:
        return {"n": 0, "ece": None, "mce": None, "bins": []}
    full = counts > 0
    bins = len(counts)
    table = [
        {"bin": int(b), "low": b / bins, "high": (b + 1) / bins, "n": int(counts[b]),
         "mean_score": float(sums[b] / counts[b]), "fraction_positive": float(positives[b] / counts[b])}
        for b in np.flatnonzero(full)
    ]
    return {"n": int(total), "ece": float(gap.sum() / total), "mce": float((gap[full] / counts[full]).max()),
            "bins": table}


def _group_names(frame: pd.DataFrame, cols: Sequence[str]) -> pd.Series:
    keys = frame.loc[:, list(cols)].astype("object").where(frame.loc[:, list(cols)].notna(), MISSING_GROUP)
    out = f"{cols[0]}=" + keys[cols[0]].astype(str)
    for c in cols[1:]:
        out = out + f" & {c}=" + keys[c].astype(str)
    return out


def _scores(values: Any, what: str) -> np.ndarray[Any, Any]:
    s = np.asarray(values, dtype=np.float64)
    if np.isnan(s).any():
        raise EvaluationError(f"{what} has missing values; drop or fill them first")
    if len(s) and (s.min() < 0.0 or s.max() > 1.0):
        raise EvaluationError(f"{what} has values outside [0, 1]; calibration needs probabilities")
    return s


def _hist_doc(n: np.ndarray[Any, Any], pos: np.ndarray[Any, Any], total: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"n": n.tolist(), "positives": pos.tolist(), "score_sum": total.tolist()}


def calibration_evidence(
    frame: pd.DataFrame, label: str, score: str, sensitive: Sequence[str], *, pos_label: Any = None,
    bins: int = CALIBRATION_RESOLUTION,
) -> dict[str, Any]:
    """Per-bin counts, positives and score sums, overall and per group of every grouping (stored evidence)."""
    y = to_binary(frame[label].to_numpy(), pos_label, f"label column {label!r}")
    s = _scores(frame[score].to_numpy(), f"score column {score!r}")
    n, pos, total = _histogram(y, s, np.zeros(len(s), dtype=np.int64), 1, bins)
    doc: dict[str, Any] = {"resolution": bins, "overall": _hist_doc(n[0], pos[0], total[0]), "by_group": {}}
    for cols in groupings(list(sensitive), True):
        codes, names = pd.factorize(_group_names(frame, cols), sort=True)
        gn, gpos, gtotal = _histogram(y, s, codes.astype(np.int64), len(names), bins)
        doc["by_group"]["&".join(cols)] = {
            str(name): _hist_doc(gn[i], gpos[i], gtotal[i]) for i, name in enumerate(names)}
    return doc


def coarsen(hist: dict[str, Any], resolution: int, bins: int) -> dict[str, Any]:
    """A stored histogram of ``resolution`` bins regrouped into ``bins`` (which must divide it)."""
    step = resolution // bins

    def fold(values: Sequence[Any], dtype: Any) -> np.ndarray[Any, Any]:
        folded: np.ndarray[Any, Any] = np.asarray(values, dtype=dtype).reshape(bins, step).sum(axis=1)
        return folded

    return calibration_error(fold(hist["n"], np.int64), fold(hist["positives"], np.int64),
                             fold(hist["score_sum"], np.float64))


class CalibrationParams(CheckParams):
    bins: int = Field(default=10, ge=2, le=FINE_BINS)
    metric: Literal["ece", "mce"] = "ece"
    aggregate: Literal["overall", "worst_group"] = "overall"
    sensitive: list[str] | None = None
    min_group_size: int = Field(default=0, ge=0)
    pos_label: int | str | bool | None = None


class CalibrationCheck(Check):
    """Expected (or maximum) calibration error over equal-width bins, overall or for the worst group;
    assert ``lte``.  Per-group values are reported whenever sensitive features are known."""

    id = "performance.calibration"
    version = "1"
    Params: ClassVar[type[CheckParams]] = CalibrationParams
    requires = frozenset({"predictions", "scores"})
    description = "calibration error (ECE or MCE, equal-width bins), overall or worst group"

    def _tables(self, ctx: CheckContext, params: CalibrationParams, sensitive: list[str],
                ) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, Any]]], str]:
        bins = params.bins
        if ctx.predictions is not None and ctx.label and ctx.score:
            frame = ctx.predictions
            y = to_binary(frame[ctx.label].to_numpy(), params.pos_label, f"label column {ctx.label!r}")
            s = _scores(frame[ctx.score].to_numpy(), f"score column {ctx.score!r}")
            n, pos, total = _histogram(y, s, np.zeros(len(s), dtype=np.int64), 1, bins)
            overall = calibration_error(n[0], pos[0], total[0])
            by: dict[str, dict[str, dict[str, Any]]] = {}
            for cols in groupings(sensitive, True):
                codes, names = pd.factorize(_group_names(frame, cols), sort=True)
                gn, gpos, gtotal = _histogram(y, s, codes.astype(np.int64), len(names), bins)
                by["&".join(cols)] = {str(name): calibration_error(gn[i], gpos[i], gtotal[i])
                                      for i, name in enumerate(names)}
            return overall, by, "predictions"
        stored = None if ctx.evidence.metrics is None else ctx.evidence.metrics.calibration
        if not stored:
            raise EvaluationError("stored evidence has no calibration histogram; re-run governance.evaluate "
                                  "with a score (predict_proba), or check a predictions table")
        resolution = int(stored["resolution"])
        if resolution % bins:
            raise EvaluationError(f"bins: stored evidence keeps {resolution} bins per group; bins must divide it "
                                  f"(e.g. 10, 20, 25, 50), got {bins}; or check a predictions table")
        overall = coarsen(stored["overall"], resolution, bins)
        by = {}
        for cols in groupings(sensitive, True):
            key = "&".join(cols)
            groups = (stored.get("by_group") or {}).get(key)
            if groups is None:
                raise EvaluationError(f"no per-group calibration for {key!r} in the evidence")
            by[key] = {g: coarsen(h, resolution, bins) for g, h in groups.items()}
        return overall, by, "evidence"

    def compute(self, ctx: CheckContext, params: CalibrationParams) -> Measurement:
        metric = params.metric
        sensitive = list(params.sensitive or ctx.sensitive or ctx.evidence.sensitive)
        if params.aggregate == "worst_group" and not sensitive:
            raise EvaluationError("aggregate: worst_group needs sensitive features")
        overall, by, source = self._tables(ctx, params, sensitive)
        by_group = {g: {"n": t["n"], "ece": t["ece"], "mce": t["mce"]}
                    for groups in by.values() for g, t in groups.items()}
        sizes = {g: int(v["n"] or 0) for g, v in by_group.items()}
        evidence: dict[str, Any] = {"bins": params.bins, "metric": metric, "ece": overall["ece"],
                                    "mce": overall["mce"], "n": overall["n"], "reliability": overall["bins"],
                                    "computed_from": source}
        if params.aggregate == "overall":
            value = overall[metric]
            return Measurement(value=value, by_group=by_group, group_sizes=sizes, evidence=evidence,
                               insufficient=None if value is not None else "no scores to bin")
        defined = {g: float(v[metric]) for g, v in by_group.items() if v[metric] is not None}
        if not defined:
            return Measurement(by_group=by_group, group_sizes=sizes, evidence=evidence,
                               insufficient="no group has scores to bin")
        worst = max(defined, key=lambda g: defined[g])
        small = [g for g, n in sizes.items() if n < params.min_group_size]
        reason = (f"group(s) smaller than minGroupSize {params.min_group_size}: {', '.join(small[:5])}"
                  if small else None)
        return Measurement(value=defined[worst], by_group=by_group, group_sizes=sizes,
                           evidence={**evidence, "worst_group": worst}, insufficient=reason)
