"""Full-content fingerprints of tables, arrays, files and directories.

``fingerprint(obj) -> Fingerprint`` hashes every cell and the schema with BLAKE3 (256-bit digests,
``algo="blake3"``, ``coverage="full"``).  It reads column buffers (numpy and Arrow memory), never
Python rows, pickles or CSV text, except for ``object`` columns of mixed Python types, which are
hashed value by value through a type-tagged ``repr`` (give such objects a stable ``repr`` or register
a fingerprint for their type).

Tables (pandas DataFrame/Series, pyarrow Table/RecordBatch, 2-d numpy arrays are *not* tables):

* the digest covers, in order: the number of rows, then for every column its name (type-tagged, so
  ``0`` and ``"0"`` differ), its dtype string and its canonical content;
* canonical content: numeric/bool/datetime values as little-endian bytes (timezone-aware datetimes
  as UTC instants, the zone is in the dtype string); every NaN is written with one bit pattern; masked
  (nullable) arrays as a validity mask plus values with nulls zeroed; strings (pandas ``str``/``string``
  of any storage, Arrow strings) as Arrow ``large_string`` offsets + data + validity; categoricals as a
  digest of their categories plus their codes; ``None`` and ``NaN`` in object columns are told apart;
* the row index is not part of the fingerprint (Arrow tables and Parquet files have none).

Each column also gets its own digest (:attr:`Fingerprint.columns`), stored with the dataset
version's schema (``schema_fields[].hash``), so versions can be compared column by column.  (Column
lineage goes by name: a column keeping an input's name descends from it even when rows were
filtered, so equal digests are not required there.)

Files are hashed as plain BLAKE3 of their bytes (so ``b3sum`` agrees); a directory hashes the sorted
relative paths with each file's digest.

Third parties add types with ``fingerprint.register(MyType)``.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from typing import Any

import numpy as np
from blake3 import blake3

from governance.errors import InputError
from governance.lineage._dataset import Dataset
from governance.lineage._lazy import LazyRegistrations

__all__ = ["ALGO", "ColumnDigest", "Fingerprint", "fingerprint"]

ALGO = "blake3"
_VERSION = b"gov-fp-v1"
_PARALLEL_THRESHOLD = 1 << 20  # bytes; below this a single thread is faster


@dataclass(frozen=True)
class ColumnDigest:
    """One column: name as a string, dtype string, and the digest of name, dtype and content."""

    name: str
    dtype: str
    hash: str


@dataclass(frozen=True)
class Fingerprint:
    """A content fingerprint.  ``hash`` is hex (64 chars = 256 bits); ``algo`` names the function."""

    hash: str
    algo: str
    coverage: str
    schema_hash: str | None
    row_count: int | None
    byte_size: int
    columns: tuple[ColumnDigest, ...] = ()


class _Hasher:
    """BLAKE3 with length-prefixed parts so that part boundaries are unambiguous."""

    def __init__(self, domain: bytes) -> None:
        self._h = blake3()
        self.nbytes = 0
        self.part(_VERSION + b" " + domain)

    def part(self, data: Any) -> None:
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        size = view.nbytes
        self._h.update(size.to_bytes(8, "little"))
        self._h.update(view)
        self.nbytes += size

    def text(self, value: str) -> None:
        self.part(value.encode("utf-8"))

    def digest(self) -> bytes:
        return self._h.digest()

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _big_hasher() -> Any:
    return blake3(max_threads=blake3.AUTO)


@functools.lru_cache(maxsize=512)
def _numpy_dtype_name(dtype: np.dtype[Any]) -> str:
    """``str(dtype)`` of a numpy dtype (numpy builds the string on every call: ~4 us)."""
    return str(dtype)


def _name_key(name: object) -> str:
    return name if isinstance(name, str) else f"<{type(name).__name__}>{name!r}"


def _display_name(name: object) -> str:
    return name if isinstance(name, str) else str(name)


# ------------------------------------------------------------------------------------ numpy parts
def _le(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return np.ascontiguousarray(arr)


def _canonical_nan(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Write every NaN with the same bit pattern (0/0 gives a negative NaN on x86)."""
    if arr.size == 0 or arr.dtype.kind not in "fc":
        return arr
    total = arr.sum()
    if math.isfinite(total.real) and math.isfinite(total.imag if arr.dtype.kind == "c" else 0.0):
        return arr  # no NaN can hide in a finite sum
    nan = np.isnan(arr)
    if not nan.any():
        return arr
    arr = arr.copy()
    arr[nan] = np.nan
    return arr


def _numpy_parts(arr: np.ndarray[Any, Any]) -> list[Any]:
    kind = arr.dtype.kind
    if kind == "O":
        return _object_parts(arr)
    if kind in "mM":
        arr = arr.view(np.int64)
    arr = _canonical_nan(_le(arr))
    return [arr.reshape(-1).view(np.uint8) if arr.size else b""]


def _object_parts(values: np.ndarray[Any, Any]) -> list[Any]:
    import pandas as pd
    import pyarrow as pa

    values = values.reshape(-1)
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    null = pd.isna(values)
    parts: list[Any] = [inferred.encode()]
    if null.any():
        none = np.frompyfunc(_is_none, 1, 1)(values)
        parts.append(np.packbits(null))
        parts.append(np.packbits(none.astype(bool)))
    if inferred in {"string", "bytes", "boolean", "integer", "floating", "empty", "decimal"}:
        try:
            return parts + _arrow_parts(pa.array(values, from_pandas=True))[1]
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            pass
    return [*parts, _repr_bytes(values)]


def _is_none(value: object) -> bool:
    return value is None


def _repr_bytes(values: Iterable[Any]) -> bytes:
    """Slow path for mixed Python objects: type-tagged reprs, length-prefixed."""
    out = bytearray()
    for value in values:
        klass = type(value)
        item = f"{klass.__module__}.{klass.__qualname__}:{value!r}".encode("utf-8", "surrogatepass")
        out += len(item).to_bytes(8, "little") + item
    return bytes(out)


# ------------------------------------------------------------------------------------ arrow parts
def _arrow_parts(arr: Any) -> tuple[str, list[Any]]:
    """(type string, canonical parts) of a pyarrow Array or ChunkedArray."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    typ = arr.type
    type_str = str(typ)
    n = len(arr)
    nulls = arr.null_count
    validity = np.packbits(arr.is_valid().to_numpy(zero_copy_only=False)) if nulls else b""
    if (
        pa.types.is_string(typ)
        or pa.types.is_large_string(typ)
        or pa.types.is_string_view(typ)
        or pa.types.is_binary(typ)
        or pa.types.is_large_binary(typ)
        or pa.types.is_binary_view(typ)
    ):
        textual = pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ)
        target = pa.large_string() if textual else pa.large_binary()
        if nulls:
            arr = pc.fill_null(arr, "" if textual else b"")
        if typ != target:
            arr = arr.cast(target)
        bufs = arr.buffers()
        offsets = np.frombuffer(bufs[1], dtype="<i8", count=n + 1, offset=arr.offset * 8)
        start, end = int(offsets[0]), int(offsets[-1])
        data = memoryview(bufs[2])[start:end] if bufs[2] is not None and end > start else b""
        return ("large_string" if textual else "large_binary"), [validity, offsets - start, data]
    if pa.types.is_dictionary(typ):
        dict_type, dict_parts = _arrow_parts(arr.dictionary)
        idx_type, idx_parts = _arrow_parts(arr.indices)
        return f"dictionary<{dict_type}, {idx_type}>", [_digest_parts(dict_parts), *idx_parts]
    if pa.types.is_boolean(typ):
        if nulls:
            arr = pc.fill_null(arr, value=False)
        return type_str, [validity, arr.to_numpy(zero_copy_only=False).view(np.uint8)]
    width = getattr(typ, "bit_width", 0) if pa.types.is_primitive(typ) or pa.types.is_decimal(typ) else 0
    if width and width % 8 == 0:
        size = width // 8
        raw = np.frombuffer(arr.buffers()[1], dtype=np.uint8, count=n * size, offset=arr.offset * size)
        if nulls:
            raw = raw.copy().reshape(n, size)
            raw[~arr.is_valid().to_numpy(zero_copy_only=False)] = 0
            raw = raw.reshape(-1)
        if pa.types.is_floating(typ) and n:
            floats = _canonical_nan(raw.view(f"<f{size}"))
            raw = floats.view(np.uint8)
        return type_str, [validity, raw]
    if pa.types.is_null(typ):
        return type_str, [n.to_bytes(8, "little")]
    return type_str, [validity, _repr_bytes(arr.to_pylist())]


def _digest_parts(parts: list[Any]) -> bytes:
    h = _Hasher(b"parts")
    for p in parts:
        h.part(p)
    return h.digest()


# ----------------------------------------------------------------------------------- pandas parts
def _series_parts(s: Any) -> tuple[str, list[Any]]:
    """(dtype string, canonical parts) of a pandas Series."""
    dtype = s.dtype
    if isinstance(dtype, np.dtype):
        return _numpy_dtype_name(dtype), _numpy_parts(s.to_numpy())
    return _extension_parts(dtype, s.array)


def _extension_parts(dtype: Any, array: Any) -> tuple[str, list[Any]]:
    """(dtype string, canonical parts) of a pandas extension array (a Series' ``.array``) of ``dtype``."""
    import pandas as pd

    dtype_str = str(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        cat_dtype, cat_parts = _series_parts(pd.Series(dtype.categories))
        return (
            f"category<{cat_dtype}, ordered={bool(dtype.ordered)}>",
            [_digest_parts(cat_parts), *_numpy_parts(np.asarray(array.codes))],
        )
    if isinstance(dtype, pd.DatetimeTZDtype):
        return dtype_str, [_le(np.asarray(array.asi8))]
    if (
        isinstance(dtype, pd.api.extensions.ExtensionDtype)
        and hasattr(dtype, "numpy_dtype")
        and type(array).__name__ in {"IntegerArray", "FloatingArray", "BooleanArray"}
    ):
        mask = np.asarray(array.isna())
        values = array.to_numpy(dtype=dtype.numpy_dtype, na_value=dtype.numpy_dtype.type(0))
        return dtype_str, [np.packbits(mask) if mask.any() else b"", *_numpy_parts(values)]
    try:
        import pyarrow as pa

        arrow = pa.array(array, from_pandas=True)
    except (ImportError, TypeError, ValueError, NotImplementedError):
        return dtype_str, [_repr_bytes(array)]
    arrow_type, parts = _arrow_parts(arrow)
    return f"{dtype_str}|{arrow_type}", parts


_LEN8 = [n.to_bytes(8, "little") for n in range(256)]  # length prefixes of names, dtypes and small parts


def _len8(n: int) -> bytes:
    return _LEN8[n] if n < 256 else n.to_bytes(8, "little")


def _column_digest(name: object, dtype_str: str, parts: list[Any], nbytes: list[int]) -> tuple[ColumnDigest, bytes]:
    """The column's digest (BLAKE3 of ``len(part) part`` for its name, dtype and parts), and its bytes."""
    key = _name_key(name).encode("utf-8", "surrogatepass")
    dtype = dtype_str.encode()
    views: list[Any] = [chunk if type(chunk) is bytes else memoryview(chunk).cast("B") for chunk in parts]
    sizes = [len(v) if type(v) is bytes else v.nbytes for v in views]
    total = len(key) + len(dtype) + sum(sizes)
    h = _big_hasher() if total >= _PARALLEL_THRESHOLD else blake3()
    # the digest is over the stream "len(part) part ...": small parts are joined into one update
    small: list[Any] = [_len8(len(key)), key, _len8(len(dtype)), dtype]
    for view, size in zip(views, sizes, strict=True):
        small.append(_len8(size))
        if size <= 4096:
            small.append(view)
        else:
            h.update(b"".join(small))
            small.clear()
            h.update(view)
    if small:
        h.update(b"".join(small))
    nbytes.append(total)
    digest = h.digest()
    return ColumnDigest(_display_name(name), dtype_str, digest.hex()), digest


@functools.lru_cache(maxsize=256)
def _schema(columns: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """A table schema's canonical text (``[[name key, dtype], ...]``) and its hash."""
    text = json.dumps([list(c) for c in columns], ensure_ascii=False, separators=(",", ":"))
    return text, blake3(_VERSION + b" schema\n" + text.encode("utf-8", "surrogatepass")).hexdigest()


_TABLE_DOMAIN = _VERSION + b" table"


def _table_fingerprint(columns: list[tuple[object, str, list[Any]]], row_count: int) -> Fingerprint:
    nbytes: list[int] = []
    digested = [_column_digest(name, dtype, parts, nbytes) for name, dtype, parts in columns]
    text, schema_hash = _schema(tuple((_name_key(name), dtype) for name, dtype, _ in columns))
    schema = text.encode("utf-8")
    # the stream of _Hasher(b"table"): its domain, the row count, the schema and each column's digest
    stream = [_len8(len(_TABLE_DOMAIN)), _TABLE_DOMAIN, _LEN8[8], row_count.to_bytes(8, "little"),
              _len8(len(schema)), schema]
    for _, digest in digested:
        stream += (_LEN8[32], digest)
    return Fingerprint(blake3(b"".join(stream)).hexdigest(), ALGO, "full", schema_hash, row_count, sum(nbytes),
                       tuple(d for d, _ in digested))


def _frame_fingerprint(df: Any) -> Fingerprint:
    # by position (duplicate names included); a plain numpy column, or an extension column (Arrow
    # strings, masked, categorical), is hashed from pandas' own array of it (``_mgr.iget_values``, no
    # Series built: the values ``Series.to_numpy()`` returns, the array ``Series.array`` is), any other
    # column through its Series; without those internals, ``DataFrame.items()``
    iget_values = getattr(getattr(df, "_mgr", None), "iget_values", None)
    ixs = getattr(df, "_ixs", None)
    if iget_values is None or ixs is None:
        return _table_fingerprint([(name, *_series_parts(s)) for name, s in df.items()], int(df.shape[0]))
    columns = []
    for i, name in enumerate(df.columns):
        values = iget_values(i)
        if type(values) is np.ndarray and values.ndim == 1:
            columns.append((name, _numpy_dtype_name(values.dtype), _numpy_parts(values)))
        elif getattr(values, "ndim", 0) == 1 and not isinstance(values, np.ndarray) \
                and not isinstance(getattr(values, "dtype", None), np.dtype | None):
            columns.append((name, *_extension_parts(values.dtype, values)))  # what the Series' .array is
        else:
            columns.append((name, *_series_parts(ixs(i, axis=1))))
    return _table_fingerprint(columns, len(df.index))


def _series_fingerprint(s: Any) -> Fingerprint:
    dtype, parts = _series_parts(s)
    return _table_fingerprint([(s.name, dtype, parts)], len(s))


def _arrow_table_fingerprint(table: Any) -> Fingerprint:
    columns = []
    for name, column in zip(table.schema.names, table.columns, strict=True):
        dtype, parts = _arrow_parts(column)
        columns.append((name, dtype, parts))
    return _table_fingerprint(columns, int(table.num_rows))


def _ndarray_fingerprint(arr: np.ndarray[Any, Any]) -> Fingerprint:
    canon = _le(arr).dtype.str if arr.dtype.kind != "O" else "|O"
    shape = json.dumps(list(arr.shape))
    parts = _numpy_parts(arr)
    h = _Hasher(b"ndarray")
    h.text(canon)
    h.text(shape)
    for p in parts:
        h.part(p)
    schema_hash = blake3(_VERSION + b" ndarray-schema\n" + f"{canon}{shape}".encode()).hexdigest()
    rows = int(arr.shape[0]) if arr.ndim else 1
    return Fingerprint(h.hexdigest(), ALGO, "full", schema_hash, rows, h.nbytes)


# ------------------------------------------------------------------------------------- files/dirs
def _file_digest(path: Path) -> tuple[str, int]:
    size = path.stat().st_size
    h = _big_hasher() if size >= _PARALLEL_THRESHOLD else blake3()
    if size:
        h.update_mmap(path)
    return h.hexdigest(), size


def _path_fingerprint(path: Path) -> Fingerprint:
    try:
        if path.is_file():
            digest, size = _file_digest(path)
            return Fingerprint(digest, ALGO, "full", None, None, size)
        if path.is_dir():
            h = _Hasher(b"directory")
            total = 0
            files = sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                digest, size = _file_digest(file)
                h.text(file.relative_to(path).as_posix())
                h.part(bytes.fromhex(digest))
                total += size
            return Fingerprint(h.hexdigest(), ALGO, "full", None, len(files), total)
    except OSError as exc:
        raise InputError(f"fingerprint: cannot read {path}: {exc.strerror}") from exc
    raise InputError(f"fingerprint: no such file or directory: {path}")


# -------------------------------------------------------------------------------------- dispatch
def _register_pandas() -> None:
    import pandas as pd

    fingerprint.register(pd.DataFrame, _frame_fingerprint)
    fingerprint.register(pd.Series, _series_fingerprint)


def _register_pyarrow() -> None:
    import pyarrow as pa

    fingerprint.register(pa.Table, _arrow_table_fingerprint)
    fingerprint.register(pa.RecordBatch, _arrow_table_fingerprint)

    def _array(arr: Any) -> Fingerprint:
        dtype, parts = _arrow_parts(arr)
        return _table_fingerprint([(None, dtype, parts)], len(arr))

    fingerprint.register(pa.Array, _array)
    fingerprint.register(pa.ChunkedArray, _array)


_LAZY = LazyRegistrations({"pandas": _register_pandas, "pyarrow": _register_pyarrow})


@singledispatch
def fingerprint(obj: object) -> Fingerprint:
    """The full-content :class:`Fingerprint` of a table, array, file or directory.

    Raises :class:`~governance.errors.InputError` for a type with no registered fingerprint.
    """
    if _LAZY.load_for(obj):
        return fingerprint(obj)
    raise InputError(
        f"fingerprint: no fingerprint for objects of type {type(obj).__module__}.{type(obj).__qualname__}; "
        "register one with governance.lineage.fingerprint.register(TYPE)"
    )


@fingerprint.register
def _(obj: np.ndarray) -> Fingerprint:
    return _ndarray_fingerprint(obj)


@fingerprint.register
def _(obj: os.PathLike) -> Fingerprint:  # type: ignore[type-arg]
    return _path_fingerprint(Path(obj))


@fingerprint.register
def _(obj: Dataset) -> Fingerprint:
    local = obj.local_path
    if local is None:
        raise InputError(f"fingerprint: {obj.uri} is not a local path; only local files can be hashed")
    return _path_fingerprint(local)
