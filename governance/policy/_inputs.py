"""Build check contexts: from a predictions table (data-only mode) or a model version's stored evidence."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import col, select

from governance.catalog import Catalog, Evidence, Ref, resolve_model_version
from governance.checks import CheckContext, empty_sensitive_columns, training_baseline
from governance.domain import EvidenceDocument
from governance.errors import InputError, NotFoundError

__all__ = [
    "context_for_frame",
    "context_for_model_version",
    "context_for_predictions",
    "read_table",
    "read_table_with_fingerprint",
]


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet file as a frame (by extension; ``.csv``, ``.tsv``, ``.parquet``, ``.pq``)."""
    return read_table_with_fingerprint(path)[0]


def read_table_with_fingerprint(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The frame and the fingerprint of exactly the bytes it was parsed from.

    The fingerprint is ``{"content_hash": "sha256:<hex>", "hash_algo": "sha256", "bytes": n,
    "rows": n}``: the file is read once, hashed and parsed from the same bytes, so the audit record
    names precisely the data that was evaluated.
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"predictions file {p}: no such file")
    suffix = p.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv", ".tsv", ".txt"):
        raise InputError(
            f"predictions file {p}: expected a .csv, .tsv or .parquet file, got {suffix or 'no extension'!r}"
        )
    try:
        raw = p.read_bytes()
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(io.BytesIO(raw))
        else:
            frame = pd.read_csv(io.BytesIO(raw), sep="\t" if suffix == ".tsv" else ",")
    except (OSError, ValueError) as exc:
        raise InputError(f"predictions file {p}: cannot read it: {exc}") from exc
    fingerprint = {
        "content_hash": "sha256:" + hashlib.sha256(raw).hexdigest(),
        "hash_algo": "sha256",
        "bytes": len(raw),
        "rows": len(frame),
    }
    return frame, fingerprint


DATA_ONLY_INAPPLICABLE = {
    "model_version": "a predictions table is not a registered model version",
    "catalog": "a predictions table has no catalog record (lineage, documentation, champion)",
    "estimator": "a predictions table has no model object",
    "importance": "a predictions table has no model to explain",
    "baseline": "a predictions table has no training baseline",
}
"""What a check can never get from a predictions table alone: checks needing only these are
NOT_APPLICABLE in data-only mode (a distinct status, not a pass and not a failure)."""


def hard_labels(values: Any) -> bool:
    """Whether a "score" column holds only 0 and 1: predicted labels, not probabilities."""
    distinct = pd.unique(pd.Series(values).dropna())
    return len(distinct) > 0 and set(pd.to_numeric(pd.Series(distinct), errors="coerce").tolist()) <= {0.0, 1.0}


def no_scores_reason(score: str) -> str:
    return (f"score column {score!r} holds only 0 and 1 (predicted labels, not probabilities): AUC, log loss "
            "and calibration need scores")


def context_for_frame(
    frame: pd.DataFrame,
    *,
    label: str,
    prediction: str,
    score: str | None = None,
    sensitive: Sequence[str] = (),
    source: str = "predictions table",
    features: pd.DataFrame | None = None,
) -> CheckContext:
    """A context over an in-memory predictions frame; missing columns are one :class:`InputError`."""
    wanted = [("label", label), ("prediction", prediction)]
    if score is not None:
        wanted.append(("score", score))
    wanted += [("sensitive", s) for s in sensitive]
    absent = [f"{role} column {name!r}" for role, name in wanted if name not in frame.columns]
    if absent:
        have = ", ".join(map(str, frame.columns)) or "(none)"
        raise InputError(f"{source}: no {'; no '.join(absent)}; columns are: {have}")
    empty = empty_sensitive_columns(frame, sensitive)
    if empty:
        raise InputError(f"{source}: sensitive column {empty[0]!r} has no values: every row is missing")
    inapplicable = dict(DATA_ONLY_INAPPLICABLE)
    if score is not None and hard_labels(frame[score]):
        inapplicable["scores"] = no_scores_reason(score)
        score = None
    return CheckContext(
        predictions=frame,
        label=label,
        prediction=prediction,
        score=score,
        sensitive=tuple(sensitive),
        features=features,
        subject={"predictions": source},
        sources={"predictions": source, "rows": len(frame)},
        inapplicable=inapplicable,
    )


def context_for_predictions(
    path: str | Path, *, label: str, prediction: str, score: str | None = None, sensitive: Sequence[str] = ()
) -> CheckContext:
    """Data-only mode: a CSV or Parquet table with label, prediction, score and sensitive columns.

    ``sources["predictions_fingerprint"]`` is the content hash of the file's bytes (see
    :func:`read_table_with_fingerprint`); stored evaluations keep it in their inputs.
    """
    frame, fingerprint = read_table_with_fingerprint(path)
    ctx = context_for_frame(
        frame, label=label, prediction=prediction, score=score, sensitive=sensitive, source=str(path)
    )
    ctx.subject = {"predictions": str(path)}
    ctx.sources["predictions_fingerprint"] = fingerprint
    return ctx


def merge_evidence(rows: Sequence[Evidence]) -> EvidenceDocument:
    """Evidence rows newest first as one document: a key takes the value of the newest document that has
    it.  Each row's schema version is checked (:class:`EvaluationError` for a newer one)."""
    return EvidenceDocument.merged(EvidenceDocument.read(r.data, where=f"evidence #{r.id}") for r in rows)


def evidence_digest(rows: Sequence[Evidence]) -> str:
    """``sha256:`` of the canonical JSON of the evidence rows a gate used (ids and documents): a changed
    byte, or evidence added later, gives another digest (and voids the approvals given on the old one)."""
    from governance.audit import canonical_json

    body = canonical_json([{"id": r.id, "data": r.data or {}} for r in rows])
    return "sha256:" + hashlib.sha256(body).hexdigest()


def bound_evidence(rows: Sequence[Evidence], artifact_hash: str | None) -> tuple[list[Evidence], list[Evidence]]:
    """``(used, refused)``: evidence computed from the version's own artifact, and the rest (evidence
    recorded for another artifact digest, or with none)."""
    used = [r for r in rows if artifact_hash and (r.data or {}).get("artifact_hash") == artifact_hash]
    return used, [r for r in rows if r not in used]


def context_for_model_version(catalog: Catalog, ref: Ref | str) -> CheckContext:
    """A context from the stored evidence of exactly that version (newest first); recomputes nothing.

    Only evidence recorded for the version's artifact digest is used; the ids of the rest are in
    ``sources["evidence_refused"]`` and the digest of what was used in ``sources["evidence_digest"]``.

    The training baseline (drift, schema) is resolved here from the version's training run: the column
    statistics of the run's input dataset versions (``ModelVersion.training_run_id`` -> ``RunIO`` input
    edges -> ``DatasetVersion.stats``); ``sources["baseline_dataset_version_ids"]`` names them.
    """
    with catalog.read() as session:
        model, mv = resolve_model_version(session, ref)
        stored = session.exec(
            select(Evidence).where(Evidence.model_version_id == mv.id).order_by(col(Evidence.id).desc())
        ).all()
        rows, refused = bound_evidence(stored, mv.artifact_hash)
        evidence = merge_evidence(rows)
        info = {
            "name": model.name,
            "model_id": model.id,
            "version": mv.version,
            "model_version_id": mv.id,
            "risk_tier": model.risk_tier,
            "description": model.description,
            "card": dict(mv.card or {}),
            "features": list(mv.features or []),
            "training_run_id": mv.training_run_id,
            "artifact_hash": mv.artifact_hash,
        }
        baseline, baseline_ids = training_baseline(session, mv.training_run_id)
        sources = {
            "evidence_ids": [r.id for r in rows],
            "evidence_refused": [r.id for r in refused],
            "evidence_refused_digests": [str((r.data or {}).get("artifact_hash") or "none") for r in refused],
            "evidence_digest": evidence_digest(rows),
            "dataset_version_ids": sorted({r.dataset_version_id for r in rows if r.dataset_version_id}),
            "baseline_dataset_version_ids": baseline_ids,
        }
    no_scores = evidence.no_scores
    return CheckContext(
        inapplicable={"scores": str(no_scores)} if no_scores else {},
        baseline=baseline,
        model=info,
        evidence=evidence,
        sensitive=tuple(evidence.sensitive),
        catalog=catalog.read,
        subject={"model": model.name, "version": mv.version},
        sources=sources,
    )
