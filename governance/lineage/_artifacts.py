"""Model artifacts: estimators saved by content hash and loaded only after the hash verifies.

An estimator is serialised with joblib; the BLAKE3 digest of those bytes is its ``artifact_hash`` and
the file is ``<home>/artifacts/<hash>.joblib``.  :func:`load_model_artifact` re-hashes the file and
refuses to unpickle a file whose hash differs from the one recorded in the catalog (unpickling runs
code, so only verified bytes are loaded).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from blake3 import blake3

from governance.catalog import ModelVersion
from governance.errors import InputError, NotFoundError
from governance.lineage._adapters import CaptureRole, ModelCapture, json_safe

__all__ = ["artifact_digest", "estimator_capture", "load_model_artifact", "save_estimator"]

ALGO = "blake3"


def _dump(estimator: Any) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def artifact_digest(estimator: Any) -> str:
    """The artifact hash capture records for ``estimator`` (BLAKE3 of its joblib bytes)."""
    return blake3(_dump(estimator)).hexdigest()


def save_estimator(estimator: Any, home: Path) -> tuple[str, str]:
    """Save ``estimator`` under ``home/artifacts``; return ``(hash, absolute path)``."""
    data = _dump(estimator)
    digest = blake3(data).hexdigest()
    directory = home / "artifacts"
    path = directory / f"{digest}.joblib"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".joblib")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return digest, str(path.resolve())


def estimator_params(estimator: Any) -> dict[str, Any]:
    get_params = getattr(estimator, "get_params", None)
    if get_params is None:
        return {}
    params = json_safe(get_params(deep=True))
    return params if isinstance(params, dict) else {}


def estimator_capture(estimator: Any, role: CaptureRole) -> ModelCapture:
    """A scikit-learn estimator or pipeline as a model artifact (saved, hashed, described)."""
    from governance.lineage._settings import SettingsCache

    home = role.home if role.home is not None else SettingsCache().get().home
    digest, uri = save_estimator(estimator, home)
    names = getattr(estimator, "feature_names_in_", None)
    klass = type(estimator)
    return ModelCapture(
        role=role.name,
        direction=role.direction,
        model_name=role.model if role.model else (role.job if role.direction == "output" else None),
        artifact_hash=digest,
        hash_algo=ALGO,
        artifact_uri=uri,
        flavor="sklearn",
        params=estimator_params(estimator),
        features=[str(n) for n in names] if names is not None else [],
        class_name=f"{klass.__module__}.{klass.__qualname__}",
    )


def load_model_artifact(mv: ModelVersion) -> object:
    """Load the artifact of a model version after checking its hash; refuse a mismatch."""
    if not mv.artifact_uri:
        raise NotFoundError(f"model version id {mv.id} has no artifact uri")
    if not mv.artifact_hash:
        raise InputError(f"model version id {mv.id}: no artifact_hash recorded; refusing to load unverified bytes")
    algo = mv.hash_algo or ALGO
    if algo != ALGO:
        raise InputError(f"model version id {mv.id}: unsupported artifact hash algorithm {algo!r}; expected {ALGO}")
    path = Path(mv.artifact_uri.removeprefix("file://"))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"model artifact {path}: cannot read: {exc.strerror}") from exc
    actual = blake3(data).hexdigest()
    if actual != mv.artifact_hash:
        raise InputError(
            f"model artifact {path}: hash mismatch (catalog {mv.artifact_hash[:16]}…, file {actual[:16]}…); "
            "refusing to load it"
        )
    import joblib

    return joblib.load(io.BytesIO(data))
