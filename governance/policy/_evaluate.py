"""``governance.evaluate``: compute and store the evidence a gate needs for one exact model version.

The evidence document (``Evidence.data``) holds everything the built-in checks read when the raw data
is gone: a :class:`governance.domain.EvidenceDocument` (its module documents the shape and the schema
version).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import col, select

from governance.audit import audited, resolve_actor
from governance.catalog import Catalog, Dataset, DatasetVersion, Evidence, Ref, open_catalog, resolve_dataset_version
from governance.checks import (
    CheckContext,
    CheckRegistry,
    confusion_evidence,
    drift_statistics,
    empty_sensitive_columns,
    global_importance,
    metrics_evidence,
    proxy_correlations,
    quality_summary,
)
from governance.domain import EvidenceDocument
from governance.errors import EvaluationError, InputError
from governance.policy._engine import EvaluationResult, run_pack
from governance.policy._inputs import context_for_model_version, hard_labels
from governance.policy._loader import load_pack
from governance.policy._schema import PolicyPack
from governance.policy._store import store_evaluation

__all__ = ["EvidenceRecord", "evaluate"]


@dataclass
class EvidenceRecord:
    """What :func:`evaluate` computed (``document``) and where it was stored."""

    document: EvidenceDocument
    evidence_id: int | None = None
    model_version_id: int | None = None
    dataset_version_id: int | None = None
    result: EvaluationResult | None = None
    evaluation_id: int | None = None
    predictions: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def data(self) -> dict[str, Any]:
        """The document as stored in ``Evidence.data`` (JSON-ready)."""
        return self.document.stored()


def _predict(model: Any, frame_x: pd.DataFrame, regression: bool) -> tuple[Any, Any, str | None]:
    """Predicted labels, the positive class's probability (or None) and why there is none.

    A ``predict_proba`` that returns only 0 and 1 gives predicted labels, not scores: AUC and log loss
    computed from it would only restate balanced accuracy and punish confidence the model never had,
    so the evidence records that the model has no scores instead.
    """
    try:
        y_pred = np.asarray(model.predict(frame_x))
        if regression:
            return y_pred, None, None
        if not hasattr(model, "predict_proba"):
            return y_pred, None, (f"{type(model).__name__} has no predict_proba: AUC, log loss and calibration "
                                  "need scores")
        proba = np.asarray(model.predict_proba(frame_x))
    except Exception as exc:
        raise EvaluationError(
            f"the model could not predict on the evaluation data: {type(exc).__name__}: {exc}"
        ) from exc
    if proba.ndim != 2 or proba.shape[1] != 2:
        return y_pred, None, "predict_proba does not give two-class probabilities: AUC and log loss need them"
    score = proba[:, 1]
    if hard_labels(score):
        return y_pred, None, (f"{type(model).__name__}.predict_proba returns only 0 and 1 (predicted labels, not "
                              "probabilities): AUC, log loss and calibration need scores")
    return y_pred, score, None


def _fingerprint(frame: pd.DataFrame) -> dict[str, Any]:
    """The evaluation data's full-content fingerprint (the same one capture records)."""
    from governance.lineage import fingerprint

    fp = fingerprint(frame)
    return {
        "content_hash": fp.hash,
        "hash_algo": fp.algo,
        "coverage": fp.coverage,
        "schema_hash": fp.schema_hash,
        "rows": fp.row_count,
    }


def _is_regressor(model: Any) -> bool:
    from sklearn.base import is_regressor

    return bool(is_regressor(model))


def _feature_names(
    model: Any, data: pd.DataFrame, label: str, sensitive: Sequence[str], features: Sequence[str] | None
) -> list[str]:
    if features is not None:
        names = list(features)
    elif hasattr(model, "feature_names_in_"):
        names = [str(c) for c in model.feature_names_in_]
    else:
        names = [str(c) for c in data.columns if c != label and c not in sensitive]
    absent = [c for c in names if c not in data.columns]
    if absent:
        raise InputError(
            f"evaluation data: no feature column(s) {', '.join(absent)}; columns are: "
            f"{', '.join(map(str, data.columns))}"
        )
    return names


def _bound_artifact(model: Any, ctx: CheckContext) -> str:
    """The artifact digest of ``model``, which must be the one recorded for the version evaluated."""
    from governance.lineage import artifact_digest

    label = f"{ctx.subject.get('model')}@{ctx.subject.get('version')}"
    recorded = ctx.model.get("artifact_hash")
    if not recorded:
        raise InputError(f"model_ref {label}: the version has no artifact digest, so evidence cannot be bound "
                         "to it; register it through a decorated training step")
    try:
        actual = artifact_digest(model)
    except Exception as exc:
        raise InputError(f"model: cannot compute its artifact digest: {type(exc).__name__}: {exc}") from exc
    if actual != recorded:
        raise InputError(f"model_ref {label}: the model object is not that version (artifact digest "
                         f"{actual[:16]}..., version {recorded[:16]}...); evaluate the version's own model")
    return actual


def _bound_files(artifact: dict[str, Any], ctx: CheckContext) -> str:
    """A model loaded from a registry (``models:/``) is bound by the digest of the files it was loaded
    from, which must be the digest recorded for the version (the object's own digest would differ:
    a deserialised model is not the bytes that were registered)."""
    recorded = ctx.model.get("artifact_hash")
    if not recorded or artifact.get("digest") != recorded:
        label = f"{ctx.model.get('name')}@{ctx.model.get('version')}"
        raise InputError(f"model_ref {label}: the loaded files (digest {str(artifact.get('digest'))[:16]}...) are "
                         f"not the version's artifact ({str(recorded)[:16]}...)")
    return str(recorded)


def _is_spark(data: Any) -> bool:
    from governance.lineage import is_spark_frame

    return is_spark_frame(data)


def _pandas_evidence(
    model: Any, data: pd.DataFrame, label: str, sensitive: Sequence[str], names: list[str],
    baseline: dict[str, Any] | None, max_samples: int, seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, EvidenceDocument]:
    """Predict in memory and compute the evidence document (drift and fingerprint included)."""
    frame_x = data.loc[:, names]
    regression = _is_regressor(model)
    y_pred, score, no_scores = _predict(model, frame_x, regression)
    preds = pd.DataFrame({"label": data[label].to_numpy(), "prediction": y_pred}, index=data.index)
    if score is not None:
        preds["score"] = score
    for s in sensitive:
        preds[s] = data[s].to_numpy()
    score_col = "score" if score is not None else None
    metrics = metrics_evidence(preds, "label", "prediction", score_col, sensitive, regression=regression)
    doc: dict[str, Any] = {
        "schema": 1, "task": "regression" if regression else "classification", "n": len(data),
        "label": "label", "prediction": "prediction", "score": score_col, "no_scores": no_scores,
        "sensitive": list(sensitive), "features": names, "source_label": label,
    }
    if not regression:
        doc["confusion"] = confusion_evidence(preds, "label", "prediction", sensitive)
    doc["metrics"] = metrics
    if score_col is not None:
        doc["score_metrics"] = {k: metrics["overall"].get(k) for k in ("roc_auc", "log_loss")}
    doc["importance"] = global_importance(model, frame_x, max_samples=max_samples, seed=seed)
    doc["proxy_correlations"] = proxy_correlations(data, list(sensitive), [n for n in names if n not in sensitive])
    doc["data_quality"] = quality_summary(frame_x, baseline)
    if baseline is not None:
        doc["drift"] = drift_statistics(frame_x, baseline)
    doc["data_fingerprint"] = _fingerprint(data)
    return preds, frame_x, EvidenceDocument.read(doc)


def _check_columns(data: Any, label: str, sensitive: Sequence[str], spark: bool) -> None:
    """The label and every sensitive column exist, and no sensitive column is empty."""
    columns = ", ".join(map(str, data.columns))
    if label not in data.columns:
        raise InputError(f"evaluation data: no label column {label!r}; columns are: {columns}")
    absent = [s for s in sensitive if s not in data.columns]
    if absent:
        raise InputError(f"evaluation data: no sensitive column(s) {', '.join(absent)}; columns are: {columns}")
    empty = [] if spark else empty_sensitive_columns(data, sensitive)
    if empty:
        raise InputError(f"evaluation data: sensitive column {empty[0]!r} has no values: every row is missing")


@dataclass
class _Subject:
    """The model version evaluated (None: in-memory only) and the catalog it lives in."""

    catalog: Catalog | None
    context: CheckContext | None = None
    digest: str | None = None
    artifact: dict[str, Any] | None = None


def _subject(model: Any, model_ref: Ref | str | None, catalog: Catalog | None,
             artifact: dict[str, Any] | None) -> _Subject:
    cat = catalog if (catalog is not None or model_ref is None) else open_catalog()
    if model_ref is None or cat is None:
        return _Subject(cat, artifact=artifact)
    ctx = context_for_model_version(cat, model_ref)
    digest = _bound_artifact(model, ctx) if artifact is None else _bound_files(artifact, ctx)
    return _Subject(cat, ctx, digest, artifact)


def _compute(model: Any, data: Any, label: str, sensitive: Sequence[str], names: list[str], subject: _Subject,
             max_samples: int, seed: int) -> tuple[EvidenceDocument, pd.DataFrame | None, pd.DataFrame | None]:
    """The evidence document, the predictions and the feature frame (None on Spark)."""
    ctx = subject.context
    baseline = ctx.baseline if ctx is not None else None
    if _is_spark(data):
        from governance.spark import evaluation_evidence

        doc = evaluation_evidence(model, data, label=label, sensitive=list(sensitive), names=names,
                                  baseline=baseline, max_samples=max_samples, seed=seed)
        preds: pd.DataFrame | None = None
        frame_x: pd.DataFrame | None = None
    else:
        preds, frame_x, doc = _pandas_evidence(model, data, label, sensitive, names, baseline, max_samples, seed)
    extra: dict[str, Any] = {}
    if baseline is not None and ctx is not None:
        extra["baseline_dataset_version_ids"] = list(ctx.sources.get("baseline_dataset_version_ids") or [])
    if subject.digest is not None:
        extra["artifact_hash"] = subject.digest
    if subject.artifact is not None:
        extra["artifact"] = subject.artifact
    return (doc.replace(**extra) if extra else doc), preds, frame_x


def _run_policy(policy: PolicyPack | str | Path, registry: CheckRegistry | None, record: EvidenceRecord,
                model: Any, frame_x: pd.DataFrame | None, sensitive: Sequence[str],
                subject: _Subject) -> tuple[PolicyPack, EvaluationResult]:
    pack = policy if isinstance(policy, PolicyPack) else load_pack(policy, registry=registry)
    ctx = subject.context
    check_ctx = CheckContext(
        predictions=record.predictions, label="label", prediction="prediction", score=record.document.score,
        sensitive=tuple(sensitive), features=frame_x, estimator=model, evidence=record.document,
        baseline=ctx.baseline if ctx is not None else None, model=ctx.model if ctx else {},
        catalog=subject.catalog.read if (subject.catalog is not None and ctx is not None) else None,
        subject=ctx.subject if ctx else {"predictions": "in-memory data"},
    )
    return pack, run_pack(pack, check_ctx, registry=registry)


def _evaluation_dataset(session: Any, doc: EvidenceDocument, dataset_ref: Ref | str | None) -> DatasetVersion | None:
    """The dataset version evaluated: the one named, else the captured version with the same bytes."""
    if dataset_ref is not None:
        return resolve_dataset_version(session, dataset_ref)[1]
    fingerprint = doc.data_fingerprint or {}
    if not fingerprint.get("content_hash"):
        return None
    query = (
        select(DatasetVersion)
        .where(DatasetVersion.content_hash == fingerprint["content_hash"],
               DatasetVersion.hash_algo == fingerprint.get("hash_algo"))
        .order_by(col(DatasetVersion.id).desc())
    )
    named = fingerprint.get("dataset")
    if named:  # a table version (e.g. Delta "3") is only unique within its table
        query = query.join(Dataset, col(Dataset.id) == DatasetVersion.dataset_id).where(
            Dataset.namespace == named["namespace"], Dataset.name == named["name"])
    found: DatasetVersion | None = session.exec(query).first()
    return found


def _store(record: EvidenceRecord, subject: _Subject, actor: str | None, dataset_ref: Ref | str | None,
           sensitive: Sequence[str], pack: PolicyPack | None) -> None:
    """Store the evidence (audited ``evidence.record``) and the evaluation when a pack was run."""
    ctx, cat = subject.context, subject.catalog
    if ctx is None or cat is None:
        return
    mv_id = ctx.model["model_version_id"]
    with audited(cat, resolve_actor(actor)) as tx:
        dv = _evaluation_dataset(tx.session, record.document, dataset_ref)
        dv_id = dv.id if dv is not None else None
        if dv is not None and dv.content_hash:
            record.document = record.document.replace(
                dataset={"id": dv.id, "version": dv.version, "content_hash": dv.content_hash})
        doc = record.document
        fingerprint = (doc.data_fingerprint or {}).get("content_hash")
        evidence = Evidence(model_version_id=mv_id, dataset_version_id=dv_id, kind="evaluation", data=doc.stored(),
                            created_at=tx.time)
        tx.session.add(evidence)
        tx.session.flush()
        tx.record("evidence.record", f"model:{ctx.subject['model']}@{ctx.subject['version']}", {
            "evidence_id": evidence.id, "dataset_version_id": dv_id, "rows": int(doc.n or 0),
            "fingerprint": fingerprint, "artifact_hash": subject.digest, "sensitive": list(sensitive),
            **({"artifact_digest": subject.artifact["digest"]} if subject.artifact is not None else {}),
        })
        record.evidence_id, record.model_version_id, record.dataset_version_id = evidence.id, mv_id, dv_id
        if record.result is not None and pack is not None:
            stored = store_evaluation(tx, record.result, model_version_id=mv_id, purpose="check", inputs={
                "evidence_id": evidence.id, "dataset_version_id": dv_id, "fingerprint": fingerprint})
            record.evaluation_id = stored.id


def evaluate(
    model: Any,
    data: Any,
    *,
    label: str,
    sensitive: Sequence[str],
    model_ref: Ref | str | None = None,
    features: Sequence[str] | None = None,
    policy: PolicyPack | str | Path | None = None,
    catalog: Catalog | None = None,
    actor: str | None = None,
    dataset_ref: Ref | str | None = None,
    max_samples: int = 2000,
    seed: int = 0,
    registry: CheckRegistry | None = None,
    tracking_uri: str | None = None,
) -> EvidenceRecord:
    """Predict on ``data``, compute every piece of evidence the built-in checks need, store it.

    With ``model_ref`` the evidence is stored for that exact model version (audited ``evidence.record``),
    after checking that ``model`` is that version's artifact (same digest; :class:`InputError` otherwise),
    and records the digest
    and linked to the evaluation dataset version (``dataset_ref``; otherwise its fingerprint is recorded);
    with ``policy`` the pack is also run and its evaluation stored.

    ``model`` may be an MLflow model URI (``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``, on
    ``tracking_uri`` or ``MLFLOW_TRACKING_URI``): it is loaded through ``mlflow.pyfunc``, the evidence
    is stored for that imported version and records its artifact digest (``data["artifact"]``).

    ``data`` is a pandas DataFrame, or a Spark DataFrame: then the model predicts on the executors and
    every count is a cluster aggregate (:func:`governance.spark.evaluation_evidence`; needs the
    ``spark`` extra); the data fingerprint is the DataFrame's version identity (a Delta snapshot, or
    its plan and source files), the one ``@step`` records for it.
    """
    artifact: dict[str, Any] | None = None
    if isinstance(model, str):
        from governance.mlflow import load_registered_model

        if model_ref is not None:
            raise InputError("model_ref: not with a models:/ URI, which names the version itself")
        catalog = catalog if catalog is not None else open_catalog()
        loaded = load_registered_model(model, catalog, tracking_uri=tracking_uri)
        model, model_ref, artifact = loaded.model, loaded.ref, loaded.artifact
    _check_columns(data, label, sensitive, _is_spark(data))
    names = _feature_names(model, data, label, sensitive, features)
    subject = _subject(model, model_ref, catalog, artifact)
    doc, preds, frame_x = _compute(model, data, label, sensitive, names, subject, max_samples, seed)
    record = EvidenceRecord(document=doc, predictions=preds)
    pack = None
    if policy is not None:
        pack, record.result = _run_policy(policy, registry, record, model, frame_x, sensitive, subject)
    _store(record, subject, actor, dataset_ref, sensitive, pack)
    return record
