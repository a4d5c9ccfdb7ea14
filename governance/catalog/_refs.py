"""References to catalog entities as users write them: ``MODEL@VERSION`` and ``DATASET@VERSION``.

A version is a number (``credit-scorer@3``) or an alias/stage (``credit-scorer@production``);
``credit-scorer`` alone means the latest version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from governance.catalog._models import Dataset, DatasetVersion, Model, ModelAlias, ModelVersion
from governance.errors import CatalogError, InputError, NotFoundError

__all__ = ["Ref", "parse_ref", "resolve_dataset_version", "resolve_model", "resolve_model_version"]

_NAME = re.compile(r"^[^@\s][^@]*$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
MAX_VERSION = 2**31 - 1
"""The largest version number a catalog column holds (a 32-bit INTEGER on PostgreSQL)."""


@dataclass(frozen=True)
class Ref:
    """A reference to a model (or dataset) version: ``NAME[@VERSION|@ALIAS]``, parsed.

    ``str(ref)`` is the text form (``credit-scorer@2``); every function that takes a reference takes
    either form."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name


def parse_ref(text: str | Ref, what: str = "MODEL@VERSION") -> Ref:
    """Parse ``name``, ``name@3`` or ``name@alias``; bad text is an :class:`InputError` naming ``what``.
    A :class:`Ref` (e.g. from :func:`governance.version_of`) is returned as it is."""
    if isinstance(text, Ref):
        return text
    name, sep, tail = text.strip().rpartition("@")
    if not sep:
        name, tail = tail, ""
    if not name or not _NAME.match(name):
        raise InputError(f"{what}: expected NAME@VERSION or NAME@ALIAS, got {text!r}")
    if not tail:
        if sep:
            raise InputError(f"{what}: nothing after '@' in {text!r}")
        return Ref(name)
    if tail.isdigit():
        if int(tail) < 1:
            raise InputError(f"{what}: versions start at 1, got {text!r}")
        if int(tail) > MAX_VERSION:
            raise InputError(f"{what}: version {tail} is out of range (at most {MAX_VERSION})")
        return Ref(name, version=int(tail))
    if not _ALIAS.match(tail):
        raise InputError(f"{what}: {tail!r} is neither a version number nor an alias name")
    return Ref(name, alias=tail)


def resolve_model(session: Session, name: str) -> Model:
    model = session.exec(select(Model).where(Model.name == name)).first()
    if model is None:
        known = session.exec(select(Model.name).order_by(Model.name).limit(10)).all()
        hint = f"; known models: {', '.join(known)}" if known else "; the catalog has no models yet"
        raise NotFoundError(f"unknown model {name!r}{hint}")
    return model


def resolve_model_version(session: Session, ref: Ref | str) -> tuple[Model, ModelVersion]:
    """The model and version a reference points at, or :class:`NotFoundError` saying what exists."""
    if isinstance(ref, str):
        ref = parse_ref(ref)
    model = resolve_model(session, ref.name)
    stmt = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if ref.version is not None:
        mv = session.exec(stmt.where(ModelVersion.version == ref.version)).first()
        if mv is None:
            latest = session.exec(
                select(sa.func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
            ).first()
            raise NotFoundError(f"model {ref.name!r} has no version {ref.version} (latest: {latest or 'none'})")
        return model, mv
    if ref.alias is not None:
        alias = session.exec(
            select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == ref.alias)
        ).first()
        if alias is None:
            names = session.exec(select(ModelAlias.alias).where(ModelAlias.model_id == model.id)).all()
            hint = f"; aliases: {', '.join(sorted(names))}" if names else "; it has no aliases yet"
            raise NotFoundError(f"model {ref.name!r} has no alias {ref.alias!r}{hint}")
        mv = session.get(ModelVersion, alias.model_version_id)
        if mv is None:
            raise CatalogError(f"alias {ref.alias!r} of model {ref.name!r} points to model version id "
                               f"{alias.model_version_id}, which is not in the catalog")
        return model, mv
    mv = session.exec(stmt.order_by(col(ModelVersion.version).desc())).first()
    if mv is None:
        raise NotFoundError(f"model {ref.name!r} has no versions yet")
    return model, mv


def resolve_dataset_version(session: Session, ref: Ref | str) -> tuple[Dataset, DatasetVersion]:
    """``name[@version]`` of a dataset (any namespace when the name is unique), or
    ``namespace/name[@version]`` to pick one namespace."""
    if isinstance(ref, str):
        ref = parse_ref(ref, "DATASET@VERSION")
    if ref.alias is not None:
        raise InputError(f"DATASET@VERSION: dataset versions are numbers, got {str(ref)!r}")
    datasets = session.exec(select(Dataset).where(Dataset.name == ref.name)).all()
    if not datasets and "/" in ref.name:  # NAMESPACE/NAME (namespaces may contain '/' themselves)
        namespace, _, name = ref.name.rpartition("/")
        datasets = session.exec(select(Dataset).where(Dataset.namespace == namespace, Dataset.name == name)).all()
    if not datasets:
        raise NotFoundError(f"unknown dataset {ref.name!r}")
    if len(datasets) > 1:
        spaces = ", ".join(sorted(d.namespace for d in datasets))
        raise InputError(f"dataset name {ref.name!r} exists in several namespaces ({spaces}); "
                         "pass NAMESPACE/NAME")
    dataset = datasets[0]
    stmt = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    if ref.version is not None:
        stmt = stmt.where(DatasetVersion.version == ref.version)
    dv = session.exec(stmt.order_by(col(DatasetVersion.version).desc())).first()
    if dv is None:
        raise NotFoundError(f"dataset {ref.name!r} has no version {ref.version or '(any)'}")
    return dataset, dv
