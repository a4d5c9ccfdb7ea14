"""Lineage queries by reference (``MODEL@VERSION``), thin wrappers over the catalog's graph walks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from governance.catalog import (
    Catalog,
    LineageGraph,
    ModelVersion,
    VersionDiff,
    open_catalog,
    parse_as_of,
    resolve_model_version,
)
from governance.catalog import diff_versions as _diff
from governance.catalog import downstream as _downstream
from governance.catalog import upstream as _upstream

__all__ = ["diff_versions", "downstream", "upstream"]


def _catalog(catalog: Catalog | None) -> Catalog:
    if catalog is not None:
        return catalog
    from governance.lineage._settings import SettingsCache

    return open_catalog(SettingsCache().get())


def _walk(
    fn: Any, ref: str | ModelVersion, depth: int | None, as_of: datetime | str | None, catalog: Catalog | None
) -> LineageGraph:
    with _catalog(catalog).read() as session:
        if isinstance(ref, ModelVersion):
            mv = ref
        else:
            _, mv = resolve_model_version(session, ref)
        return fn(session, "model", int(mv.id or 0), depth=depth, as_of=parse_as_of(as_of))  # type: ignore[no-any-return]


def upstream(
    ref: str | ModelVersion,
    *,
    depth: int | None = None,
    as_of: datetime | str | None = None,
    catalog: Catalog | None = None,
) -> LineageGraph:
    """Everything ``MODEL@VERSION`` was built from: training runs, their inputs, and so on up."""
    return _walk(_upstream, ref, depth, as_of, catalog)


def downstream(
    ref: str | ModelVersion,
    *,
    depth: int | None = None,
    as_of: datetime | str | None = None,
    catalog: Catalog | None = None,
) -> LineageGraph:
    """Everything built from ``MODEL@VERSION``: runs that consumed it, their outputs, and so on down."""
    return _walk(_downstream, ref, depth, as_of, catalog)


def diff_versions(a: str | ModelVersion, b: str | ModelVersion, *, catalog: Catalog | None = None) -> VersionDiff:
    """What changed between two model versions: training data versions, code and parameters."""
    with _catalog(catalog).read() as session:
        mv_a = a if isinstance(a, ModelVersion) else resolve_model_version(session, a)[1]
        mv_b = b if isinstance(b, ModelVersion) else resolve_model_version(session, b)[1]
        return _diff(session, mv_a, mv_b)
