"""Which registered version is this estimator?  Looked up by artifact hash, never by "the latest"."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from governance.catalog import Catalog, Model, ModelVersion, Ref
from governance.errors import NotFoundError
from governance.registry._common import resolve_catalog

__all__ = ["version_of"]


def version_of(estimator: Any, *, model: str | None = None, catalog: Catalog | None = None) -> Ref:
    """The version whose artifact is ``estimator`` (same bytes as captured), as a :class:`Ref`:
    ``ref.name``, ``ref.version``; ``str(ref)`` is ``MODEL@VERSION``, and every function taking a
    reference accepts it as it is.

    With ``model`` only that model's versions are searched.  Raises :class:`NotFoundError` when the
    estimator was never captured or registered (e.g. it was changed after its training step returned).
    """
    from governance.lineage import artifact_digest

    digest = artifact_digest(estimator)
    cat = resolve_catalog(catalog)
    with cat.read() as session:
        stmt = (
            select(Model.name, ModelVersion.version)
            .join(Model, col(Model.id) == ModelVersion.model_id)
            .where(ModelVersion.artifact_hash == digest)
            .order_by(col(ModelVersion.id))
        )
        if model is not None:
            stmt = stmt.where(Model.name == model)
        row = session.exec(stmt).first()
    if row is None:
        scope = f" of model {model!r}" if model else ""
        raise NotFoundError(f"no version{scope} has this estimator's artifact (blake3:{digest[:16]}...); "
                            "was it returned by a @governance.step(model=...) or registered?")
    return Ref(str(row[0]), version=int(row[1]))
