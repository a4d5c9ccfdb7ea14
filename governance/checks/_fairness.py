"""Fairness checks: disparities between groups of one or several sensitive features and their intersection.

Counts come from the predictions table when it is there, else from the per-group confusion counts
stored in the evidence (``evidence["confusion"][grouping]``), so a gate can assert fairness later
without the raw data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import Field

from governance.checks._base import Check, CheckContext, CheckParams, Measurement
from governance.checks._confusion import (
    DISPARITIES,
    GroupCounts,
    bootstrap_ci,
    confusion_by_group,
    grouping_key,
    rates,
    summarise,
    to_binary,
)
from governance.errors import EvaluationError

__all__ = [
    "FairnessCheck",
    "FairnessParams",
    "GroupRateCheck",
    "empty_sensitive_columns",
    "fairness_checks",
    "groupings",
    "load_counts",
]


class FairnessParams(CheckParams):
    sensitive: list[str] | None = Field(
        default=None, description="sensitive columns; default: the evaluation's"
    )
    intersectional: bool = True
    min_group_size: int = Field(default=0, ge=0)
    pos_label: int | str | bool | None = None
    missing: Literal["group", "drop"] = "group"
    bootstrap: int = Field(default=0, ge=0, le=100_000)
    seed: int = 0
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)


class GroupRateParams(FairnessParams):
    metric: Literal["selection_rate", "tpr", "fpr", "fnr", "tnr", "accuracy", "precision"]
    aggregate: Literal["difference", "ratio", "min", "max"] = "difference"


def groupings(columns: Sequence[str], intersectional: bool) -> list[tuple[str, ...]]:
    """Each sensitive column alone, plus all of them together when ``intersectional``."""
    out: list[tuple[str, ...]] = [(c,) for c in columns]
    if intersectional and len(columns) > 1:
        out.append(tuple(columns))
    return out


def _sensitive(ctx: CheckContext, params: FairnessParams) -> list[str]:
    cols = list(params.sensitive) if params.sensitive else list(ctx.sensitive)
    if not cols:
        stored = ctx.evidence.sensitive
        cols = list(stored)
    if not cols:
        raise EvaluationError(
            "no sensitive features: set `sensitive` in the check's `with` or pass --sensitive"
        )
    return cols


def empty_sensitive_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The sensitive columns of a non-empty ``frame`` in which every value is missing."""
    if frame.empty:
        return []
    return [c for c in columns if c in frame.columns and bool(frame[c].isna().all())]


def load_counts(
    ctx: CheckContext,
    columns: tuple[str, ...],
    *,
    pos_label: Any = None,
    missing: Literal["group", "drop"] = "group",
) -> GroupCounts:
    """Confusion counts for one grouping, from the predictions table or the stored evidence."""
    frame = ctx.predictions
    if frame is not None and ctx.label and ctx.prediction:
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise EvaluationError(
                f"sensitive column(s) {', '.join(absent)} not in the predictions table; "
                f"columns: {', '.join(map(str, frame.columns))}"
            )
        empty = empty_sensitive_columns(frame, columns)
        if empty:
            raise EvaluationError(f"sensitive column {empty[0]!r} has no values: every row is missing")
        y_true = to_binary(frame[ctx.label].to_numpy(), pos_label, f"label column {ctx.label!r}")
        y_pred = to_binary(
            frame[ctx.prediction].to_numpy(), pos_label, f"prediction column {ctx.prediction!r}"
        )
        return confusion_by_group(y_true, y_pred, frame.loc[:, list(columns)], missing=missing)
    stored = (ctx.evidence.confusion or {}).get(grouping_key(columns))
    if stored is None:
        have = ", ".join(sorted(ctx.evidence.confusion or {})) or "none"
        raise EvaluationError(
            f"stored evidence has no confusion counts for {grouping_key(columns)!r} "
            f"(stored groupings: {have}); re-run governance.evaluate with these sensitive features"
        )
    return GroupCounts.from_dict(stored)


def _insufficient(counts: list[GroupCounts], minimum: int) -> str | None:
    """Why a comparison between groups cannot be trusted: fewer than two groups of at least
    ``max(minimum, 1)`` rows in some grouping (nothing to compare), or groups under ``minimum``."""
    floor = max(minimum, 1)
    for gc in counts:
        big_enough = int((gc.sizes >= floor).sum())
        if big_enough < 2:
            shown = ", ".join(f"{label} (n={n})" for label, n in zip(gc.labels(), gc.sizes.tolist(), strict=True))
            return (f"{gc.key}: {big_enough} group(s) with at least {floor} row(s), fewer than the two a "
                    f"comparison needs (groups: {shown or 'none'})")
    return _small_groups(counts, minimum) if minimum else None


def _small_groups(counts: list[GroupCounts], minimum: int) -> str | None:
    small = []
    for gc in counts:
        for label, n in zip(gc.labels(), gc.sizes.tolist(), strict=True):
            if n < minimum:
                small.append(f"{label} (n={n})")
    if not small:
        return None
    shown = ", ".join(small[:5]) + (f" and {len(small) - 5} more" if len(small) > 5 else "")
    return f"{len(small)} group(s) smaller than minGroupSize {minimum}: {shown}"


def _measure(
    ctx: CheckContext, params: FairnessParams, value_of: Any, worst: str, ci_of: Any = None
) -> Measurement:
    counts = [
        load_counts(ctx, cols, pos_label=params.pos_label, missing=params.missing)
        for cols in groupings(_sensitive(ctx, params), params.intersectional)
    ]
    by_group: dict[str, dict[str, float | int | None]] = {}
    sizes: dict[str, int] = {}
    per_grouping: dict[str, float] = {}
    for gc in counts:
        summary = summarise(gc)
        by_group.update(summary["by_group"])
        sizes.update({label: int(row["n"] or 0) for label, row in summary["by_group"].items()})
        per_grouping[gc.key] = float(value_of(gc))
    pick = max if worst == "max" else min
    worst_key = pick(per_grouping, key=lambda k: per_grouping[k])
    value = per_grouping[worst_key]
    ci = None
    if params.bootstrap and ci_of is not None:
        target = next(gc for gc in counts if gc.key == worst_key)
        ci = ci_of(target)
    return Measurement(
        value=value,
        by_group=by_group,
        group_sizes=sizes,
        ci=ci,
        evidence={
            "per_grouping": per_grouping,
            "worst_grouping": worst_key,
            "counts": {gc.key: gc.to_dict() for gc in counts},
        },
        insufficient=_insufficient(counts, params.min_group_size),
    )


class FairnessCheck(Check):
    """A between-groups disparity (fairlearn's definitions); the worst over the groupings."""

    Params: ClassVar[type[CheckParams]] = FairnessParams
    requires = frozenset({"predictions"})
    metric: ClassVar[str]

    def compute(self, ctx: CheckContext, params: FairnessParams) -> Measurement:
        name = self.metric
        worst = "min" if name.endswith("_ratio") else "max"
        return _measure(
            ctx,
            params,
            lambda gc: DISPARITIES[name](rates(gc.counts)),
            worst,
            lambda gc: bootstrap_ci(
                name, gc.counts, n_boot=params.bootstrap, seed=params.seed, level=params.confidence
            ),
        )


def _make(metric: str) -> type[FairnessCheck]:
    doc = metric.replace("_", " ")
    return type(
        f"{''.join(p.title() for p in metric.split('_'))}Check",
        (FairnessCheck,),
        {
            "id": f"fairness.{metric}",
            "metric": metric,
            "version": "1",
            "description": doc,
            "__module__": __name__,
        },
    )


class GroupRateCheck(Check):
    """One per-group rate (selection rate, TPR, FPR, FNR, TNR, accuracy, precision), aggregated."""

    id = "fairness.group_rate"
    version = "1"
    Params: ClassVar[type[CheckParams]] = GroupRateParams
    requires = frozenset({"predictions"})
    description = "a per-group rate aggregated across groups (difference, ratio, min or max)"

    def compute(self, ctx: CheckContext, params: GroupRateParams) -> Measurement:
        metric, agg = params.metric, params.aggregate

        def value_of(gc: GroupCounts) -> float:
            values = rates(gc.counts)[metric]
            if agg == "difference":
                return float(values.max() - values.min())
            if agg == "ratio":
                hi, lo = float(values.max()), float(values.min())
                return lo / hi if hi > 0 else (1.0 if lo == hi else 0.0)
            return float(values.min() if agg == "min" else values.max())

        worst = "min" if agg in ("ratio", "min") else "max"
        return _measure(ctx, params, value_of, worst)


def fairness_checks() -> list[Check]:
    return [_make(name)() for name in DISPARITIES] + [GroupRateCheck()]


def confusion_evidence(
    frame: pd.DataFrame, label: str, prediction: str, sensitive: Sequence[str], *, pos_label: Any = None
) -> dict[str, Any]:
    """The ``confusion`` block of an evidence document: counts for each grouping."""
    ctx = CheckContext(predictions=frame, label=label, prediction=prediction, sensitive=tuple(sensitive))
    return {
        gc.key: gc.to_dict()
        for gc in (load_counts(ctx, cols, pos_label=pos_label) for cols in groupings(list(sensitive), True))
    }

