"""Capture adapters: what a step records about each argument and return value.

``capture_adapter(obj, role)`` is a :func:`functools.singledispatch` function.  It returns a
:class:`DatasetCapture` (data: tables, arrays, files), a :class:`ModelCapture` (a trained model), or
``None`` (not an artifact: the value becomes a JSON-safe parameter, or is skipped).  Built in: pandas
DataFrame/Series, numpy arrays, pyarrow Table/RecordBatch, ``pathlib.Path`` and
:class:`governance.Dataset` (files and directories), scikit-learn estimators and pipelines, Spark
DataFrames (schema and version identity, see :mod:`governance.lineage._spark`), Iceberg tables (a
pyiceberg table, or a path to a table location or metadata file: the snapshot id, see ``_iceberg``).

Plugin contract, for third parties::

    from governance.lineage import capture_adapter, table_capture

    @capture_adapter.register(polars.DataFrame)
    def _(obj, role):
        return table_capture(obj.to_pandas(), role)

An adapter must not mutate ``obj`` and should be fast; an adapter that raises is logged and the
value is recorded as a parameter instead (capture never fails the step).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import singledispatch
from pathlib import Path
from typing import Any

import numpy as np

from governance.lineage._dataset import Dataset, file_dataset_name
from governance.lineage._fingerprint import Fingerprint, fingerprint
from governance.lineage._iceberg import iceberg_capture, is_iceberg_location
from governance.lineage._lazy import LazyRegistrations
from governance.lineage._tags import frame_tags, merge_tag_maps
from governance.openlineage import dataset_uri, memory_namespace

__all__ = [
    "CaptureRole",
    "DatasetCapture",
    "ModelCapture",
    "array_capture",
    "capture_adapter",
    "json_safe",
    "path_capture",
    "table_capture",
]

_MAX_ITEMS = 50
_MAX_STR = 1000


@dataclass(frozen=True)
class CaptureRole:
    """Where a value appears: job name, argument (or ``output``, ``output.0``, ``output.key``) and
    direction (``input``/``output``), plus the step's settings an adapter may need."""

    job: str
    name: str
    direction: str
    namespace: str
    model: str | None = None
    tags: Mapping[str, list[str]] = field(default_factory=dict)
    capture_stats: bool = True
    home: Path | None = None
    #: for an output: the run's input captures, so an adapter can trace column lineage to them
    inputs: tuple[DatasetCapture, ...] = ()

    @property
    def dataset_name(self) -> str:
        return f"{self.job}.{self.name}"


@dataclass
class DatasetCapture:
    """A dataset version seen by a run.  Serialisable (the spool stores it as JSON)."""

    role: str
    direction: str
    namespace: str
    name: str
    kind: str  # table | array | file | directory | reference
    uri: str | None
    content_hash: str | None
    hash_algo: str | None
    coverage: str
    schema_hash: str | None
    row_count: int | None
    byte_size: int | None
    fields: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    reuse_any: bool = False  # an input may reuse a version of another dataset with the same content
    #: column lineage an adapter derived (a Spark plan), one dict per link: ``output`` (None: the whole
    #: output), the input's ``namespace``/``name``/``field``, ``type``, ``subtype``, ``masking``; None: not
    #: derived (columns are then linked by name, see ``_record``)
    column_lineage: list[dict[str, Any]] | None = None
    _stats_source: Any = field(default=None, repr=False, compare=False)
    _spark_plan: Any = field(default=None, repr=False, compare=False)  # an input's plan, for outputs' lineage

    @property
    def stats_pending(self) -> bool:
        """Statistics were asked for and are not computed yet."""
        return self.stats is None and self._stats_source is not None

    def ensure_stats(self) -> dict[str, Any] | None:
        """Compute the column statistics now (they are computed lazily: only new versions need them)."""
        if self.stats is None and self._stats_source is not None:
            from governance.lineage._stats import table_stats

            self.stats = table_stats(self._stats_source)
        self._stats_source = None
        return self.stats

    def to_json(self) -> dict[str, Any]:
        self.ensure_stats()
        doc = asdict(replace(self, _stats_source=None, _spark_plan=None))
        doc.pop("_stats_source", None)
        doc.pop("_spark_plan", None)
        return {"type": "dataset", **doc}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DatasetCapture:
        data = {k: v for k, v in doc.items() if k != "type"}
        return cls(**data)


@dataclass
class ModelCapture:
    """A trained model seen by a run (saved as a verified artifact)."""

    role: str
    direction: str
    model_name: str | None
    artifact_hash: str
    hash_algo: str
    artifact_uri: str | None
    flavor: str
    params: dict[str, Any] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    class_name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"type": "model", **asdict(self)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ModelCapture:
        return cls(**{k: v for k, v in doc.items() if k != "type"})


# ------------------------------------------------------------------------------------ JSON-safe
def json_safe(value: Any, depth: int = 0) -> Any:
    """A bounded JSON-safe summary of a parameter value (never the value's pickle)."""
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str) and len(value) > _MAX_STR:
            return value[: _MAX_STR - 1] + "…"
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return json_safe(value.item(), depth)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if depth >= 4:
        return {"type": _qualname(value)}
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k): json_safe(v, depth + 1) for k, v in items[:_MAX_ITEMS]}
        if len(items) > _MAX_ITEMS:
            out["…"] = f"{len(items) - _MAX_ITEMS} more"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
        out_list = [json_safe(v, depth + 1) for v in seq[:_MAX_ITEMS]]
        if len(seq) > _MAX_ITEMS:
            out_list.append(f"… {len(seq) - _MAX_ITEMS} more")
        return out_list
    text = repr(value)
    if len(text) > 200:
        text = text[:199] + "…"
    return {"type": _qualname(value), "repr": text}


def _qualname(value: object) -> str:
    klass = type(value)
    return f"{klass.__module__}.{klass.__qualname__}"


# ------------------------------------------------------------------------------------- builders
def _fp_fields(fp: Fingerprint) -> dict[str, Any]:
    return {
        "content_hash": fp.hash,
        "hash_algo": fp.algo,
        "coverage": fp.coverage,
        "schema_hash": fp.schema_hash,
        "row_count": fp.row_count,
        "byte_size": fp.byte_size,
    }


def _in_memory(role: CaptureRole, fp: Fingerprint, kind: str, fields: list[dict[str, Any]],
               stats_source: Any) -> DatasetCapture:
    """A capture of an in-memory value (named after the step and argument; inputs may reuse any
    version with the same content)."""
    return DatasetCapture(
        role=role.name,
        direction=role.direction,
        namespace=role.namespace if "://" in role.namespace else memory_namespace(role.namespace),
        name=role.dataset_name,
        kind=kind,
        uri=None,
        fields=fields,
        reuse_any=role.direction == "input",
        _stats_source=stats_source,
        **_fp_fields(fp),
    )


def table_capture(df: Any, role: CaptureRole, *, kind: str = "table", tags_source: Any = None) -> DatasetCapture:
    """A :class:`DatasetCapture` of a pandas DataFrame (fingerprint, fields with tags, lazy stats)."""
    fp = fingerprint(df)
    tags = merge_tag_maps(frame_tags(df if tags_source is None else tags_source), role.tags)
    fields = [
        {"name": c.name, "dtype": c.dtype, "position": i, "hash": c.hash, "tags": list(tags.get(c.name, ()))}
        for i, c in enumerate(fp.columns)
    ]
    return _in_memory(role, fp, kind, fields, df if role.capture_stats else None)


def array_capture(arr: np.ndarray[Any, Any], role: CaptureRole) -> DatasetCapture:
    """A numpy array: fingerprint of the whole buffer; stats per column for 1-d and 2-d numeric arrays."""
    fp = fingerprint(arr)
    source = None
    if role.capture_stats and arr.ndim in (1, 2) and arr.dtype.kind in "biuf":
        import pandas as pd

        source = pd.DataFrame(arr.reshape(len(arr), -1), copy=False)
        source.columns = [str(c) for c in source.columns]
    shape = "x".join(str(d) for d in arr.shape)
    fields = [{"name": "value", "dtype": f"{arr.dtype.str}[{shape}]", "position": 0, "hash": fp.hash, "tags": []}]
    return _in_memory(role, fp, "array", fields, source)


def path_capture(ds: Dataset, role: CaptureRole) -> DatasetCapture:
    """A file or directory (hashed), or a remote URI (recorded by reference, not hashed)."""
    local = ds.local_path
    if local is None or not local.exists():
        return DatasetCapture(
            role=role.name,
            direction=role.direction,
            namespace=ds.namespace,
            name=ds.name,
            kind="reference",
            uri=ds.uri,
            content_hash=None,
            hash_algo=None,
            coverage="none",
            schema_hash=None,
            row_count=None,
            byte_size=None,
        )
    if is_iceberg_location(local) and importlib.util.find_spec("pyiceberg") is not None:
        # an Iceberg table is versioned by its snapshot id (without pyiceberg: hashed as files)
        return iceberg_capture(local, role)
    fp = fingerprint(local)
    return DatasetCapture(
        role=role.name,
        direction=role.direction,
        namespace=ds.namespace,
        name=ds.name,
        kind="directory" if local.is_dir() else "file",
        uri=dataset_uri(ds.namespace, ds.name) if ds.namespace == "file" else ds.uri,
        **_fp_fields(fp),
    )


# ------------------------------------------------------------------------------------- dispatch
@singledispatch
def capture_adapter(obj: object, role: CaptureRole) -> DatasetCapture | ModelCapture | None:
    """What a step records for ``obj`` in ``role``; ``None`` when it is not an artifact."""
    if _LAZY.load_for(obj):
        return capture_adapter(obj, role)
    return None


@capture_adapter.register
def _(obj: np.ndarray, role: CaptureRole) -> DatasetCapture:
    return array_capture(obj, role)


@capture_adapter.register
def _(obj: Dataset, role: CaptureRole) -> DatasetCapture:
    return path_capture(obj, role)


@capture_adapter.register
def _(obj: Path, role: CaptureRole) -> DatasetCapture:
    namespace, name = file_dataset_name(obj)
    return path_capture(Dataset(obj, name=name, namespace=namespace), role)


def _register_pandas() -> None:
    import pandas as pd

    def _frame(obj: Any, role: CaptureRole) -> DatasetCapture:
        return table_capture(obj, role)

    def _series(obj: Any, role: CaptureRole) -> DatasetCapture:
        return table_capture(obj.to_frame(name=role.name if obj.name is None else obj.name), role, tags_source=obj)

    capture_adapter.register(pd.DataFrame, _frame)
    capture_adapter.register(pd.Series, _series)


def _register_pyarrow() -> None:
    import pyarrow as pa

    def _table(obj: Any, role: CaptureRole) -> DatasetCapture:
        fp = fingerprint(obj)
        tags = dict(role.tags)
        fields = [
            {
                "name": c.name,
                "dtype": c.dtype,
                "position": i,
                "hash": c.hash,
                "tags": list(tags.get(c.name, ())),
            }
            for i, c in enumerate(fp.columns)
        ]
        source = obj.to_pandas() if role.capture_stats else None
        return _in_memory(role, fp, "table", fields, source)

    capture_adapter.register(pa.Table, _table)
    capture_adapter.register(pa.RecordBatch, _table)


def _register_sklearn() -> None:
    from sklearn.base import BaseEstimator

    from governance.lineage._artifacts import estimator_capture

    capture_adapter.register(BaseEstimator, estimator_capture)


def _register_pyspark() -> None:
    from pyspark.sql import DataFrame

    from governance.lineage._spark import spark_capture

    capture_adapter.register(DataFrame, spark_capture)


def _register_pyiceberg() -> None:
    from pyiceberg.table import Table

    capture_adapter.register(Table, iceberg_capture)


_LAZY = LazyRegistrations(
    {
        "pandas": _register_pandas,
        "pyarrow": _register_pyarrow,
        "sklearn": _register_sklearn,
        "pyspark": _register_pyspark,
        "pyiceberg": _register_pyiceberg,
    }
)
