"""Column statistics of a dataset version: the drift baselines, bounded in size.

Stored in ``DatasetVersion.stats``.  The format is a contract (the drift check reads it)::

    {
      "format": "governance.stats/v1",
      "row_count": 1000,
      "truncated": false,                # true when only the first MAX_COLUMNS columns are described
      "columns": {
        "<name>": {                      # numeric: ints, floats, nullable ints, datetimes (epoch s)
          "kind": "numeric",
          "dtype": "float64",
          "count": 990,                  # non-null values
          "nulls": 10,                   # null / NaN values
          "bin_edges": [e0, e1, ..., ek],  # k <= BINS bins at quantiles, increasing, k+1 edges
          "bin_counts": [c1, ..., ck],   # values in [e0,e1), ..., [e(k-1), ek]; sum == count - inf
          "mean": 0.1, "std": 1.0, "min": -3.2, "max": 3.1,
          "unit": "epoch_seconds"        # only for datetimes
        },
        "<name>": {                      # categorical: strings, categories, booleans, objects
          "kind": "categorical",
          "dtype": "str",
          "count": 1000, "nulls": 0,
          "frequencies": {"<str(value)>": n, ...},   # the TOP_K most frequent values (most frequent
                                                     # first; for strings, ties in order of appearance)
          "other": 12,                   # non-null values outside the top-k
          "distinct": 27                 # distinct non-null values
        }
      }
    }

All numbers are JSON numbers (``mean``/``std``/``min``/``max`` are null when ``count`` is 0;
``bin_edges``/``bin_counts`` are empty then).  Infinite values are left out of bins and moments and
counted in ``"inf"`` when present.  Quantile edges come from at most ``SAMPLE`` evenly strided values;
counts, nulls, moments and bin counts are over all values.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from governance.lineage._fingerprint import _numpy_dtype_name

__all__ = ["BINS", "MAX_COLUMNS", "STATS_FORMAT", "TOP_K", "column_stats", "table_stats"]

STATS_FORMAT = "governance.stats/v1"
BINS = 10
TOP_K = 20
MAX_COLUMNS = 500
SAMPLE = 100_000
_MAX_KEY = 200


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


_QUANTILES = np.linspace(0.0, 1.0, BINS + 1)


@functools.lru_cache(maxsize=64)
def _quantile_plan(n: int) -> tuple[np.ndarray[Any, Any], ...]:
    """For ``n`` sorted values: the indices below and above each quantile of ``_QUANTILES``, the
    interpolation weights, ``1 - weights`` and where the upper value is the base (numpy's "linear"
    method, index arithmetic included).  Read-only arrays, shared by every frame of ``n`` rows."""
    virtual = (n - 1) * _QUANTILES
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = -1
    following[above] = -1
    lo_index = previous.astype(np.intp)
    gamma = virtual - lo_index
    plan = (lo_index, following.astype(np.intp), gamma, 1 - gamma, gamma >= 0.5)
    for array in plan:
        array.flags.writeable = False
    return plan


def _quantiles(ordered: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``np.quantile(ordered, _QUANTILES)`` (method "linear") of an already sorted array, with the same
    index and interpolation arithmetic as numpy, so the edges are bit-identical without re-partitioning;
    for a 2-D array (one sorted column per column), the quantiles of every column at once."""
    lo_index, hi_index, gamma, rest, upper = _quantile_plan(ordered.shape[0])
    if ordered.ndim == 2:
        gamma, rest, upper = gamma[:, None], rest[:, None], upper[:, None]
    lo, hi = ordered[lo_index], ordered[hi_index]
    diff = hi - lo
    out = lo + diff * gamma
    np.subtract(hi, diff * rest, out=out, where=upper)
    return np.asarray(out, dtype=np.float64)


def _numeric(values: np.ndarray[Any, Any], nulls: int, dtype: str, unit: str | None) -> dict[str, Any]:
    finite_mask = np.isfinite(values)
    inf = int(values.size - int(np.count_nonzero(finite_mask)))
    finite = values if inf == 0 else values[finite_mask]
    doc: dict[str, Any] = {"kind": "numeric", "dtype": dtype, "count": int(values.size), "nulls": nulls}
    if finite.size == 0:
        doc.update(bin_edges=[], bin_counts=[], mean=None, std=None, min=None, max=None)
    else:
        # one sort serves the quantile edges, min/max and the bin counts (np.histogram's own
        # searchsorted rule: [e_i, e_i+1) and a closed last bin)
        ordered = np.sort(finite)
        step = max(1, finite.size // SAMPLE)
        sample = ordered if step == 1 else np.sort(finite[::step])
        edges = np.unique(_quantiles(sample))
        lo, hi = float(ordered[0]), float(ordered[-1])
        edges[0], edges[-1] = lo, hi
        if edges.size == 1:
            counts = np.array([finite.size])
            edges = np.array([lo, hi])
        else:
            index = np.searchsorted(ordered, edges[:-1], side="left")
            counts = np.diff(np.append(index, ordered.size))
        with np.errstate(over="ignore", invalid="ignore"):  # |x| near float max: an infinite moment -> null
            mean, std = float(finite.mean()), float(finite.std())
        doc.update(
            bin_edges=edges.tolist(),
            bin_counts=counts.tolist(),
            mean=_num(mean),
            std=_num(std),
            min=lo,
            max=hi,
        )
    if inf:
        doc["inf"] = inf
    if unit:
        doc["unit"] = unit
    return doc


def _key(value: object) -> str:
    text = str(value)
    return text if len(text) <= _MAX_KEY else text[: _MAX_KEY - 1] + "…"


def _string_frequencies(s: Any) -> tuple[list[Any], list[int], int] | None:
    """Values and counts of a pandas string column, most frequent first (ties in order of first
    appearance), and its null count, through Arrow; None when the column cannot be read as Arrow
    strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = pa.array(s.array, from_pandas=True)
    except (TypeError, ValueError, NotImplementedError, pa.ArrowException):
        return None
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type)):
        return None
    nulls = arr.null_count
    if nulls:
        arr = arr.drop_null()
    counted = pc.value_counts(arr)
    values = counted.field("values").to_pylist()
    counts = counted.field("counts").to_numpy()
    order = np.argsort(-counts, kind="stable")
    return [values[i] for i in order.tolist()], counts[order].tolist(), int(nulls)


def _categorical(s: Any, nulls: int, dtype: str, counted: tuple[list[Any], list[int]] | None = None,
                 ) -> dict[str, Any]:
    if counted is not None:
        values, counts = counted
    else:
        series = s.value_counts(dropna=True, sort=True)
        values, counts = series.index.tolist(), series.to_numpy().tolist()
    frequencies: dict[str, int] = {}
    for value, n in zip(values[:TOP_K], counts[:TOP_K], strict=True):
        key = _key(value)
        frequencies[key] = frequencies.get(key, 0) + int(n)
    count = int(sum(counts))
    return {
        "kind": "categorical",
        "dtype": dtype,
        "count": count,
        "nulls": nulls,
        "frequencies": frequencies,
        "other": count - sum(frequencies.values()),
        "distinct": len(counts),
    }


def column_stats(s: Any) -> dict[str, Any]:
    """Statistics of one pandas Series in the format described in the module docstring."""
    import pandas as pd

    dtype = s.dtype
    dtype_str = _numpy_dtype_name(dtype) if isinstance(dtype, np.dtype) else str(dtype)
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":  # plain numpy numbers: straight from the buffer
        raw = s.to_numpy()
        if dtype.kind == "f":
            null_mask = np.isnan(raw)
            nulls = int(np.count_nonzero(null_mask))
            values = raw.astype(np.float64, copy=False)
            return _numeric(values[~null_mask] if nulls else values, nulls, dtype_str, None)
        return _numeric(raw.astype(np.float64), 0, dtype_str, None)
    if isinstance(dtype, pd.StringDtype):  # pandas strings: counts and nulls in one Arrow pass
        fast = _string_frequencies(s)
        if fast is not None:
            values, counts, missing = fast
            return _categorical(s, missing, dtype_str, (values, counts))
    null_mask = s.isna().to_numpy()
    nulls = int(null_mask.sum())
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return _categorical(s, nulls, dtype_str)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        present = s.dropna()
        if getattr(dtype, "tz", None) is not None:
            present = present.dt.tz_convert("UTC").dt.tz_localize(None)
        values = present.astype("datetime64[ns]").to_numpy().view(np.int64).astype(np.float64) / 1e9
        return _numeric(values, nulls, dtype_str, "epoch_seconds")
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        if nulls:
            values = values[~null_mask]
        return _numeric(values, nulls, dtype_str, None)
    return _categorical(s, nulls, dtype_str)


def _numeric_block(items: list[tuple[str, np.ndarray[Any, Any]]]) -> dict[str, dict[str, Any]]:
    """:func:`column_stats` of several plain numpy int/float columns of one frame (name, values),
    with one sort, one quantile computation and one pass of moments for all of them (a small frame's
    statistics are otherwise mostly per-call overhead).  Only columns whose values are all finite are
    described here; the others are left out, for the per-column path.  The numbers are identical to
    :func:`column_stats`: the same sorted values, the same quantile arithmetic, each reduction over
    one contiguous column as for a single column, and numpy's own steps for the mean and the
    standard deviation (``_methods._mean``/``_var``: sum, divide by the count; subtract, square, sum,
    divide, square root)."""
    n = len(items[0][1])
    block = np.empty((n, len(items)), dtype=np.float64, order="F")
    for j, (_, values) in enumerate(items):
        block[:, j] = values
    finite: np.ndarray[Any, Any] = np.asarray(np.isfinite(block).all(axis=0))
    if not finite.any():
        return {}
    if not finite.all():
        keep = [bool(ok) for ok in finite]
        items = [item for item, ok in zip(items, keep, strict=True) if ok]
        block = np.asfortranarray(block[:, finite])
    ordered = np.sort(block, axis=0)
    # np.unique of each column's edges: sorted, then the first of every run of equal values
    quantiles = np.sort(_quantiles(ordered), axis=0)
    first = np.empty(quantiles.shape, dtype=bool)
    first[0] = True
    np.not_equal(quantiles[1:], quantiles[:-1], out=first[1:])
    with np.errstate(over="ignore", invalid="ignore"):  # |x| near float max: an infinite moment -> null
        total = np.add.reduce(block, axis=0, keepdims=True)
        means = np.true_divide(total, n)
        squares = block - means
        np.multiply(squares, squares, out=squares)
        stds = np.sqrt(np.add.reduce(squares, axis=0) / n).tolist()
    mean_list = means[0].tolist()
    out: dict[str, dict[str, Any]] = {}
    for j, (name, values) in enumerate(items):
        column = ordered[:, j]
        edges = quantiles[first[:, j], j]
        low, high = float(column[0]), float(column[-1])
        edges[0], edges[-1] = low, high
        if edges.size == 1:
            counts: list[int] = [n]
            edge_list = [low, high]
        else:
            index = np.searchsorted(column, edges[:-1], side="left").tolist()
            index.append(n)
            counts = [b - a for a, b in itertools.pairwise(index)]
            edge_list = edges.tolist()
        out[name] = {
            "kind": "numeric",
            "dtype": _numpy_dtype_name(values.dtype),
            "count": n,
            "nulls": 0,
            "bin_edges": edge_list,
            "bin_counts": counts,
            "mean": _num(mean_list[j]),
            "std": _num(stds[j]),
            "min": low,
            "max": high,
        }
    return out


def _same(value: Any) -> Any:
    return value


def _columns(df: Any) -> dict[str, tuple[Callable[[], Any], np.ndarray[Any, Any] | None]]:
    """The first ``MAX_COLUMNS`` columns by name (a duplicate name: the first column), each as a
    function giving its Series and, for a plain numpy int/float column, its values straight from
    pandas' own array (``_mgr.iget_values``, no Series built: what ``Series.to_numpy()`` returns);
    without those internals, through ``DataFrame.items()``."""
    iget_values = getattr(getattr(df, "_mgr", None), "iget_values", None)
    ixs = getattr(df, "_ixs", None)
    out: dict[str, tuple[Callable[[], Any], np.ndarray[Any, Any] | None]] = {}
    if iget_values is None or ixs is None:
        for i, (name, s) in enumerate(df.items()):
            if i >= MAX_COLUMNS:
                break
            plain = isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf"
            key = name if isinstance(name, str) else str(name)
            out.setdefault(key, (functools.partial(_same, s), s.to_numpy() if plain else None))
        return out
    for i, name in enumerate(df.columns[:MAX_COLUMNS]):
        key = name if isinstance(name, str) else str(name)
        if key in out:
            continue
        values = iget_values(i)
        plain = type(values) is np.ndarray and values.ndim == 1 and values.dtype.kind in "iuf"
        out[key] = (functools.partial(ixs, i, axis=1), values if plain else None)
    return out


def table_stats(df: Any) -> dict[str, Any]:
    """Statistics of every column of a pandas DataFrame (at most ``MAX_COLUMNS``)."""
    columns: dict[str, Any] = {}
    width = int(df.shape[1])
    chosen = _columns(df)
    rows = int(df.shape[0])
    batch = [(k, v) for k, (_, v) in chosen.items() if v is not None] if 0 < rows <= SAMPLE else []
    described = _numeric_block(batch) if len(batch) > 1 else {}
    for key, (series, _) in chosen.items():
        if key in described:
            columns[key] = described[key]
            continue
        s = series()
        try:
            columns[key] = column_stats(s)
        except TypeError:
            if s.dtype != object:
                raise
            # unhashable objects (lists, dicts) in an object column: counts only
            columns[key] = {
                "kind": "categorical",
                "dtype": str(s.dtype),
                "count": int(s.notna().sum()),
                "nulls": int(s.isna().sum()),
                "frequencies": {},
                "other": int(s.notna().sum()),
                "distinct": None,
            }
    return {
        "format": STATS_FORMAT,
        "row_count": int(df.shape[0]),
        "truncated": width > MAX_COLUMNS,
        "columns": columns,
    }
