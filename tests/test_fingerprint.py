"""Fingerprints: every cell, dtype, column name and order counts; stable across processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.errors import InputError
from governance.lineage import Fingerprint, column_stats, fingerprint, table_stats

ROWS = st.integers(min_value=1, max_value=30)


def mixed_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "i": rng.integers(-5, 5, n),
            "s": pd.Series(rng.choice(["a", "b", "é"], n), dtype="str"),
            "c": pd.Categorical(rng.choice(["x", "y"], n), categories=["x", "y"]),
            "t": pd.date_range("2024-03-30", periods=n, freq="h", tz="Europe/Paris"),
            "n": pd.array(rng.integers(0, 3, n), dtype="Int64"),
            "o": pd.Series([None, "u", 1.5] * (n // 3) + [None] * (n % 3), dtype=object),
            "b": rng.integers(0, 2, n).astype(bool),
        }
    )


FRAME_EXPR = "mixed_frame(23, 7)"


@st.composite
def frame_and_cell(draw: st.DrawFn) -> tuple[pd.DataFrame, int, int]:
    n = draw(ROWS)
    df = mixed_frame(n, draw(st.integers(0, 1000)))
    return df, draw(st.integers(0, n - 1)), draw(st.integers(0, df.shape[1] - 1))


def changed_cell(df: pd.DataFrame, row: int, column: int) -> pd.DataFrame:
    out = df.copy()
    name = out.columns[column]
    value = out.iloc[row, column]
    series = out[name]
    if name == "f":
        new = np.nan if not pd.isna(value) and value != 0 else 1.25
    elif name == "i":
        new = int(value) + 1
    elif name == "s":
        new = value + "!"
    elif name == "c":
        new = "y" if value == "x" else "x"
    elif name == "t":
        new = value + pd.Timedelta(microseconds=1)
    elif name == "n":
        new = pd.NA if not pd.isna(value) else 9
    elif name == "o":
        new = float("nan") if value is None else None
    else:
        new = not value
    series = series.copy()
    series.iloc[row] = new
    out[name] = series
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame_and_cell())
def test_any_single_cell_change_alters_the_fingerprint(case: tuple[pd.DataFrame, int, int]) -> None:
    df, row, column = case
    changed = changed_cell(df, row, column)
    assert fingerprint(df).hash == fingerprint(df.copy()).hash
    assert fingerprint(changed).hash != fingerprint(df).hash


@settings(max_examples=60, deadline=None)
@given(ROWS, st.integers(0, 1000), st.data())
def test_column_name_order_and_dtype_changes_alter_it(n: int, seed: int, data: st.DataObject) -> None:
    df = mixed_frame(n, seed)
    base = fingerprint(df)
    i = data.draw(st.integers(0, df.shape[1] - 1))
    renamed = df.rename(columns={df.columns[i]: df.columns[i] + "_"})
    assert fingerprint(renamed).hash != base.hash
    assert fingerprint(renamed).schema_hash != base.schema_hash
    j = data.draw(st.integers(0, df.shape[1] - 1).filter(lambda x: x != i))
    order = list(df.columns)
    order[i], order[j] = order[j], order[i]
    assert fingerprint(df[order]).hash != base.hash
    assert fingerprint(df.astype({"i": "int32"})).hash != base.hash
    assert fingerprint(df.astype({"i": "float64"})).hash != base.hash
    assert fingerprint(df.astype({"s": "object"})).hash != base.hash
    assert fingerprint(df.astype({"n": "float64"})).hash != base.hash


def test_values_that_look_alike_are_told_apart() -> None:
    assert fingerprint(pd.DataFrame({"a": [1, 2]})).hash != fingerprint(pd.DataFrame({"a": [1.0, 2.0]})).hash
    assert fingerprint(pd.DataFrame({0: [1]})).hash != fingerprint(pd.DataFrame({"0": [1]})).hash
    none_ = pd.DataFrame({"o": pd.Series([None, "a"], dtype=object)})
    nan_ = pd.DataFrame({"o": pd.Series([float("nan"), "a"], dtype=object)})
    assert fingerprint(none_).hash != fingerprint(nan_).hash
    utc = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=2, tz="UTC")})
    assert fingerprint(utc).hash != fingerprint(utc.assign(t=utc["t"].dt.tz_convert("Europe/Paris"))).hash
    cat = pd.DataFrame({"c": pd.Categorical(["a", "b"], categories=["a", "b"])})
    cat2 = pd.DataFrame({"c": pd.Categorical(["a", "b"], categories=["b", "a"])})
    assert fingerprint(cat).hash != fingerprint(cat2).hash
    assert fingerprint(pd.DataFrame({"s": ["ab", "c"]})).hash != fingerprint(pd.DataFrame({"s": ["a", "bc"]})).hash


def test_equal_content_in_different_memory_layouts_is_equal() -> None:
    # a negative NaN (0/0 on x86) and numpy's NaN are the same missing value
    neg_nan = np.array([np.copysign(np.nan, -1.0), 1.0])
    assert np.signbit(neg_nan[0])
    assert fingerprint(pd.DataFrame({"a": neg_nan})).hash == fingerprint(pd.DataFrame({"a": [np.nan, 1.0]})).hash
    # the same strings with Arrow and Python storage, sliced or not
    arrow = pd.Series(["x", None, "zz"], dtype="string[pyarrow]")
    python = pd.Series(["x", None, "zz"], dtype="string[python]")
    assert fingerprint(arrow.to_frame("s")).hash == fingerprint(python.to_frame("s")).hash  # storage is not content
    big = pd.DataFrame({"s": pd.Series(["q", "x", None, "zz"], dtype="str")})
    sliced = big.iloc[1:].reset_index(drop=True)
    fresh = pd.DataFrame({"s": pd.Series(["x", None, "zz"], dtype="str")})
    assert fingerprint(sliced).hash == fingerprint(fresh).hash
    table = pa.table({"a": [1, 2, 3, 4]}).slice(1)
    assert fingerprint(table).hash == fingerprint(pa.table({"a": [2, 3, 4]})).hash


def test_fingerprint_fields() -> None:
    df = mixed_frame(10)
    fp = fingerprint(df)
    assert isinstance(fp, Fingerprint)
    assert fp.algo == "blake3" and fp.coverage == "full" and len(fp.hash) == 64
    assert fp.row_count == 10 and fp.byte_size > 0 and fp.schema_hash is not None
    assert [c.name for c in fp.columns] == list(df.columns)
    assert fp.schema_hash == fingerprint(mixed_frame(10, seed=3)).schema_hash


def test_stable_in_a_fresh_process() -> None:
    here = fingerprint(eval(FRAME_EXPR)).hash
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from test_fingerprint import mixed_frame;"
        "from governance.lineage import fingerprint;"
        f"print(fingerprint({FRAME_EXPR}).hash)"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert child.stdout.strip() == here


def test_digests_are_the_released_ones() -> None:
    """The digests of a frame of several dtypes (numpy, masked, categorical, Arrow strings, a non-string
    column name), frozen: a faster implementation must write the same bytes, or every catalog's
    dataset versions would change identity."""
    df = pd.DataFrame({
        "f": np.array([1.5, np.nan, -0.0, 2.0**60]),
        "i": np.array([3, -1, 0, 2**40], dtype="int64"),
        "b": np.array([True, False, True, True]),
        "t": np.array(["2024-03-30T01:00", "1970-01-01", "2038-01-19T03:14:08", "1900-02-28"], dtype="datetime64[ns]"),
        "n": pd.array([1, None, 3, 4], dtype="Int64"),
        "c": pd.Categorical([2, 1, 2, 3], categories=[1, 2, 3], ordered=True),
        "s": pd.array(["a", None, "é", ""], dtype=pd.ArrowDtype(pa.large_string())),
        7: np.array([0.25, 0.5, 0.75, 1.0]),
    })
    fp = fingerprint(df)
    assert fp.hash == "874a69c5ae15d023790ef7364140d57f48b9f501ac20d3746c2ae763fd162f3d"
    assert fp.schema_hash == "dc1b96b66c1345c1f3e3c4ec866e6a70520b8c4af5fc66e5993dc493fcd18c47"
    assert [c.hash[:16] for c in fp.columns] == [
        "220edaf58b555094", "aa61130fb59ea3de", "0ca3d4f78c9cc404", "e2bf5d490bc44404",
        "99d3821e935a1f8f", "a3b7e1e31be9a522", "f9f537040ba86b7f", "7ef49010c201ff4f",
    ]
    for column in fp.columns:  # a column alone, as a Series, has the digest it has in the frame
        name = 7 if column.name == "7" else column.name
        assert fingerprint(df[name]).columns[0].hash == column.hash


def test_numpy_arrow_and_series() -> None:
    arr = np.arange(12.0).reshape(3, 4)
    assert fingerprint(arr).hash == fingerprint(arr.copy(order="F")).hash
    assert fingerprint(arr).hash != fingerprint(arr.reshape(4, 3)).hash
    assert fingerprint(arr).hash != fingerprint(arr.astype(np.float32)).hash
    s = pd.Series([1, 2], name="a")
    assert fingerprint(s).hash == fingerprint(s.to_frame()).hash
    t = pa.table({"a": pa.array([1, None, 3]), "s": pa.array(["x", None, "y"])})
    assert fingerprint(t).hash != fingerprint(pa.table({"a": pa.array([1, 0, 3]), "s": t["s"]})).hash


def test_files_and_directories(tmp_path: Path) -> None:
    f = tmp_path / "d" / "a.csv"
    f.parent.mkdir()
    f.write_bytes(b"x,y\n1,2\n" * 1000)
    fp = fingerprint(f)
    assert fp.hash == blake3(f.read_bytes()).hexdigest() and fp.byte_size == f.stat().st_size
    d1 = fingerprint(tmp_path / "d")
    (tmp_path / "d" / "b.txt").write_text("more")
    d2 = fingerprint(tmp_path / "d")
    assert d1.hash != d2.hash and d2.row_count == 2
    with pytest.raises(InputError, match="no such file"):
        fingerprint(tmp_path / "missing")
    with pytest.raises(InputError, match="no fingerprint for objects of type"):
        fingerprint(object())


def test_stats_format() -> None:
    df = mixed_frame(40)
    df.loc[3, "f"] = np.nan
    stats = table_stats(df)
    json.dumps(stats, allow_nan=False)
    assert stats["format"] == "governance.stats/v1" and stats["row_count"] == 40
    f = stats["columns"]["f"]
    assert f["kind"] == "numeric" and f["count"] == 39 and f["nulls"] == 1
    assert sum(f["bin_counts"]) == 39 and len(f["bin_edges"]) <= 11
    assert f["bin_edges"] == sorted(f["bin_edges"]) and f["min"] == f["bin_edges"][0]
    assert stats["columns"]["t"]["unit"] == "epoch_seconds"
    s = stats["columns"]["s"]
    assert s["kind"] == "categorical" and sum(s["frequencies"].values()) + s["other"] == s["count"] == 40
    assert stats["columns"]["b"]["kind"] == "categorical"
    assert stats["columns"]["n"]["kind"] == "numeric"
    top = column_stats(pd.Series([str(i) for i in range(100)] + ["0"] * 5))
    assert (
        len(top["frequencies"]) == 20
        and top["frequencies"]["0"] == 6
        and top["other"] == 105 - sum(top["frequencies"].values())
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=64),
            st.integers(-3, 3).map(float),  # ties, so quantile edges collapse
        ),
        min_size=1,
        max_size=400,
    )
)
def test_numeric_bins_are_numpy_quantiles_and_histogram(values: list[float]) -> None:
    """The single-sort fast path gives exactly ``np.quantile`` edges and ``np.histogram`` counts."""
    s = pd.Series(values, dtype="float64")
    doc = column_stats(s)
    present = s.to_numpy()[~np.isnan(s.to_numpy())]
    finite = present[np.isfinite(present)]
    assert doc["count"] == present.size and doc["nulls"] == len(values) - present.size
    assert doc.get("inf", 0) == present.size - finite.size
    if finite.size == 0:
        assert doc["bin_edges"] == [] and doc["bin_counts"] == []
        return
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, 11)))
    edges[0], edges[-1] = finite.min(), finite.max()
    if edges.size == 1:
        assert doc["bin_edges"] == [finite.min(), finite.max()] and doc["bin_counts"] == [finite.size]
    else:
        counts, _ = np.histogram(finite, bins=edges)
        assert doc["bin_edges"] == edges.tolist()
        assert doc["bin_counts"] == counts.tolist()
    assert doc["min"] == finite.min() and doc["max"] == finite.max()


_cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-1e6, 1e6),
    st.integers(-3, 3).map(float),  # ties, so quantile edges collapse
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(1, 300),
    data=st.data(),
    dtypes=st.lists(st.sampled_from(["float64", "float32", "int64", "int8", "uint16", "str"]), min_size=2, max_size=6),
)
def test_frame_statistics_equal_column_statistics(rows: int, data: st.DataObject, dtypes: list[str]) -> None:
    """``table_stats`` describes a frame's plain numeric columns together (one sort for all of them);
    every number must be exactly what ``column_stats`` gives for that column alone."""
    columns: dict[str, Any] = {}
    for i, dtype in enumerate(dtypes):
        if dtype == "str":
            columns[f"c{i}"] = pd.Series(data.draw(st.lists(st.sampled_from("xyz"), min_size=rows, max_size=rows)))
        elif dtype.startswith("float"):
            values = data.draw(st.lists(_cells, min_size=rows, max_size=rows))
            with np.errstate(over="ignore"):
                columns[f"c{i}"] = pd.Series(np.array(values, dtype=dtype))
        else:
            info = np.iinfo(dtype)
            ints = st.integers(int(info.min), int(info.max)) | st.integers(max(-2, int(info.min)), 2)
            columns[f"c{i}"] = pd.Series(data.draw(st.lists(ints, min_size=rows, max_size=rows)), dtype=dtype)
    df = pd.DataFrame(columns)
    stats = table_stats(df)["columns"]
    for name in df.columns:
        assert json.dumps(stats[name]) == json.dumps(column_stats(df[name])), name


def test_string_frequencies_most_frequent_first_ties_in_order_of_appearance() -> None:
    s = pd.Series(["b", None, "a", "c", "a", "b", "d", None], dtype="str")
    doc = column_stats(s)
    assert doc["nulls"] == 2 and doc["count"] == 6 and doc["distinct"] == 4
    assert list(doc["frequencies"].items()) == [("b", 2), ("a", 2), ("c", 1), ("d", 1)]
    objects = column_stats(s.astype(object))  # the generic path agrees
    assert objects["frequencies"] == doc["frequencies"] and objects["count"] == 6


def test_statistics_stay_bounded_for_wide_frames_and_long_values() -> None:
    """At most MAX_COLUMNS columns are described (and the document says it was cut), at most TOP_K
    values per column, each value at most 200 characters: a baseline cannot grow with the data."""
    from governance.lineage._stats import MAX_COLUMNS, TOP_K

    wide = pd.DataFrame(np.zeros((3, MAX_COLUMNS + 7)), columns=[f"c{i}" for i in range(MAX_COLUMNS + 7)])
    stats = table_stats(wide)
    assert stats["truncated"] is True and len(stats["columns"]) == MAX_COLUMNS
    assert list(stats["columns"])[-1] == f"c{MAX_COLUMNS - 1}"
    assert table_stats(wide.iloc[:, :MAX_COLUMNS])["truncated"] is False
    long_values = pd.Series([f"{i:03d}" + "x" * 5000 for i in range(TOP_K + 30)], dtype="str")
    doc = column_stats(long_values)
    assert len(doc["frequencies"]) == TOP_K and doc["other"] == 30 and doc["distinct"] == TOP_K + 30
    assert all(len(key) == 200 and key.endswith("…") for key in doc["frequencies"])
    assert len(json.dumps(doc)) < TOP_K * 250
    # values told apart only after the cut share one key, with their counts added up
    alike = column_stats(pd.Series(["y" * 300 + "a", "y" * 300 + "b", "y" * 300 + "b"], dtype="str"))
    assert list(alike["frequencies"].values()) == [3] and alike["distinct"] == 2 and alike["other"] == 0
