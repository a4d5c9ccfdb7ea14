"""Registering model versions from outside a captured pipeline."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlmodel import select

from governance.audit import audited
from governance.catalog import Catalog, Model
from governance.errors import InputError
from governance.registry._common import resolve_catalog, resolve_who
from governance.registry._records import RegisteredVersion, registered_version

__all__ = ["register_model"]

_CHUNK = 1 << 20
_RISK_TIERS = ("minimal", "low", "medium", "high", "unacceptable")


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"artifact_path {path}: cannot read: {exc.strerror}") from exc
    return digest.hexdigest()


def register_model(
    name: str,
    *,
    estimator: Any = None,
    artifact_path: str | Path | None = None,
    owner: str | None = None,
    description: str | None = None,
    risk_tier: str | None = None,
    card: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    catalog: Catalog | None = None,
    actor: str | None = None,
) -> RegisteredVersion:
    """Register a new version of model ``name`` (created on first use); returns it as a
    :class:`RegisteredVersion` (``.version``, ``.ref``, ...).

    ``estimator`` is fingerprinted by capture; ``artifact_path`` is a file whose SHA-256 becomes the
    artifact hash.  ``owner``, ``description`` and ``risk_tier`` update the model's record when given.
    """
    if not name or "@" in name or name != name.strip():
        raise InputError(f"model name: expected a name without '@' or surrounding spaces, got {name!r}")
    if risk_tier is not None and risk_tier not in _RISK_TIERS:
        raise InputError(f"risk_tier: expected one of {', '.join(_RISK_TIERS)}, got {risk_tier!r}")
    artifact_hash = hash_algo = artifact_uri = None
    if artifact_path is not None:
        path = Path(artifact_path)
        if not path.is_file():
            raise InputError(f"artifact_path: no such file {path}")
        artifact_hash, hash_algo, artifact_uri = _hash_file(path), "sha256", path.resolve().as_uri()
    from governance.lineage import record_model_version

    cat = resolve_catalog(catalog)
    who = resolve_who(actor)
    with audited(cat, who) as tx:
        mv = record_model_version(
            tx, name, estimator=estimator, artifact_hash=artifact_hash, hash_algo=hash_algo,
            artifact_uri=artifact_uri, params=params, metrics=metrics, card=card,
        )
        model = tx.session.exec(select(Model).where(Model.id == mv.model_id)).one()
        changes = {k: v for k, v in (("owner", owner), ("description", description), ("risk_tier", risk_tier))
                   if v is not None and getattr(model, k) != v}
        if changes:
            for key, value in changes.items():
                setattr(model, key, value)
            tx.session.add(model)
            tx.record("model.update", f"model:{name}", changes)
        tx.session.flush()
        out = registered_version(mv, name, who)
    return out
