"""``governance.evaluate``: compute and store the evidence a gate needs for one exact model version.

The evidence document (``Evidence.data``) holds everything the built-in checks read when the raw data
is gone::

    {"schema": 1, "task": "classification" | "regression", "n": rows,
     "label": ..., "prediction": ..., "score": ..., "sensitive": [...], "features": [...],
     "confusion": {grouping: {"columns": [...], "groups": {group: [tn, fp, fn, tp]}}},
     "metrics": {"overall": {...}, "by_group": {grouping: {group: {...}}}},
     "importance": {"importance": {feature: mean|SHAP|}, "explainer": ..., "sample_size": n},
     "proxy_correlations": {protected: {feature: |r|}},
     "drift": {feature: {"psi": x, "ks": y}}, "data_quality": {"columns": {...}, "schema": {...}},
     "baseline_dataset_version_ids": [...], "data_fingerprint": {...}}
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
from governance.checks import CheckContext, CheckRegistry, drift_statistics, empty_sensitive_columns, quality_summary
from governance.checks._explain import global_importance, proxy_correlations
from governance.checks._fairness import confusion_evidence
from governance.checks._performance import metrics_evidence
from governance.errors import EvaluationError, InputError
from governance.policy._engine import EvaluationResult, run_pack
from governance.policy._inputs import context_for_model_version, hard_labels
from governance.policy._loader import load_pack
from governance.policy._schema import PolicyPack
from governance.policy._store import store_evaluation

__all__ = ["EvidenceRecord", "evaluate"]


@dataclass
class EvidenceRecord:
    """What :func:`evaluate` computed and where it was stored."""

    data: dict[str, Any]
    evidence_id: int | None = None
    model_version_id: int | None = None
    dataset_version_id: int | None = None
    result: EvaluationResult | None = None
    evaluation_id: int | None = None
    predictions: pd.DataFrame | None = field(default=None, repr=False)


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
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Predict in memory and compute the evidence document (without drift and fingerprint)."""
    frame_x = data.loc[:, names]
    regression = _is_regressor(model)
    y_pred, score, no_scores = _predict(model, frame_x, regression)
    preds = pd.DataFrame({"label": data[label].to_numpy(), "prediction": y_pred}, index=data.index)
    if score is not None:
        preds["score"] = score
    for s in sensitive:
        preds[s] = data[s].to_numpy()
    score_col = "score" if score is not None else None
    doc: dict[str, Any] = {
        "schema": 1,
        "task": "regression" if regression else "classification",
        "n": len(data),
        "label": "label",
        "prediction": "prediction",
        "score": score_col,
        "no_scores": no_scores,
        "sensitive": list(sensitive),
        "features": names,
        "source_label": label,
    }
    if not regression:
        doc["confusion"] = confusion_evidence(preds, "label", "prediction", sensitive)
    doc["metrics"] = metrics_evidence(
        preds, "label", "prediction", score_col, sensitive, regression=regression
    )
    if score_col is not None:
        doc["score_metrics"] = {k: doc["metrics"]["overall"].get(k) for k in ("roc_auc", "log_loss")}
    doc["importance"] = global_importance(model, frame_x, max_samples=max_samples, seed=seed)
    doc["proxy_correlations"] = proxy_correlations(
        data, list(sensitive), [n for n in names if n not in sensitive]
    )
    doc["data_quality"] = quality_summary(frame_x, baseline)
    return preds, frame_x, doc


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

    spark = _is_spark(data)
    if label not in data.columns:
        raise InputError(
            f"evaluation data: no label column {label!r}; columns are: {', '.join(map(str, data.columns))}"
        )
    absent = [s for s in sensitive if s not in data.columns]
    if absent:
        raise InputError(
            f"evaluation data: no sensitive column(s) {', '.join(absent)}; columns are: "
            f"{', '.join(map(str, data.columns))}"
        )
    empty = [] if spark else empty_sensitive_columns(data, sensitive)
    if empty:
        raise InputError(f"evaluation data: sensitive column {empty[0]!r} has no values: every row is missing")
    names = _feature_names(model, data, label, sensitive, features)

    cat = catalog if (catalog is not None or model_ref is None) else open_catalog()
    model_ctx: CheckContext | None = None
    digest: str | None = None
    if model_ref is not None and cat is not None:
        model_ctx = context_for_model_version(cat, model_ref)
        digest = _bound_artifact(model, model_ctx) if artifact is None else _bound_files(artifact, model_ctx)
    baseline = model_ctx.baseline if model_ctx is not None else None
    baseline_ids = list(model_ctx.sources.get("baseline_dataset_version_ids") or []) if model_ctx else []

    if spark:
        from governance.spark import evaluation_evidence

        doc = evaluation_evidence(
            model, data, label=label, sensitive=list(sensitive), names=names, baseline=baseline,
            max_samples=max_samples, seed=seed,
        )
        preds: pd.DataFrame | None = None
        frame_x: pd.DataFrame | None = None
        score_col = doc["score"]
    else:
        preds, frame_x, doc = _pandas_evidence(model, data, label, sensitive, names, baseline, max_samples, seed)
        score_col = doc["score"]
        if baseline is not None:
            doc["drift"] = drift_statistics(frame_x, baseline)
        doc["data_fingerprint"] = _fingerprint(data)
    if baseline is not None:
        doc["baseline_dataset_version_ids"] = baseline_ids
    if digest is not None:
        doc["artifact_hash"] = digest
    if artifact is not None:
        doc["artifact"] = artifact
    record = EvidenceRecord(data=doc, predictions=preds)

    pack = (
        None
        if policy is None
        else (policy if isinstance(policy, PolicyPack) else load_pack(policy, registry=registry))
    )
    if pack is not None:
        ctx = CheckContext(
            predictions=preds,
            label="label",
            prediction="prediction",
            score=score_col,
            sensitive=tuple(sensitive),
            features=frame_x,
            estimator=model,
            evidence=doc,
            baseline=baseline,
            model=model_ctx.model if model_ctx else {},
            catalog=cat.read if (cat is not None and model_ctx is not None) else None,
            subject=model_ctx.subject if model_ctx else {"predictions": "in-memory data"},
        )
        record.result = run_pack(pack, ctx, registry=registry)

    if model_ctx is None or cat is None:
        return record
    who = resolve_actor(actor)
    mv_id = model_ctx.model["model_version_id"]
    with audited(cat, who) as tx:
        dv_id = None
        dv = None
        if dataset_ref is not None:
            _, dv = resolve_dataset_version(tx.session, dataset_ref)
        elif doc["data_fingerprint"].get("content_hash"):
            # the same bytes captured by a step (e.g. the evaluation step's input) are that dataset version
            query = (
                select(DatasetVersion)
                .where(DatasetVersion.content_hash == doc["data_fingerprint"]["content_hash"],
                       DatasetVersion.hash_algo == doc["data_fingerprint"].get("hash_algo"))
                .order_by(col(DatasetVersion.id).desc())
            )
            named = doc["data_fingerprint"].get("dataset")
            if named:  # a table version (e.g. Delta "3") is only unique within its table
                query = query.join(Dataset, col(Dataset.id) == DatasetVersion.dataset_id).where(
                    Dataset.namespace == named["namespace"], Dataset.name == named["name"])
            dv = tx.session.exec(query).first()
        if dv is not None:
            dv_id = dv.id
            if dv.content_hash:
                doc["dataset"] = {"id": dv.id, "version": dv.version, "content_hash": dv.content_hash}
        evidence = Evidence(
            model_version_id=mv_id, dataset_version_id=dv_id, kind="evaluation", data=doc, created_at=tx.time
        )
        tx.session.add(evidence)
        tx.session.flush()
        subject = f"model:{model_ctx.subject['model']}@{model_ctx.subject['version']}"
        tx.record(
            "evidence.record",
            subject,
            {
                "evidence_id": evidence.id,
                "dataset_version_id": dv_id,
                "rows": int(doc["n"]),
                "fingerprint": doc["data_fingerprint"].get("content_hash"),
                "artifact_hash": digest,
                "sensitive": list(sensitive),
                **({"artifact_digest": artifact["digest"]} if artifact is not None else {}),
            },
        )
        record.evidence_id, record.model_version_id, record.dataset_version_id = evidence.id, mv_id, dv_id
        if record.result is not None and pack is not None:
            stored = store_evaluation(
                tx,
                record.result,
                model_version_id=mv_id,
                purpose="check",
                inputs={
                    "evidence_id": evidence.id,
                    "dataset_version_id": dv_id,
                    "fingerprint": doc["data_fingerprint"].get("content_hash"),
                },
            )
            record.evaluation_id = stored.id
    return record
