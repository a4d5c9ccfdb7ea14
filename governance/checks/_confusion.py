"""Per-group confusion counts in one vectorised pass, and every rate derived from them.

Rates follow fairlearn's definitions exactly (they are compared to ``MetricFrame`` in the tests):
a rate whose denominator is empty is 0 (sklearn's ``confusion_matrix(normalize="true")`` and
``precision_score(zero_division=0)``), ratios are ``min / max`` and differences ``max - min`` between
groups.  Missing sensitive values form their own group ``(missing)`` by default (fairlearn refuses
them; dropping rows silently would hide the people without recorded attributes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from governance.errors import EvaluationError, InputError

__all__ = [
    "MISSING_GROUP",
    "RATE_NAMES",
    "GroupCounts",
    "bootstrap_ci",
    "confusion_by_group",
    "grouping_key",
    "rates",
    "summarise",
    "to_binary",
]

MISSING_GROUP = "(missing)"
RATE_NAMES = ("selection_rate", "tpr", "fpr", "fnr", "tnr", "accuracy", "precision")
FloatArray = npt.NDArray[np.float64]


def grouping_key(columns: Sequence[str]) -> str:
    """The key of a grouping in stored evidence: ``sex`` or ``race&sex`` (an intersection)."""
    return "&".join(columns)


@dataclass(frozen=True)
class GroupCounts:
    """Confusion counts ``[tn, fp, fn, tp]`` per group of one grouping (one feature or an intersection)."""

    columns: tuple[str, ...]
    groups: tuple[str, ...]
    counts: npt.NDArray[np.int64]  # shape (G, 4)

    @property
    def key(self) -> str:
        return grouping_key(self.columns)

    @property
    def sizes(self) -> npt.NDArray[np.int64]:
        sizes: npt.NDArray[np.int64] = self.counts.sum(axis=1)
        return sizes

    def labels(self) -> list[str]:
        """Group names as stored in results: ``sex=F`` or ``sex=F & race=B``."""
        return list(self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "groups": {g: [int(x) for x in row] for g, row in zip(self.groups, self.counts, strict=True)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupCounts:
        groups = data["groups"]
        names = tuple(str(g) for g in groups)
        counts = np.array([groups[g] for g in groups], dtype=np.int64).reshape(len(names), 4)
        return cls(tuple(data["columns"]), names, counts)


def to_binary(values: Any, pos_label: Any, what: str) -> npt.NDArray[np.bool_]:
    """``values == pos_label`` as booleans; with no ``pos_label`` the values must be {0,1} or {-1,1}."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_:
        return arr if pos_label in (None, True, 1) else ~arr
    if pos_label is None:
        if arr.dtype.kind in "fc" and np.isnan(arr).any():
            raise EvaluationError(f"{what} contains missing values; drop or fill them first")
        uniq = pd.unique(arr.ravel())
        if not ({0, 1}.issuperset(uniq.tolist()) or {-1, 1}.issuperset(uniq.tolist())):
            shown = ", ".join(map(repr, uniq[:5].tolist()))
            raise EvaluationError(
                f"{what} is not binary 0/1 (values: {shown}); set posLabel to the positive class"
            )
        pos_label = 1
    return np.asarray(arr == pos_label)


def _codes(series: pd.Series, missing: str) -> tuple[npt.NDArray[np.int64], list[str]]:
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int64)
        names = [str(c) for c in series.cat.categories]
    else:
        raw, uniques = pd.factorize(series, sort=True, use_na_sentinel=True)
        codes = raw.astype(np.int64)
        names = [str(u) for u in uniques]
    if (codes < 0).any():
        if missing == "error":
            raise EvaluationError(f"sensitive column {series.name!r} contains missing values")
        codes = np.where(codes < 0, len(names), codes)
        names.append(MISSING_GROUP)
    return codes, names


def confusion_by_group(
    y_true: npt.NDArray[np.bool_],
    y_pred: npt.NDArray[np.bool_],
    sensitive: pd.DataFrame,
    *,
    missing: Literal["group", "drop", "error"] = "group",
    weights: npt.NDArray[np.int64] | None = None,
) -> GroupCounts:
    """Counts per group of the intersection of every column of ``sensitive`` (one ``bincount``).

    ``weights`` (one non-negative integer per row) makes each row count that many times: the Spark
    engine passes the rows of a ``groupBy(sensitive..., label, prediction).count()`` with their counts,
    so both engines share this function and agree exactly.
    """
    if weights is not None and len(weights) != len(y_true):
        raise InputError(f"lengths differ: labels {len(y_true)}, weights {len(weights)}")
    if len(y_true) != len(y_pred) or len(y_true) != len(sensitive):
        raise InputError(
            f"lengths differ: labels {len(y_true)}, predictions {len(y_pred)}, sensitive {len(sensitive)}"
        )
    if sensitive.shape[1] == 0:
        raise InputError("no sensitive columns given")
    columns = tuple(str(c) for c in sensitive.columns)
    combined = np.zeros(len(sensitive), dtype=np.int64)
    names: list[list[str]] = []
    radix = 1
    keep: npt.NDArray[np.bool_] | None = None
    for col in sensitive.columns:
        codes, col_names = _codes(sensitive[col], "error" if missing == "error" else "group")
        if (
            missing == "drop"
            and col_names
            and col_names[-1] == MISSING_GROUP
            and (codes == len(col_names) - 1).any()
        ):
            mask = codes != len(col_names) - 1
            keep = mask if keep is None else keep & mask
        combined = combined * len(col_names) + codes
        radix *= len(col_names)
        names.append(col_names)
    cell = (y_true.astype(np.int64) << 1) | y_pred.astype(np.int64)  # 0 tn, 1 fp, 2 fn, 3 tp
    flat = combined * 4 + cell
    if keep is not None:
        flat = flat[keep]
        weights = None if weights is None else weights[keep]
    if radix <= 4_000_000:
        if weights is None:
            counts = np.bincount(flat, minlength=radix * 4).reshape(radix, 4)
        else:
            cells = np.zeros(radix * 4, dtype=np.int64)
            np.add.at(cells, flat, weights.astype(np.int64))
            counts = cells.reshape(radix, 4)
        present = np.flatnonzero(counts.sum(axis=1))
        counts = counts[present]
    else:
        uniq, inverse = np.unique(flat // 4, return_inverse=True)
        counts = np.zeros((len(uniq), 4), dtype=np.int64)
        np.add.at(counts, (inverse, flat % 4), 1 if weights is None else weights.astype(np.int64))
        present = uniq
    labels = []
    for present_code in present.tolist():
        code = present_code
        parts = []
        for col_names in reversed(names):
            code, rem = divmod(code, len(col_names))
            parts.append(col_names[rem])
        labels.append(" & ".join(f"{c}={v}" for c, v in zip(columns, reversed(parts), strict=True)))
    return GroupCounts(columns, tuple(labels), counts.astype(np.int64))


def _div(num: Any, den: Any) -> Any:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return out


def rates(counts: npt.NDArray[np.integer[Any]]) -> dict[str, FloatArray]:
    """Every rate from counts of shape (..., 4) (works on bootstrap stacks too)."""
    tn, fp, fn, tp = (counts[..., i] for i in range(4))
    n = tn + fp + fn + tp
    return {
        "selection_rate": _div(tp + fp, n),
        "tpr": _div(tp, tp + fn),
        "fpr": _div(fp, fp + tn),
        "fnr": _div(fn, tp + fn),
        "tnr": _div(tn, fp + tn),
        "accuracy": _div(tp + tn, n),
        "precision": _div(tp, tp + fp),
    }


def _ratio(values: FloatArray) -> Any:
    hi = values.max(axis=-1)
    lo = values.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(hi > 0, lo / np.where(hi > 0, hi, 1.0), np.where(lo == hi, 1.0, 0.0))


DISPARITIES = {
    "demographic_parity_difference": lambda r: np.ptp(r["selection_rate"], axis=-1),
    "demographic_parity_ratio": lambda r: _ratio(r["selection_rate"]),
    "equalized_odds_difference": lambda r: np.maximum(np.ptp(r["tpr"], axis=-1), np.ptp(r["fpr"], axis=-1)),
    "equalized_odds_ratio": lambda r: np.minimum(_ratio(r["tpr"]), _ratio(r["fpr"])),
    "equal_opportunity_difference": lambda r: np.ptp(r["tpr"], axis=-1),
    "equal_opportunity_ratio": lambda r: _ratio(r["tpr"]),
}


def disparity(name: str, counts: npt.NDArray[np.integer[Any]]) -> Any:
    """A between-groups disparity from counts of shape (..., G, 4)."""
    return DISPARITIES[name](rates(counts))


def summarise(gc: GroupCounts) -> dict[str, Any]:
    """Per-group rates and every disparity for one grouping (JSON-safe)."""
    r = rates(gc.counts)
    by_group: dict[str, dict[str, float | int | None]] = {}
    for i, label in enumerate(gc.labels()):
        row: dict[str, float | int | None] = {"n": int(gc.sizes[i])}
        row.update({k: float(r[k][i]) for k in RATE_NAMES})
        by_group[label] = row
    disparities = {k: float(f(r)) for k, f in DISPARITIES.items()}  # type: ignore[no-untyped-call]
    return {"by_group": by_group, **disparities}


def bootstrap_ci(
    name: str,
    counts: npt.NDArray[np.int64],
    *,
    n_boot: int,
    seed: int,
    level: float,
) -> tuple[float, float]:
    """Percentile interval of a disparity by resampling each group's confusion cells (multinomial)."""
    sizes = counts.sum(axis=1)
    probs = counts / np.maximum(sizes, 1)[:, None]
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(sizes, probs, size=(n_boot, len(sizes)))  # (B, G, 4)
    values = np.asarray(disparity(name, draws), dtype=np.float64)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)
