"""The artifact digest of an MLflow model version: SHA-256 over its files (paths and contents).

MLflow stores no digest of a model version's files, so one is computed from what the registry serves
for ``models:/NAME/VERSION``: every file under the downloaded directory, sorted by its POSIX relative
path, contributes ``path NUL sha256(content) NL`` to an outer SHA-256.  A changed byte, a renamed,
added or removed file changes the digest; the download location does not.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from governance.errors import InputError
from governance.mlflow._client import Connection, first_line

__all__ = ["TREE_ALGO", "downloaded_model", "tree_digest"]

TREE_ALGO = "sha256-tree"
_CHUNK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(root: Path) -> str:
    """The digest of every file under ``root`` (a single file: of that file alone)."""
    if root.is_file():
        files = [(root.name, root)]
    else:
        files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    outer = hashlib.sha256()
    for rel, path in files:
        outer.update(rel.encode("utf-8") + b"\0" + _file_digest(path).encode("ascii") + b"\n")
    return outer.hexdigest()


@contextmanager
def downloaded_model(conn: Connection, name: str, version: int | str) -> Iterator[Path]:
    """The files of model version ``name``/``version`` in a temporary directory (removed afterwards)."""
    mlflow = conn.mlflow
    uri = conn.client.get_model_version_download_uri(name, str(version))
    with tempfile.TemporaryDirectory(prefix="gov-mlflow-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp,
                                                        tracking_uri=conn.uri)
        except mlflow.exceptions.MlflowException as exc:
            raise InputError(f"models:/{name}/{version}: cannot download its artifacts from {uri}: "
                             f"{first_line(exc)}") from exc
        yield Path(local)

