"""``governance.Dataset``: a reference to data by URI (a file, a directory, an object-store path).

Naming follows the OpenLineage dataset naming conventions: a local path is namespace ``file`` and
name = the absolute path; ``s3://bucket/key`` is namespace ``s3://bucket`` and name ``key``.  An
explicit ``name``/``namespace`` wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from governance.errors import InputError
from governance.openlineage import dataset_identity

__all__ = ["Dataset", "file_dataset_name"]


def file_dataset_name(path: Path) -> tuple[str, str]:
    """OpenLineage naming of a local file or directory: ``("file", absolute path)``."""
    return dataset_identity(path)


@dataclass(frozen=True, init=False)
class Dataset:
    """Data referenced by URI: ``Dataset("data/raw.parquet")``, ``Dataset("s3://bucket/raw/")``."""

    uri: str
    name: str
    namespace: str

    def __init__(self, uri: str | os.PathLike[str], name: str | None = None, namespace: str | None = None) -> None:
        text = os.fspath(uri)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"Dataset: uri must be a non-empty path or URI, got {uri!r}")
        split = urlsplit(text)
        if split.scheme in ("", "file") or (len(split.scheme) == 1 and os.name == "nt"):
            local = Path(unquote(split.path)) if split.scheme == "file" else Path(text)
            default_ns, default_name = file_dataset_name(local)
            text = default_name
        else:
            authority = f"{split.scheme}://{split.netloc}" if split.netloc else f"{split.scheme}:"
            default_ns, default_name = authority, split.path.lstrip("/") or "/"
        object.__setattr__(self, "uri", text)
        object.__setattr__(self, "name", name or default_name)
        object.__setattr__(self, "namespace", namespace or default_ns)

    @property
    def local_path(self) -> Path | None:
        """The local path when the URI is a file on this machine, else None."""
        if "://" in self.uri:
            return None
        return Path(self.uri)
