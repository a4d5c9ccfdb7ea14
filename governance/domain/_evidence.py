"""The evidence document: what ``governance.evaluate`` computed for a model version, typed and versioned.

Stored as JSON in ``Evidence.data`` (the shape below is the wire format, schema version 1)::

    {"schema": 1, "task": "classification" | "regression", "n": rows,
     "label": ..., "prediction": ..., "score": ..., "no_scores": why, "sensitive": [...], "features": [...],
     "confusion": {grouping: {"columns": [...], "groups": {group: [tn, fp, fn, tp]}}},
     "metrics": {"overall": {...}, "by_group": {grouping: {group: {...}}}, "calibration": {...}},
     "score_metrics": {"roc_auc": x, "log_loss": y},
     "importance": {"importance": {feature: mean|SHAP|}, "explainer": ..., "sample_size": n},
     "proxy_correlations": {protected: {feature: |r|}},
     "drift": {feature: {"psi": x, "ks": y}}, "data_quality": {"columns": {...}, "schema": {...}},
     "baseline_dataset_version_ids": [...], "data_fingerprint": {...}, "artifact_hash": digest, ...}

Every reader goes through :meth:`EvidenceDocument.read`, which checks the schema version: a document
written by a newer governance (a higher ``schema``) is refused with :class:`EvaluationError` rather
than half-read; a document without ``schema`` (built in memory, e.g. by the Spark engine) is the
current version.  Keys this version does not know are kept as they are (:attr:`EvidenceDocument.extra`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governance.errors import EvaluationError

__all__ = ["EVIDENCE_SCHEMA_VERSION", "EvidenceDocument", "Importance", "Metrics"]

#: The version this release writes and reads.  Bump it (and upgrade older documents in
#: :meth:`EvidenceDocument.read`) when a key changes meaning.
EVIDENCE_SCHEMA_VERSION = 1


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    def stored(self) -> dict[str, Any]:
        """The JSON-ready form (the keys that were given, under their stored names)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


class Metrics(_Part):
    """``metrics``: overall values, values per group of every grouping, and the calibration histogram."""

    overall: dict[str, Any] = Field(default_factory=dict)
    #: ``{grouping: {group label: {metric: value, "n": rows}}}``
    by_group: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    calibration: dict[str, Any] | None = None


class Importance(_Part):
    """``importance``: global feature importance (mean |SHAP|), the explainer and its sample size."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    by_feature: dict[str, float] = Field(default_factory=dict, alias="importance")
    explainer: str | None = None
    sample_size: int | None = None


class EvidenceDocument(_Part):
    """The evidence a gate reads when the raw data is gone (see the module docstring for the shape)."""

    schema_version: int = Field(default=EVIDENCE_SCHEMA_VERSION, alias="schema")
    task: Literal["classification", "regression"] | None = None
    n: int | None = None
    label: str | None = None
    prediction: str | None = None
    score: str | None = None
    no_scores: str | None = None
    sensitive: list[str] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)
    source_label: str | None = None
    engine: str | None = None
    confusion: dict[str, dict[str, Any]] | None = None
    metrics: Metrics | None = None
    score_metrics: dict[str, Any] | None = None
    score_bins: dict[str, Any] | None = None
    importance: Importance | None = None
    proxy_correlations: dict[str, dict[str, Any]] | None = None
    column_tags: dict[str, list[str]] | None = None
    drift: dict[str, dict[str, Any]] | None = None
    data_quality: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    baseline_dataset_version_ids: list[int] | None = None
    data_fingerprint: dict[str, Any] | None = None
    artifact_hash: str | None = None
    artifact: dict[str, Any] | None = None
    dataset: dict[str, Any] | None = None

    @classmethod
    def read(cls, data: Mapping[str, Any] | None, *, where: str = "evidence") -> EvidenceDocument:
        """A stored or in-memory document, its schema version checked; :class:`EvaluationError` when it
        is from a newer governance or not an evidence document."""
        body = dict(data or {})
        version = body.get("schema", EVIDENCE_SCHEMA_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise EvaluationError(f"{where}: schema {version!r} is not an evidence schema version; "
                                  "re-run governance.evaluate to record the evidence again")
        if version > EVIDENCE_SCHEMA_VERSION:
            raise EvaluationError(
                f"{where}: evidence schema {version} was written by a newer governance (this one reads up to "
                f"{EVIDENCE_SCHEMA_VERSION}); upgrade governance to gate on it")
        body["schema"] = version
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise EvaluationError(f"{where}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc

    @classmethod
    def merged(cls, documents: Iterable[EvidenceDocument]) -> EvidenceDocument:
        """Documents newest first as one: each key takes the value of the newest document that has it."""
        body: dict[str, Any] = {}
        for doc in documents:
            for key, value in doc.stored().items():
                body.setdefault(key, value)
        return cls.read(body)

    def replace(self, **changes: Any) -> EvidenceDocument:
        """A copy with ``changes`` (stored names or field names), validated."""
        body = self.stored()
        for key, value in changes.items():
            field = type(self).model_fields.get(key)
            body[(field.alias if field is not None and field.alias else key)] = (
                value.stored() if isinstance(value, _Part) else value)
        return type(self).read(body)

    def without(self, *keys: str) -> EvidenceDocument:
        """A copy without the named parts (what a newer measurement replaces)."""
        names = {(f.alias or k) if (f := type(self).model_fields.get(k)) else k for k in keys}
        return type(self).read({k: v for k, v in self.stored().items() if k not in names})

    def stored(self) -> dict[str, Any]:
        """The JSON-ready form, always with its ``schema`` version first."""
        body = super().stored()
        body.pop("schema", None)
        return {"schema": self.schema_version, **body}

    @property
    def extra(self) -> dict[str, Any]:
        """Keys this version does not define, as stored."""
        return dict(self.model_extra or {})

    def is_empty(self) -> bool:
        """No evidence at all (nothing but the schema version)."""
        return not (set(self.stored()) - {"schema"})
