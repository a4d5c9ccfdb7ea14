"""``governance.evaluate`` and ``gov check --engine spark`` on Spark: predictions made and evidence
computed on the cluster; only aggregates (and, for explanations, a bounded sample) reach the driver."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from governance.checks import CheckContext, global_importance, proxy_correlations
from governance.domain import EvidenceDocument
from governance.errors import EvaluationError, InputError
from governance.lineage import dataset_key
from governance.spark._evidence import DEFAULT_SCORE_BINS, data_evidence, predictions_evidence
from governance.spark._read import read_table
from governance.spark._session import active_session, require_pyspark

__all__ = ["evaluation_evidence", "identity_fingerprint", "spark_predictions_context"]

_PRED = "__gov_prediction"
_SCORE = "__gov_score"


def identity_fingerprint(df: Any) -> dict[str, Any]:
    """The evidence's ``data_fingerprint`` for a DataFrame: its version identity (a Delta snapshot, or
    plan and file fingerprints; see :mod:`governance.lineage._spark`), the same one capture records."""
    key = dataset_key(df, "input")
    return {
        "content_hash": key.content_hash,
        "hash_algo": key.hash_algo,
        "coverage": key.coverage,
        "dataset": None if key.name is None else {"namespace": key.namespace, "name": key.name},
        "identity": key.identity.to_dict(),
    }


def _with_predictions(df: Any, model: Any, names: list[str], keep: list[str], label: str, scored: bool) -> Any:
    """``df``'s ``keep`` columns plus the model's predictions (typed as the label) and scores."""
    from pyspark.sql.types import DoubleType, StructField, StructType

    base = df.select(*keep)
    fields = [*base.schema.fields, StructField(_PRED, base.schema[label].dataType)]
    if scored:
        fields.append(StructField(_SCORE, DoubleType()))

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            x = batch.loc[:, names]
            out = batch.copy()
            out[_PRED] = model.predict(x)
            if scored:
                out[_SCORE] = model.predict_proba(x)[:, 1]
            yield out

    return base.mapInPandas(predict, StructType(fields))


def _sample(df: Any, columns: list[str], rows: int, max_samples: int, seed: int) -> pd.DataFrame:
    """At most ``max_samples`` rows, drawn with ``seed`` on the cluster (for SHAP and proxy correlations)."""
    fraction = 1.0 if rows <= max_samples else min(1.0, 1.2 * max_samples / rows)
    part = df.select(*columns)
    if fraction < 1.0:
        part = part.sample(withReplacement=False, fraction=fraction, seed=seed)
    frame: pd.DataFrame = part.limit(max_samples).toArrow().to_pandas()
    return frame


def evaluation_evidence(
    model: Any,
    df: Any,
    *,
    label: str,
    sensitive: Sequence[str],
    names: list[str],
    baseline: dict[str, Any] | None,
    max_samples: int = 2000,
    seed: int = 0,
    score_bins: int = DEFAULT_SCORE_BINS,
) -> EvidenceDocument:
    """The evidence document of a classifier on a Spark DataFrame, in the pandas path's format (typed,
    as every evidence document crossing into policy).

    The model predicts on the executors (``mapInPandas``; it is shipped to them pickled, as Spark
    does with any Python function); confusion counts, metrics, score histograms, data quality and drift
    are cluster aggregates.  Global importance (SHAP) and proxy correlations use a seeded sample of at
    most ``max_samples`` rows, the only rows that reach the driver (the pandas path samples too).
    """
    require_pyspark()
    from sklearn.base import is_regressor

    if is_regressor(model):
        raise InputError("the Spark engine evaluates classifiers; collect a regressor's data to pandas")
    scored = hasattr(model, "predict_proba")
    keep = list(dict.fromkeys([*names, label, *sensitive]))
    try:
        predicted = _with_predictions(df, model, names, keep, label, scored)
        doc = predictions_evidence(
            predicted,
            label=label,
            prediction=_PRED,
            score=_SCORE if scored else None,
            sensitive=sensitive,
            score_bins=score_bins,
            score_range=(0.0, 1.0) if scored else None,
        )
    except (InputError, EvaluationError):
        raise
    except Exception as exc:  # a PythonException from the executors carries the model's error
        raise EvaluationError(
            f"the model could not predict on the evaluation data on Spark: {type(exc).__name__}: {exc}"
        ) from exc
    if scored:
        _check_probabilities(doc)
    sample = _sample(df, keep, int(doc["n"]), max_samples, seed)
    out: dict[str, Any] = {
        "schema": 1,
        "task": "classification",
        "n": doc["n"],
        "label": "label",
        "prediction": "prediction",
        "score": "score" if scored else None,
        "sensitive": list(sensitive),
        "features": names,
        "source_label": label,
        "engine": "spark",
        "confusion": doc["confusion"],
        "metrics": doc["metrics"],
    }
    if scored:
        out["score_metrics"] = doc["score_metrics"]
        out["score_bins"] = doc["score_bins"]
    out["importance"] = global_importance(model, sample.loc[:, names], max_samples=max_samples, seed=seed)
    out["proxy_correlations"] = proxy_correlations(sample, list(sensitive), [n for n in names if n not in sensitive])
    out.update(data_evidence(df, names, baseline))
    out["data_fingerprint"] = {**identity_fingerprint(df), "rows": doc["n"]}
    return EvidenceDocument.read(out)


def _check_probabilities(doc: dict[str, Any]) -> None:
    rng = doc.get("score_bins", {}).get("range")
    if rng and (rng[0] < 0.0 or rng[1] > 1.0):
        raise EvaluationError("predict_proba returned values outside [0, 1]")


def spark_predictions_context(
    path: str | Path,
    *,
    label: str,
    prediction: str,
    score: str | None = None,
    sensitive: Sequence[str] = (),
    baseline: dict[str, Any] | None = None,
    spark: Any = None,
    score_bins: int = DEFAULT_SCORE_BINS,
) -> CheckContext:
    """Data-only mode on Spark: a Parquet file/directory or a Delta table evaluated on the cluster.

    The context carries evidence (no frame), so the checks read the aggregates exactly as they read a
    model version's stored evidence.  With a ``baseline``, columns of the table it describes (other than
    label, prediction and score) are the features for data quality and drift.
    """
    session = spark if spark is not None else active_session()
    df = read_table(session, path)
    source = str(path)
    evidence = predictions_evidence(
        df, label=label, prediction=prediction, score=score, sensitive=sensitive, score_bins=score_bins, source=source
    )
    evidence.update(label=label, prediction=prediction, score=score, sensitive=list(sensitive), engine="spark")
    own = {label, prediction, *([score] if score else [])}
    known = set((baseline or {}).get("columns") or {})
    features = [c for c in df.columns if c not in own]
    has_features = bool(baseline) and any(c in known for c in features)
    if has_features:
        evidence.update(data_evidence(df, features, baseline))
    fingerprint = {**identity_fingerprint(df), "rows": evidence["n"]}
    evidence["data_fingerprint"] = fingerprint
    return CheckContext(
        evidence=EvidenceDocument.read(evidence),
        sensitive=tuple(sensitive),
        baseline=baseline,
        subject={"predictions": source},
        sources={"predictions": source, "rows": evidence["n"], "predictions_fingerprint": fingerprint,
                 "engine": "spark", "table_features": has_features},
    )
