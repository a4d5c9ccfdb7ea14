"""``gov verify-data``: re-hash data and compare it with a recorded dataset version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.catalog import Dataset, DatasetVersion
from governance.errors import InputError
from governance.lineage._fingerprint import ALGO, Fingerprint, fingerprint
from governance.openlineage import local_path

__all__ = ["VerifyResult", "verify_dataset"]

_READERS = {
    ".parquet": "read_parquet",
    ".pq": "read_parquet",
    ".feather": "read_feather",
    ".arrow": "read_feather",
    ".csv": "read_csv",
}


@dataclass(frozen=True)
class VerifyResult:
    match: bool
    expected: str | None
    actual: str
    message: str


def _read_table(path: Path) -> Any:
    import pandas as pd

    reader = _READERS.get(path.suffix.lower())
    if reader is None and path.is_dir():
        reader = "read_parquet"
    if reader is None:
        raise InputError(
            f"verify-data: {path}: cannot read a table from a {path.suffix or 'suffix-less'} file; "
            "use Parquet, Feather or CSV"
        )
    try:
        return getattr(pd, reader)(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"verify-data: {path}: cannot read it as a table: {exc}") from exc


def verify_dataset(dataset: Dataset, dv: DatasetVersion, path: Path | None) -> VerifyResult:
    """Fingerprint ``path`` (default: the version's uri) the way the version was fingerprinted."""
    label = f"{dataset.name}@{dv.version}"
    if dv.content_hash is None:
        raise InputError(f"verify-data: {label} was recorded by reference only (no content hash to compare)")
    if (dv.hash_algo or ALGO) != ALGO:
        raise InputError(f"verify-data: {label} was hashed with {dv.hash_algo!r}; this version verifies {ALGO}")
    if path is None:
        local = local_path(dv.uri or dataset.uri)
        if local is None:
            raise InputError(f"verify-data: {label} has no local uri; pass the PATH of the data to verify")
        path = local
    if not path.exists():
        raise InputError(f"verify-data: no such file or directory: {path}")
    if path.is_dir() and not any(path.iterdir()):
        raise InputError(f"verify-data: {path} is an empty directory: no data to verify against {label}")
    fp: Fingerprint
    fp = fingerprint(path) if dataset.kind in ("file", "directory") else fingerprint(_read_table(path))
    if fp.hash == dv.content_hash:
        return VerifyResult(True, dv.content_hash, fp.hash, f"match: {path} is {label} ({ALGO} {fp.hash[:16]}…)")
    detail = ""
    if fp.schema_hash is not None and dv.schema_hash is not None and fp.schema_hash != dv.schema_hash:
        detail = " (the schema differs: column names, order or dtypes)"
    elif fp.row_count is not None and dv.row_count is not None and fp.row_count != dv.row_count:
        detail = f" ({fp.row_count} rows, recorded {dv.row_count})"
    return VerifyResult(
        False,
        dv.content_hash,
        fp.hash,
        f"mismatch: {path} is not {label}: {ALGO} {fp.hash[:16]}… != recorded {dv.content_hash[:16]}…{detail}",
    )
