"""Iceberg tables: the snapshot a read or write saw, from the table's own metadata (pyiceberg).

An Iceberg table's version is its **snapshot id**, the ``datasetVersion`` the OpenLineage Spark
integration reports for Iceberg.  It is found three ways, all without Spark's Iceberg runtime (a Maven
jar, not on PyPI):

* a ``pyiceberg`` :class:`~pyiceberg.table.Table` passed to or returned by a step: its current snapshot
  (the table object carries the exact metadata file its catalog - SQL, REST, Glue, Hive - pointed to);
* a path to a table (its location, a directory with ``metadata/*.metadata.json``) or to one metadata
  file: that metadata file's current snapshot.  For a directory, the newest metadata file is the one
  ``metadata/version-hint.text`` names, else the one with the highest version number in its name (how
  Hadoop tables and pyiceberg number them).  A catalog may point at an older one (after a rollback): only
  the catalog knows, so pass the table object when a catalog is used;
* a Spark DataFrame reading Parquet data files of an Iceberg table (``governance.spark.read_table``
  reads a snapshot's data files so): the set of files read equals the data files of one snapshot,
  found newest first among the table's snapshots (up to ``MAX_VERSIONS_SEARCHED``).

What it proves: the files read are exactly the data files one committed snapshot lists (Iceberg data
files are immutable; a rewrite is a new file and a new snapshot).  Not proved: a snapshot with delete
files (row-level deletes) is refused by the reader rather than misread, and a table whose schema has
evolved is refused by the reader (Parquet read by column name would misread a renamed column); a catalog
that points at another metadata file than the newest on disk is seen only through the table object.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from governance.errors import ConfigError, InputError

if TYPE_CHECKING:
    from governance.lineage._adapters import DatasetCapture

__all__ = [
    "ICEBERG_INSTALL",
    "IcebergSnapshot",
    "iceberg_capture",
    "iceberg_metadata_file",
    "iceberg_root",
    "iceberg_snapshot",
    "iceberg_snapshots",
    "is_iceberg_location",
    "is_iceberg_table",
]

ICEBERG_INSTALL = "pip install 'ml-governance[spark]'"
_VERSIONED = re.compile(r"^v?(\d+)[-.]")


def _pyiceberg_table() -> Any:
    try:
        from pyiceberg.table import StaticTable
    except ImportError as exc:
        raise ConfigError(f"Iceberg tables need the pyiceberg package: {ICEBERG_INSTALL}") from exc
    return StaticTable


def is_iceberg_table(obj: object) -> bool:
    """Whether ``obj`` is a pyiceberg table, without importing pyiceberg."""
    return any(k.__name__ in ("Table", "StaticTable") and k.__module__.startswith("pyiceberg.table")
               for k in type(obj).__mro__)


def _local(uri: str) -> Path | None:
    split = urlsplit(uri)
    if split.scheme == "file":
        return Path(unquote(split.path))
    if split.scheme == "":
        return Path(uri)
    return None


def _norm(uri: str) -> str:
    local = _local(uri)
    return str(Path(os.path.abspath(local))) if local is not None else uri  # noqa: PTH100 - keeps symlinks


def _metadata_files(metadata_dir: Path) -> list[Path]:
    return [p for p in metadata_dir.glob("*.metadata.json") if p.is_file()]


def iceberg_root(uri: str) -> str | None:
    """The Iceberg table a data file or directory belongs to (the nearest ancestor whose ``metadata``
    directory holds ``*.metadata.json``), or None."""
    local = _local(uri)
    if local is None:
        return None
    for candidate in (local, *local.parents):
        meta = candidate / "metadata"
        if meta.is_dir() and _metadata_files(meta):
            return str(candidate)
    return None


def iceberg_metadata_file(path: str | os.PathLike[str]) -> Path:
    """The metadata file of a table location (see the module docstring), or ``path`` itself when it is one."""
    p = Path(os.fspath(path))
    if p.is_file() and p.name.endswith(".metadata.json"):
        return p
    meta = p / "metadata"
    files = _metadata_files(meta) if meta.is_dir() else []
    if not files:
        raise InputError(f"{p}: not an Iceberg table (no metadata/*.metadata.json)")
    hint = meta / "version-hint.text"
    if hint.is_file():
        wanted = hint.read_text(encoding="utf-8").strip()
        named = [f for f in files if f.name in (f"v{wanted}.metadata.json", wanted)]
        if named:
            return named[0]

    def version(f: Path) -> tuple[int, float]:
        match = _VERSIONED.match(f.name)
        return (int(match.group(1)) if match else -1, f.stat().st_mtime)

    return max(files, key=version)


@dataclass(frozen=True)
class IcebergSnapshot:
    """One snapshot of an Iceberg table: its location, id, metadata file and data files."""

    location: str
    snapshot_id: int
    metadata_location: str
    files: tuple[str, ...]
    delete_files: int = 0
    schema_count: int = 1
    records: int | None = None
    fields: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"location": self.location, "snapshot_id": self.snapshot_id, "files": len(self.files),
                "metadata_location": self.metadata_location}


def _load(source: Any) -> Any:
    if is_iceberg_table(source):
        return source
    static = _pyiceberg_table()
    where = iceberg_metadata_file(source)
    try:
        return static.from_metadata(str(where))
    except Exception as exc:  # pyiceberg raises its own validation and OS errors
        raise InputError(f"{where}: not a readable Iceberg metadata file: {exc}") from exc


def _snapshot_of(table: Any, snapshot: Any) -> IcebergSnapshot:
    files: list[str] = []
    deletes = 0
    for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files():
        files.append(_norm(str(task.file.file_path)))
        deletes += len(task.delete_files or ())
    summary = snapshot.summary
    total = summary.get("total-records") if summary is not None else None
    schema = table.schema()
    return IcebergSnapshot(
        location=_norm(str(table.location())),
        snapshot_id=int(snapshot.snapshot_id),
        metadata_location=str(table.metadata_location),
        files=tuple(sorted(files)),
        delete_files=deletes,
        schema_count=len(table.metadata.schemas),
        records=int(total) if total is not None else None,
        fields=tuple((f.name, str(f.field_type)) for f in schema.fields),
    )


def iceberg_snapshot(source: Any, snapshot_id: int | None = None) -> IcebergSnapshot | None:
    """The current snapshot (or ``snapshot_id``) of a pyiceberg table, a table location or a metadata
    file; None for a table with no snapshot yet (created, never written)."""
    table = _load(source)
    snap = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    if snap is None:
        if snapshot_id is not None:
            raise InputError(f"{table.location()}: no Iceberg snapshot {snapshot_id}")
        return None
    return _snapshot_of(table, snap)


def iceberg_snapshots(source: Any, limit: int) -> list[IcebergSnapshot]:
    """Up to ``limit`` snapshots of a table, newest first (by commit time, then sequence number)."""
    table = _load(source)
    ordered = sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number or 0), reverse=True)
    return [_snapshot_of(table, s) for s in ordered[:limit]]



def _table_name(location: str) -> tuple[str, str]:
    """OpenLineage naming of a table by its location, as the Spark integration names file-based tables."""
    split = urlsplit(location)
    if split.scheme in ("", "file"):
        return "file", _norm(location)
    authority = f"{split.scheme}://{split.netloc}" if split.netloc else f"{split.scheme}:"
    return authority, split.path.lstrip("/") or "/"


def iceberg_capture(source: Any, role: Any) -> DatasetCapture:
    """A :class:`~governance.lineage.DatasetCapture` of an Iceberg table (a pyiceberg table, a table
    location or a metadata file) at its current snapshot: named by its location, versioned by the
    snapshot id, with its schema and the row count its snapshot summary records (no scan)."""
    import hashlib

    from governance.lineage._adapters import DatasetCapture

    table = _load(source)
    snap = iceberg_snapshot(table)
    namespace, name = _table_name(str(table.location()))
    fields_ = [(f.name, str(f.field_type)) for f in table.schema().fields]
    schema_hash = hashlib.sha256(json.dumps(fields_, separators=(",", ":")).encode()).hexdigest()
    tags = dict(role.tags)
    summary = table.current_snapshot().summary if snap is not None else None
    size = summary.get("total-files-size") if summary is not None else None
    return DatasetCapture(
        role=role.name,
        direction=role.direction,
        namespace=namespace,
        name=name,
        kind="table",
        uri=str(table.location()),
        content_hash=None if snap is None else str(snap.snapshot_id),
        hash_algo=None if snap is None else "iceberg-snapshot",
        coverage="none" if snap is None else "snapshot",
        schema_hash="sha256:" + schema_hash,
        row_count=None if snap is None else snap.records,
        byte_size=int(size) if size is not None else None,
        fields=[{"name": n, "dtype": t, "position": i, "hash": None, "tags": list(tags.get(n, ()))}
                for i, (n, t) in enumerate(fields_)],
    )


def is_iceberg_location(path: Path) -> bool:
    """A table location (a directory with ``metadata/*.metadata.json``) or one metadata file."""
    if path.is_file():
        return path.name.endswith(".metadata.json") and path.parent.name == "metadata"
    meta = path / "metadata"
    return meta.is_dir() and bool(_metadata_files(meta))
