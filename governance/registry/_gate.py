"""The gate: evaluate a policy pack against a model version's stored evidence or a predictions table.

:func:`check` evaluates and (for a model version) stores the evaluation, audited, without promoting.
The same evaluation backs :func:`governance.registry.promote` and :func:`governance.registry.monitor`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.audit import AuditedTransaction, audited, require_bound
from governance.catalog import Catalog, parse_ref, resolve_model_version
from governance.domain import EvidenceDocument, as_utc
from governance.errors import InputError
from governance.registry._common import resolve_catalog, resolve_who
from governance.registry._verdict import exit_code
from governance.registry._waivers import waiver_verdicts, waivers_for

if TYPE_CHECKING:  # pragma: no cover
    from governance.catalog import Ref
    from governance.checks import CheckContext
    from governance.policy import EvaluationResult, PolicyPack

__all__ = ["GateReport", "Subject", "check", "evaluate_subject", "load_policy", "pack_applicability", "store"]


@dataclass(frozen=True)
class PredictionsSpec:
    """A predictions table given on the command line."""

    path: Path
    label: str
    prediction: str
    score: str | None = None
    sensitive: tuple[str, ...] = ()
    engine: str = "pandas"

    def as_inputs(self) -> dict[str, Any]:
        out = {"predictions": str(self.path), "label": self.label, "prediction": self.prediction,
               "score": self.score, "sensitive": list(self.sensitive)}
        if self.engine != "pandas":
            out["engine"] = self.engine
        return out


ENGINES = ("pandas", "spark")


def predictions_spec(predictions: str | Path | None, label: str | None, prediction: str | None,
                     score: str | None, sensitive: Sequence[str] | str | None,
                     engine: str = "pandas") -> PredictionsSpec | None:
    """Validate the ``--predictions`` option group (all-or-nothing for label and prediction).

    ``engine="spark"`` evaluates the table on Spark (a Parquet file or directory, or a Delta table)."""
    if engine not in ENGINES:
        raise InputError(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if isinstance(sensitive, str):
        sensitive = sensitive.split(",")
    columns = tuple(s.strip() for s in (sensitive or ()) if s.strip())
    if predictions is None:
        extra = [n for n, v in (("--label", label), ("--prediction", prediction), ("--score", score)) if v]
        if extra or columns:
            raise InputError(f"{(extra or ['--sensitive'])[0]}: only meaningful with --predictions FILE")
        if engine != "pandas":
            raise InputError("--engine: only meaningful with --predictions PATH")
        return None
    path = Path(predictions)
    if engine == "spark":
        if not path.exists():
            raise InputError(f"--predictions: no such file or directory {path}")
    elif not path.is_file():
        raise InputError(f"--predictions: no such file {path}")
    if not label or not prediction:
        raise InputError("--predictions: also give --label COL and --prediction COL")
    return PredictionsSpec(path, label, prediction, score, columns, engine)


@dataclass(frozen=True)
class Subject:
    """What is evaluated: a model version (ids resolved), a predictions table, or both."""

    model: str | None = None
    version: int | None = None
    model_id: int | None = None
    model_version_id: int | None = None
    predictions: PredictionsSpec | None = None
    risk_tier: str | None = None

    @property
    def label(self) -> str:
        if self.model is not None:
            return f"{self.model}@{self.version}"
        return f"predictions {self.predictions.path}" if self.predictions else "-"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.model is not None:
            out.update(model=self.model, version=self.version)
        if self.predictions is not None:
            out.update(predictions=str(self.predictions.path))
        return out


@dataclass
class GateReport:
    """The outcome of one gate evaluation (and, for promotions, the decision)."""

    document: dict[str, Any]
    subject: Subject
    policy_path: Path | None = None
    evaluation_id: int | None = None
    decision: dict[str, Any] | None = None
    result: Any = field(default=None, repr=False)

    def exit_code(self, *, fail_on_warn: bool = False) -> int:
        """0 passed; 1 blocked (or warnings with ``fail_on_warn``); 3 could not be evaluated."""
        code = exit_code(self.document, fail_on_warn=fail_on_warn)
        if self.decision is not None and self.decision.get("action") != "promote" and code == 0:
            return 1
        return code

    def missing_evidence(self) -> str | None:
        """What a model version's stored evidence lacks for this pack, and how to record it (or None)."""
        return missing_evidence(self.document, self.subject)

    @property
    def passed(self) -> bool:
        return self.exit_code() == 0

    def output_document(self) -> dict[str, Any]:
        """The contract document, plus ``evaluation_id`` and the promotion decision when there is one."""
        doc = dict(self.document)
        if self.evaluation_id is not None:
            doc["evaluation_id"] = self.evaluation_id
        if self.decision is not None:
            doc["promotion"] = self.decision
        return doc


def missing_evidence(document: dict[str, Any], subject: Subject) -> str | None:
    """One line naming the checks that were not run for lack of inputs, and what would provide them."""
    lacking = [f"{r.get('id')} ({str(r.get('message', '')).removeprefix('missing required input(s): ')})"
               for r in document.get("results", []) if r.get("status") == "NOT_RUN"]
    if not lacking:
        return None
    where = (f"the evidence recorded for {subject.label}" if subject.model is not None
             else "the predictions table")
    fix = ("record it with governance.evaluate(model, data, model_ref=..., label=..., sensitive=[...]) "
           "in the "
           "pipeline, or pass --predictions FILE --label COL --prediction COL"
           if subject.model is not None and subject.predictions is None else "add the missing columns/inputs")
    return f"{where} lacks what these checks need: {', '.join(lacking)}; {fix}"


def load_policy(policy: str | Path | PolicyPack) -> tuple[PolicyPack, Path | None]:
    """The pack and the file it came from (for SARIF locations and annotations)."""
    from governance.policy import PolicyPack, load_pack

    pack = policy if isinstance(policy, PolicyPack) else load_pack(str(policy))
    source = None
    for attr in ("path", "source", "source_path"):
        value = getattr(pack, attr, None)
        if isinstance(value, (str, Path)) and Path(value).is_file():
            source = Path(value)
            break
    if source is None and isinstance(policy, (str, Path)) and Path(policy).is_file():
        source = Path(policy)
    return pack, source


def resolve_subject(catalog: Catalog, ref: str | Ref | None, predictions: PredictionsSpec | None) -> Subject:
    """Resolve ``MODEL@VERSION`` (alias or number) to ids, pinned for the rest of the gate."""
    if ref is None:
        if predictions is None:
            raise InputError("give MODEL@VERSION or --predictions FILE --label COL --prediction COL")
        return Subject(predictions=predictions)
    with catalog.read() as session:
        model, mv = resolve_model_version(session, parse_ref(ref))
    return Subject(model.name, mv.version, model.id, mv.id, predictions, model.risk_tier)


def pack_applicability(pack: PolicyPack, subject: Subject, *, force: bool = False) -> dict[str, Any]:
    """Refuse a pack whose ``appliesTo.riskTier`` leaves out the model's risk tier, unless ``force``.

    A pack without ``appliesTo.riskTier`` applies to every model; a model without a risk tier, or a
    predictions table alone, cannot be out of scope.  Returns what to record with the evaluation when
    ``force`` overrode a mismatch (``{}`` otherwise).
    """
    tiers = list(pack.applies_to.risk_tier)
    if not tiers or subject.model is None or subject.risk_tier is None or subject.risk_tier in tiers:
        return {}
    if not force:
        raise InputError(
            f"policy pack {pack.name} {pack.version} applies to risk tiers {', '.join(tiers)}, but "
            f"{subject.model} is risk tier {subject.risk_tier}; use a pack for that tier or pass --force"
        )
    return {"applies_to_override": {"risk_tier": subject.risk_tier, "pack_tiers": tiers}}


def _context(catalog: Catalog, subject: Subject, *, monitoring: bool = False,
             features: Path | None = None) -> CheckContext:
    from governance.policy import context_for_model_version

    spec = subject.predictions
    if subject.model is None:
        if spec is None:
            raise InputError("give MODEL@VERSION or --predictions FILE --label COL --prediction COL")
        return _predictions_context(spec)
    ctx = context_for_model_version(catalog, f"{subject.model}@{subject.version}")
    if spec is not None and spec.engine == "spark":
        if monitoring:
            raise InputError("--engine spark: monitoring reads the table with pandas; use gov check")
        return _spark_context(ctx, spec)
    data_ctx = None if spec is None else _predictions_context(spec)
    refused = list(ctx.sources.get("evidence_refused") or [])
    if refused and not ctx.sources.get("evidence_ids") and not monitoring and data_ctx is None:
        digests = ", ".join(str(d)[:16] for d in ctx.sources.get("evidence_refused_digests") or [])
        raise InputError(
            f"{subject.label}: evidence {', '.join(map(str, refused))} was not computed from this version's "
            f"artifact (evidence digest {digests}, version {str(ctx.model.get('artifact_hash') or 'none')[:16]}); "
            "the gate refuses it: re-run governance.evaluate(model, data, model_ref=...) with the version's model")
    if monitoring:
        return _monitoring_context(ctx, data_ctx, features)
    if data_ctx is None:
        return ctx
    evidence = ctx.evidence.without(*_MEASURED_ON_PREDICTIONS)
    table_features = _table_features(data_ctx, ctx.baseline)
    if table_features is not None:  # the table carries feature columns: drift/quality are measured on it
        evidence = evidence.without(*_MEASURED_ON_FEATURES)
    return dataclasses.replace(
        ctx, evidence=evidence, predictions=data_ctx.predictions, label=data_ctx.label,
        prediction=data_ctx.prediction, score=data_ctx.score, sensitive=data_ctx.sensitive,
        features=table_features if table_features is not None else ctx.features,
        sources={**ctx.sources, **data_ctx.sources}, inapplicable=_table_inapplicable(data_ctx),
    )


def _table_inapplicable(data_ctx: CheckContext) -> dict[str, str]:
    """What stays out of reach when a model version is gated on a table: only the table's own lack of
    scores (the version itself is registered, so nothing else is inapplicable)."""
    return {k: v for k, v in data_ctx.inapplicable.items() if k == "scores"}


def _spark_context(ctx: CheckContext, spec: PredictionsSpec) -> CheckContext:
    """The model version's context with what the table measures replaced by Spark aggregates."""
    data_ctx = _predictions_context(spec, baseline=ctx.baseline)
    drop = set(_MEASURED_ON_PREDICTIONS)
    if data_ctx.sources.get("table_features"):
        drop.update(_MEASURED_ON_FEATURES)
    measured = data_ctx.evidence.stored()
    measured.pop("schema", None)
    evidence = ctx.evidence.without(*drop).replace(**measured)
    return dataclasses.replace(ctx, evidence=evidence, sensitive=data_ctx.sensitive,
                               sources={**ctx.sources, **data_ctx.sources})


_MEASURED_ON_PREDICTIONS = ("confusion", "score_metrics", "metrics", "label", "prediction", "score")
_MEASURED_ON_FEATURES = ("drift", "data_quality")


def _table_features(data_ctx: CheckContext, baseline: dict[str, Any] | None) -> Any:
    """The predictions table without its label/prediction/score columns, when it has a column the
    training baseline describes (else None: the table holds no features to compare)."""
    frame = data_ctx.predictions
    if frame is None or not baseline:
        return None
    own = {c for c in (data_ctx.label, data_ctx.prediction, data_ctx.score) if c}
    rest = [c for c in frame.columns if c not in own]
    known = set(baseline.get("columns") or {})
    if not any(str(c) in known for c in rest):
        return None
    return frame.loc[:, rest]


def _monitoring_context(ctx: CheckContext, data_ctx: CheckContext | None,
                        features: Path | None) -> CheckContext:
    """Production data replaces everything evaluation measured; only the training baseline stays.

    The baseline is the one :func:`governance.policy.context_for_model_version` resolved from the
    training run's input dataset statistics; without one the drift checks are NOT_RUN and the gate
    fails closed.
    """
    from governance.policy import read_table_with_fingerprint

    evidence = EvidenceDocument()
    stored = ctx.evidence.baseline
    ctx = dataclasses.replace(ctx, baseline=ctx.baseline or (dict(stored) if stored else None))
    if data_ctx is None:
        if features is None:
            return dataclasses.replace(ctx, evidence=evidence, features=None, sensitive=())
        frame, fingerprint = read_table_with_fingerprint(features)
        return dataclasses.replace(ctx, evidence=evidence, features=frame, sensitive=(),
                                   sources={**ctx.sources, "data": str(features), "data_fingerprint": fingerprint})
    frame = data_ctx.predictions
    if frame is not None:
        own = {c for c in (data_ctx.label, data_ctx.prediction, data_ctx.score) if c}
        frame = frame.drop(columns=[c for c in frame.columns if c in own])
    return dataclasses.replace(
        ctx, evidence=evidence, predictions=data_ctx.predictions, label=data_ctx.label,
        prediction=data_ctx.prediction, score=data_ctx.score, sensitive=data_ctx.sensitive, features=frame,
        sources={**ctx.sources, **data_ctx.sources}, inapplicable=_table_inapplicable(data_ctx),
    )


def _waiver_infos(catalog: Catalog, subject: Subject, pack: PolicyPack,
                  now: datetime | None) -> tuple[list[Any], list[dict[str, Any]]]:
    """The waivers that count (both signatures verified, or unsigned under ``signatures: optional``),
    and the ones that do not, with why."""
    from governance.policy import WaiverInfo
    from governance.registry._signoff import Signoff

    if subject.model_id is None:
        return [], []
    signoff = Signoff.load(now)
    with catalog.read() as session:
        rows = waivers_for(session, subject.model_id, subject.version)
        verdicts = waiver_verdicts(session, rows, signoff, optional=pack.signatures == "optional")
    counted, ignored = [], []
    for w in rows:
        verdict = verdicts[int(w.id or 0)]
        if verdict.counts:
            counted.append(WaiverInfo(
                id=int(w.id or 0), check_id=w.check_id, expires_at=as_utc(w.expires_at),
                revoked_at=None if w.revoked_at is None else as_utc(w.revoked_at),
                approver=verdict.approver_label, reason=w.reason, ticket=w.ticket,
                requester=verdict.requester_label))
        else:
            ignored.append({"id": w.id, "check": w.check_id, "reason": verdict.reason})
    return counted, ignored


def bound_rows(catalog: Catalog, ctx: Any, waiver_ids: Sequence[int]) -> dict[str, list[int | None]]:
    """The rows a model version's gate decides from (``{table: ids}``): the model, the version, the
    evidence used, the training run with its input edges, their dataset versions and datasets (the
    lineage check and the drift baseline read them), the waivers that count and their signed
    statements.  Each must match the audit log (:func:`governance.audit.require_bound`)."""
    from sqlmodel import col, select

    from governance.catalog import DatasetVersion, RunIO, SignedStatement

    model = ctx.model
    run_id = model.get("training_run_id")
    wanted: dict[str, list[int | None]] = {
        "model": [model.get("model_id")], "model_version": [model.get("model_version_id")],
        "evidence": list(ctx.sources.get("evidence_ids") or []),
        "run": [run_id], "run_io": [], "dataset": [],
        "dataset_version": list(ctx.sources.get("baseline_dataset_version_ids") or []),
        "waiver": list(waiver_ids), "signed_statement": [],
    }
    with catalog.read() as session:
        if run_id is not None:
            edges = session.exec(select(RunIO.id, RunIO.artifact_id).where(
                RunIO.run_id == run_id, RunIO.direction == "input", RunIO.artifact_kind == "dataset")).all()
            wanted["run_io"] = [e[0] for e in edges]
            versions = [int(e[1]) for e in edges]
            wanted["dataset_version"] += versions
            wanted["dataset"] = list(session.exec(select(DatasetVersion.dataset_id).where(
                col(DatasetVersion.id).in_(versions))).all()) if versions else []
        if waiver_ids:
            wanted["signed_statement"] = list(session.exec(select(SignedStatement.id).where(
                col(SignedStatement.kind).in_(("waiver.request", "waiver.approval")),
                col(SignedStatement.target_id).in_(list(waiver_ids)))).all())
    return wanted


def evaluate_subject(catalog: Catalog, subject: Subject, pack: PolicyPack, *, now: datetime | None = None,
                     monitoring: bool = False, features: Path | None = None
                     ) -> tuple[EvaluationResult, dict[str, Any]]:
    """Run the pack against the subject's evidence with its waivers; the result and its document."""
    from governance.policy import run_pack

    ctx = _context(catalog, subject, monitoring=monitoring, features=features)
    waivers, ignored = _waiver_infos(catalog, subject, pack, now)
    if subject.model is not None:  # every waiver read, counted or not: a forged row fails the gate closed
        waiver_ids = [w.id for w in waivers] + [int(i["id"]) for i in ignored if i.get("id") is not None]
        require_bound(catalog, bound_rows(catalog, ctx, waiver_ids), actor=resolve_who(None))
    result = run_pack(pack, ctx, waivers=waivers, now=now)
    document = result.to_document()
    if not document.get("subject"):
        document["subject"] = subject.as_dict()
    if subject.model is not None and ctx.sources.get("evidence_digest"):
        document["evidence_digest"] = ctx.sources["evidence_digest"]
    if ignored:
        document["waivers_not_counted"] = ignored
    return result, document


def store(tx: AuditedTransaction, result: EvaluationResult, subject: Subject, purpose: str,
          inputs: dict[str, Any] | None = None) -> int:
    """Store an evaluation (and its audit event) in ``tx``; its id."""
    from governance.policy import store_evaluation

    payload = {"subject": subject.as_dict(), **(inputs or {})}
    if subject.predictions is not None:
        payload.update(subject.predictions.as_inputs())
    row = store_evaluation(tx, result, model_version_id=subject.model_version_id, purpose=purpose,
                           inputs=payload)
    return int(row.id or 0)


def check(
    ref: str | Ref | None = None,
    *,
    policy: str | Path | PolicyPack,
    predictions: str | Path | None = None,
    label: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    sensitive: Sequence[str] | str | None = None,
    catalog: Catalog | None = None,
    actor: str | None = None,
    now: datetime | None = None,
    force: bool = False,
    engine: str = "pandas",
) -> GateReport:
    """Evaluate ``policy`` against ``MODEL@VERSION`` and/or a predictions table, without promoting.

    A model version's evaluation is stored and audited (purpose ``check``); a predictions table alone
    is evaluated in memory.  Never raises on a failing policy: read :meth:`GateReport.exit_code`.
    A pack whose ``appliesTo.riskTier`` leaves out the model's risk tier is an :class:`InputError`
    unless ``force`` (then the override is stored with the evaluation).  ``engine="spark"`` computes the
    predictions table's evidence on Spark (see :mod:`governance.spark`).
    """
    spec = predictions_spec(predictions, label, prediction, score, sensitive, engine)
    if ref is None and spec is None:
        raise InputError("give MODEL@VERSION or --predictions FILE --label COL --prediction COL")
    pack, source = load_policy(policy)
    if ref is None and spec is not None:
        result, document = _data_only(pack, spec, now)
        return GateReport(document, Subject(predictions=spec), source, result=result)
    cat = resolve_catalog(catalog)
    subject = resolve_subject(cat, ref, spec)
    override = pack_applicability(pack, subject, force=force)
    result, document = evaluate_subject(cat, subject, pack, now=now)
    with audited(cat, resolve_who(actor)) as tx:
        evaluation_id = store(tx, result, subject, "check", override)
    return GateReport(document, subject, source, evaluation_id, result=result)


def _data_only(pack: PolicyPack, spec: PredictionsSpec, now: datetime | None
               ) -> tuple[EvaluationResult, dict[str, Any]]:
    from governance.policy import run_pack

    result = run_pack(pack, _predictions_context(spec), now=now)
    document = result.to_document()
    if not document.get("subject"):
        document["subject"] = {"predictions": str(spec.path)}
    return result, document


def _predictions_context(spec: PredictionsSpec, baseline: dict[str, Any] | None = None) -> CheckContext:
    if spec.engine == "spark":
        from governance.spark import spark_predictions_context

        return spark_predictions_context(spec.path, label=spec.label, prediction=spec.prediction,
                                         score=spec.score, sensitive=list(spec.sensitive), baseline=baseline)
    from governance.policy import context_for_predictions

    return context_for_predictions(spec.path, label=spec.label, prediction=spec.prediction, score=spec.score,
                                   sensitive=list(spec.sensitive))
