"""Read a Parquet file or directory, or a Delta table, as a Spark DataFrame.

Delta without Maven: the delta-spark jars are not on PyPI (the ``delta-spark`` wheel holds only the
Python API and asks Spark to download ``io.delta:delta-spark`` from Maven at start-up).  So a Delta table
is resolved with delta-rs (the ``deltalake`` package, on PyPI): its ``_delta_log`` gives the snapshot's
version and active data files, and Spark reads exactly those Parquet files.  Tables whose readers must
apply more than the file list (deletion vectors, column mapping) are refused rather than misread.
Where the real Delta connector is on the cluster (Databricks), read the table with it and pass the
DataFrame: capture recognises the snapshot from the files it reads.

Iceberg the same way, for the same reason (Spark's Iceberg runtime is a Maven jar): pyiceberg reads the
table's metadata (the current snapshot, or a given snapshot id) and Spark reads that snapshot's data
files.  Snapshots with delete files, and tables whose schema has evolved, are refused rather than misread.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from governance.errors import InputError, NotFoundError
from governance.lineage import delta_snapshot, iceberg_root, iceberg_snapshot

__all__ = ["SUPPORTED_DELTA_READER_FEATURES", "read_table"]

SUPPORTED_DELTA_READER_FEATURES = frozenset({"timestampNtz"})


def _read_iceberg(spark: Any, path: Path, snapshot_id: int | None) -> Any:
    snap = iceberg_snapshot(path, snapshot_id)
    if snap is None:
        raise InputError(f"{path}: the Iceberg table has no snapshot yet (nothing written)")
    if snap.delete_files:
        raise InputError(f"{path}: Iceberg snapshot {snap.snapshot_id} has {snap.delete_files} delete file(s) "
                         "(row-level deletes), which reading its Parquet files cannot honour; read it with "
                         "Spark's Iceberg runtime and pass the DataFrame")
    if snap.schema_count > 1:
        raise InputError(f"{path}: the Iceberg table's schema has evolved ({snap.schema_count} schemas); reading "
                         "its Parquet files by column name could misread renamed columns; read it with Spark's "
                         "Iceberg runtime and pass the DataFrame")
    if not snap.files:
        raise InputError(f"{path}: Iceberg snapshot {snap.snapshot_id} has no data files")
    return spark.read.parquet(*snap.files)


def read_table(spark: Any, path: str | os.PathLike[str], *, version: int | None = None) -> Any:
    """A DataFrame over ``path``: a Delta table (a directory with ``_delta_log``; the latest snapshot or
    ``version``), an Iceberg table (its location, or one ``*.metadata.json``; the current snapshot, or
    the snapshot id ``version``), or Parquet (a file or a directory of files)."""
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"{p}: no such file or directory")
    if (p / "_delta_log").is_dir():
        snap = delta_snapshot(p, version)
        unsupported = sorted(set(snap.reader_features) - SUPPORTED_DELTA_READER_FEATURES)
        if unsupported:
            raise InputError(
                f"{p}: Delta version {snap.version} needs reader features {', '.join(unsupported)}, which "
                "reading its Parquet files cannot honour; read it with the Delta connector and pass the DataFrame"
            )
        if not snap.files:
            raise InputError(f"{p}: Delta version {snap.version} has no data files")
        reader = spark.read
        if snap.partition_columns:
            reader = reader.option("basePath", snap.location)
        return reader.parquet(*snap.files)
    if p.name.endswith(".metadata.json") or (p.is_dir() and iceberg_root(str(p)) == str(p)):
        return _read_iceberg(spark, p, version)
    if version is not None:
        raise InputError(f"{p}: version {version} given, but this is not a Delta or Iceberg table")
    if p.is_file() and p.suffix.lower() not in (".parquet", ".pq"):
        got = p.suffix or "no extension"
        raise InputError(f"{p}: the Spark engine reads Parquet files or Delta tables, got {got!r}")
    return spark.read.parquet(str(p))
