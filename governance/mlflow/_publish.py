"""Gated promotion on MLflow: the alias moves in MLflow only after our gate passed and our promotion
(or rollback) committed.

Order of a ``gov promote NAME@VERSION --to STAGE --registry mlflow``:

1. :meth:`MlflowRegistry.preflight`: the version exists in MLflow, was imported into the catalog, and
   the files MLflow serves for it still have the digest recorded at import (else nothing happens);
2. the gate and the promotion run as usual (``governance.registry.promote``), audited;
3. only when that recorded a promotion, :meth:`MlflowRegistry.publish_promotion` (the ``after_pass``
   hook) writes the tags on the MLflow model version and then sets the alias.  A refusal never calls
   it, so MLflow is untouched.

Tags written on the model version (``governance.`` prefix): ``gate`` (the verdict, e.g. ``PASS``),
``stage``, ``policy`` (name and version), ``policy_digest``, ``evidence_digest`` (SHA-256 of the
canonical JSON of the evidence the gate read), ``evaluation_id``, ``audit_seq`` (the promotion's
audit event), ``actor`` and ``action`` (``promote`` or ``rollback``).

If MLflow cannot be written after our promotion committed, :class:`MlflowPublishError` says so (the
catalog records the gated promotion; MLflow's alias still points elsewhere, which ``gov mlflow
reconcile`` reports until the command is re-run).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from governance.audit import canonical_json
from governance.catalog import Catalog, Evidence, resolve_model_version
from governance.errors import CatalogError, InputError, NotFoundError
from governance.mlflow._client import Connection, connect, first_line
from governance.mlflow._digest import TREE_ALGO, downloaded_model, tree_digest

if TYPE_CHECKING:  # the registry calls this module's hooks; it is a layer above
    from governance.registry import Rollback

__all__ = ["TAG_PREFIX", "MlflowPublishError", "MlflowRegistry", "evidence_digest"]

TAG_PREFIX = "governance."

class MlflowPublishError(CatalogError):
    """Our promotion was recorded but MLflow could not be updated (exit 2; re-run to publish)."""

def evidence_digest(catalog: Catalog, model_version_id: int) -> str | None:
    """SHA-256 of the canonical JSON of a version's evidence documents (newest first), or None."""
    with catalog.read() as session:
        rows = session.exec(select(Evidence.id, Evidence.data).where(Evidence.model_version_id == model_version_id)
                            .order_by(col(Evidence.id).desc())).all()
    if not rows:
        return None
    return "sha256:" + hashlib.sha256(canonical_json([{"id": i, "data": d} for i, d in rows])).hexdigest()

class MlflowRegistry:
    """The MLflow side of a promotion or rollback (see the module docstring)."""

    def __init__(self, tracking_uri: str | None, catalog: Catalog) -> None:
        self.conn: Connection = connect(tracking_uri)
        self.catalog = catalog

    def preflight(self, ref: str) -> tuple[str, int]:
        """``(name, version)`` of ``ref`` in the catalog, checked against MLflow (see step 1)."""
        with self.catalog.read() as session:
            model, mv = resolve_model_version(session, ref)
            name, version, digest, algo = model.name, mv.version, mv.artifact_hash, mv.hash_algo
        where = f"models:/{name}/{version}"
        if algo != TREE_ALGO:
            raise InputError(f"{name}@{version} was not imported from MLflow; run `gov import mlflow --model {name}` "
                             "first")
        mlflow = self.conn.mlflow
        try:
            self.conn.client.get_model_version(name, str(version))
        except mlflow.exceptions.MlflowException as exc:
            raise NotFoundError(f"{where}: not found on {self.conn.uri}: {first_line(exc)}") from exc
        with downloaded_model(self.conn, name, version) as local:
            now = tree_digest(local)
        if now != digest:
            raise InputError(f"{where}: the files MLflow serves changed since import (sha256-tree {now[:12]}..., "
                             f"imported {str(digest)[:12]}...); nothing promoted")
        return name, version

    def _write(self, name: str, version: int, alias: str, tags: dict[str, Any]) -> None:
        client = self.conn.client
        try:
            for key, value in tags.items():
                client.set_model_version_tag(name, str(version), TAG_PREFIX + key, "" if value is None else str(value))
            client.set_registered_model_alias(name, alias, str(version))
        except self.conn.mlflow.exceptions.MlflowException as exc:
            raise MlflowPublishError(
                f"models:/{name}/{version}: recorded in the catalog (audit seq {tags.get('audit_seq')}) but MLflow "
                f"alias {alias!r} not set: {first_line(exc)}; re-run to publish") from exc

    def publish_promotion(self, report: Any) -> None:
        """The ``after_pass`` hook of ``governance.registry.promote``: tags, then the alias."""
        decision = dict(report.decision or {})
        if decision.get("action") != "promote":
            return
        policy = dict(report.document.get("policy") or {})
        mv_id = int(report.subject.model_version_id or 0)
        self._write(str(decision["model"]), int(decision["version"]), str(decision["stage"]), {
            "action": "promote", "gate": report.document.get("status"), "stage": decision["stage"],
            "policy": f"{policy.get('name')}@{policy.get('version')}", "policy_digest": policy.get("digest"),
            "evidence_digest": evidence_digest(self.catalog, mv_id), "evaluation_id": report.evaluation_id,
            "audit_seq": decision.get("audit_seq"), "actor": decision.get("actor"),
        })

    def publish_rollback(self, outcome: Rollback) -> None:
        """The ``after`` hook of ``governance.registry.rollback``: the alias goes back in MLflow too."""
        name, version = outcome.model, int(outcome.to_version or 0)
        with self.catalog.read() as session:
            _, mv = resolve_model_version(session, f"{name}@{version}")
            algo = mv.hash_algo
        if algo != TREE_ALGO:
            raise MlflowPublishError(f"{name}@{version}: rolled back in the catalog, but that version was not "
                                     "imported from MLflow; MLflow alias not set")
        self._write(name, version, outcome.stage, {
            "action": "rollback", "stage": outcome.stage, "audit_seq": outcome.audit_seq,
            "actor": outcome.actor, "reason": outcome.reason,
        })
