"""Load ``models:/NAME/VERSION`` (or ``models:/NAME@ALIAS``) through ``mlflow.pyfunc`` for
``governance.evaluate``, bound to the catalog's record of that version.

The version's files are downloaded once; their digest (:mod:`governance.mlflow._digest`) must equal
the artifact hash recorded when the version was imported, else the evaluation is refused: evidence is
computed from exactly the files the catalog names.  The model predicts through the pyfunc's
underlying model when the flavor exposes one (``get_raw_model``, e.g. scikit-learn, which also gives
scores and feature names), else through the pyfunc itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from governance.catalog import Catalog, resolve_model_version
from governance.errors import InputError, NotFoundError
from governance.mlflow._client import connect
from governance.mlflow._digest import TREE_ALGO, downloaded_model, tree_digest

__all__ = ["LoadedModel", "is_model_uri", "load_registered_model"]

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z][\w.-]*))$")


def is_model_uri(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("models:/")


@dataclass(frozen=True)
class LoadedModel:
    """The model to predict with, the catalog reference it is bound to and its artifact record."""

    model: Any
    ref: str
    artifact: dict[str, Any]


def load_registered_model(uri: str, catalog: Catalog, *, tracking_uri: str | None = None) -> LoadedModel:
    """Download, verify against the catalog and load ``uri`` (see the module docstring)."""
    match = _URI.match(uri.strip())
    if match is None:
        raise InputError(f"model: expected models:/NAME/VERSION or models:/NAME@ALIAS, got {uri!r}")
    conn = connect(tracking_uri)
    name = match["name"]
    version = match["version"]
    if version is None:
        try:
            version = str(conn.client.get_model_version_by_alias(name, match["alias"]).version)
        except conn.mlflow.exceptions.MlflowException as exc:
            raise NotFoundError(f"{uri}: no such alias on {conn.uri}") from exc
    ref = f"{name}@{version}"
    with catalog.read() as session:
        _, mv = resolve_model_version(session, ref)
        recorded, algo = mv.artifact_hash, mv.hash_algo
    if algo != TREE_ALGO:
        raise InputError(f"{uri}: {ref} in the catalog was not imported from MLflow; run "
                         f"`gov import mlflow --model {name}` first")
    with downloaded_model(conn, name, version) as local:
        digest = tree_digest(local)
        if digest != recorded:
            raise InputError(f"{uri}: the files MLflow serves (sha256-tree {digest[:12]}...) differ from the "
                             f"version imported into the catalog ({str(recorded)[:12]}...); evidence refused")
        pyfunc = conn.mlflow.pyfunc.load_model(str(local))
    raw = getattr(pyfunc, "get_raw_model", None)
    model = pyfunc
    if callable(raw):
        try:
            inner = raw()
        except Exception:  # noqa: BLE001 - flavors without a raw model predict through the pyfunc
            inner = None
        if inner is not None and callable(getattr(inner, "predict", None)):
            model = inner
    artifact = {"uri": f"models:/{name}/{version}", "digest": digest, "hash_algo": TREE_ALGO,
                "tracking_uri": conn.uri, "loaded_through": "mlflow.pyfunc"}
    return LoadedModel(model, ref, artifact)
