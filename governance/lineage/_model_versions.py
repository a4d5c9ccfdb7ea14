"""``record_model_version``: the one place that creates model versions (capture and the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from governance.audit import AuditedTransaction
from governance.catalog import Model, ModelVersion
from governance.errors import InputError
from governance.lineage._artifacts import ALGO, estimator_params, save_estimator

__all__ = ["get_or_create_model", "record_model_version"]


def get_or_create_model(tx: AuditedTransaction, name: str) -> Model:
    session = tx.session
    model = session.exec(select(Model).where(Model.name == name)).first()
    if model is None:
        model = Model(name=name)
        session.add(model)
        session.flush()
        tx.record("model.create", f"model:{name}", {"name": name})
    return model


def record_model_version(
    tx: AuditedTransaction,
    model_name: str,
    *,
    estimator: Any = None,
    artifact_hash: str | None = None,
    hash_algo: str | None = None,
    artifact_uri: str | None = None,
    flavor: str | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    card: dict[str, Any] | None = None,
    features: list[str] | None = None,
    training_run_id: int | None = None,
    home: Path | None = None,
    version: int | None = None,
) -> ModelVersion:
    """Create the next version of ``model_name`` (and the model if needed) inside ``tx``.

    With ``estimator``, the artifact is saved under ``home/artifacts`` (default: the configured
    home) and its hash, uri, flavor, params and feature names are filled in unless given.  ``version``
    keeps another registry's number (MLflow import); by default the next number.  Records an audit
    event ``model_version.create``.
    """
    if not isinstance(model_name, str) or not model_name.strip() or "@" in model_name:
        raise InputError(f"model name: expected a non-empty name without '@', got {model_name!r}")
    if estimator is not None:
        if home is None:
            from governance.lineage._settings import SettingsCache

            home = SettingsCache().get().home
        digest, uri = save_estimator(estimator, home)
        artifact_hash = artifact_hash or digest
        hash_algo = hash_algo or ALGO
        artifact_uri = artifact_uri or uri
        flavor = flavor or "sklearn"
        params = params if params is not None else estimator_params(estimator)
        names = getattr(estimator, "feature_names_in_", None)
        if features is None and names is not None:
            features = [str(n) for n in names]
    model = get_or_create_model(tx, model_name)
    session = tx.session
    if version is None:
        stmt = select(sa.func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
        latest = session.exec(stmt).first()
        version = int(latest or 0) + 1
    elif version < 1 or session.exec(select(ModelVersion.id).where(
            ModelVersion.model_id == model.id, ModelVersion.version == version)).first() is not None:
        raise InputError(f"model {model_name!r}: version {version} exists already or is not a positive number")
    mv = ModelVersion(
        model_id=int(model.id or 0),
        version=version,
        artifact_hash=artifact_hash,
        hash_algo=hash_algo or (ALGO if artifact_hash else None),
        artifact_uri=artifact_uri,
        flavor=flavor,
        params=params or {},
        metrics=metrics or {},
        card=card or {},
        features=list(features or []),
        training_run_id=training_run_id,
        created_at=tx.time,
    )
    session.add(mv)
    session.flush()
    tx.record(
        "model_version.create",
        f"model:{model_name}@{version}",
        {
            "model": model_name,
            "version": version,
            "artifact_hash": artifact_hash,
            "hash_algo": mv.hash_algo,
            "flavor": flavor,
            "training_run_id": training_run_id,
        },
    )
    return mv
