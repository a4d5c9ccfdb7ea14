"""Catalog fixture data for the report tests (and the report benchmark), written through the
audited write API like every real mutation.  ``seed_model`` returns what it wrote so tests can look
for the catalog's own numbers in the rendered reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from governance.audit import audited
from governance.catalog import (
    Approval,
    Catalog,
    CheckResult,
    Dataset,
    DatasetField,
    DatasetVersion,
    Evidence,
    Job,
    Model,
    ModelAlias,
    ModelVersion,
    PolicyEvaluation,
    PromotionEvent,
    Run,
    RunIO,
    Waiver,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
EVALUATED_AT = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
PROMOTED_AT = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)

BY_SEX = {
    "sex=F": {
        "n": 412,
        "selection_rate": 0.4137,
        "tpr": 0.7921,
        "fpr": 0.1204,
        "fnr": 0.2079,
        "accuracy": 0.8011,
    },
    "sex=M": {
        "n": 588,
        "selection_rate": 0.4861,
        "tpr": 0.8112,
        "fpr": 0.1388,
        "fnr": 0.1888,
        "accuracy": 0.8143,
    },
}
BY_SEX_RACE = {
    "sex=F & race=A": {"n": 201, "selection_rate": 0.3980, "tpr": 0.7702, "fpr": 0.1101},
    "sex=F & race=B": {"n": 211, "selection_rate": 0.4286, "tpr": 0.8133, "fpr": 0.1302},
    "sex=M & race=A": {"n": 290, "selection_rate": 0.4759, "tpr": 0.8001, "fpr": 0.1402},
    "sex=M & race=B": {"n": 298, "selection_rate": 0.4960, "tpr": 0.8219, "fpr": 0.1375},
}
IMPORTANCE = {"income": 0.3121, "debt_ratio": 0.2214, "age": 0.0877, "tenure": 0.0412}
DRIFT = {"income": {"psi": 0.2731, "ks": 0.1102}, "age": {"psi": 0.0312, "ks": 0.0205}}


@dataclass
class Seeded:
    name: str
    version: int
    dataset_name: str
    metrics: dict[str, float]
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)


def _dataset(
    tx: Any,
    namespace: str,
    name: str,
    fields: list[tuple[str, str, list[str]]],
    rows: int,
    produced_by: int | None,
    when: datetime,
    description: str | None = None,
) -> DatasetVersion:
    ds = Dataset(
        namespace=namespace,
        name=name,
        uri=f"s3://bank/{uuid.uuid4().hex[:6]}.parquet",
        description=description,
        created_at=when,
    )
    tx.session.add(ds)
    tx.session.flush()
    dv = DatasetVersion(
        dataset_id=ds.id,
        version=1,
        content_hash="b3:" + uuid.uuid4().hex * 2,
        hash_algo="blake3",
        schema_hash="sha256:" + uuid.uuid4().hex[:16],
        row_count=rows,
        byte_size=rows * 64,
        produced_by_run_id=produced_by,
        created_at=when,
    )
    tx.session.add(dv)
    tx.session.flush()
    for pos, (fname, dtype, tags) in enumerate(fields):
        tx.session.add(
            DatasetField(dataset_version_id=dv.id, name=fname, dtype=dtype, position=pos, tags=tags)
        )
    tx.record("dataset_version.create", f"dataset:{name}@1", {"content_hash": dv.content_hash})
    return dv


def _run(tx: Any, ns: str, job_name: str, kind: str, when: datetime, **extra: Any) -> Run:
    job = Job(namespace=ns, name=job_name, kind=kind, created_at=when)
    tx.session.add(job)
    tx.session.flush()
    run = Run(
        run_uuid=str(uuid.uuid4()),
        job_id=job.id,
        status="COMPLETED",
        started_at=when,
        ended_at=when + timedelta(minutes=3),
        user="alice",
        **extra,
    )
    tx.session.add(run)
    tx.session.flush()
    tx.record("run.complete", f"run:{run.run_uuid}", {"job": job_name})
    return run


def seed_model(
    catalog: Catalog,
    *,
    name: str = "credit-scorer",
    description: str | None = None,
    dataset_name: str = "applications",
    full: bool = True,
) -> Seeded:
    """A model version with lineage, evidence, a policy evaluation, a waiver, an approval and a
    promotion (``full=False``: only the registered version, for the missing-information test)."""
    metrics = {"roc_auc": 0.8123, "accuracy": 0.7712}
    seeded = Seeded(name=name, version=1, dataset_name=dataset_name, metrics=metrics)
    ns = "credit" if name == "credit-scorer" else f"credit-{name}"
    with audited(catalog, "alice") as tx:
        raw = _dataset(
            tx,
            "s3://bank",
            dataset_name,
            [
                ("applicant_id", "int64", []),
                ("sex", "category", ["protected"]),
                ("race", "category", ["protected"]),
                ("income", "float64", []),
            ],
            5000,
            None,
            T0,
            description=description,
        )
        feat_run = _run(tx, ns, "build_features", "feature", T0 + timedelta(hours=1))
        tx.session.add(
            RunIO(
                run_id=feat_run.id, artifact_kind="dataset", artifact_id=raw.id, direction="input", role="raw"
            )
        )
        features = _dataset(
            tx,
            ns,
            "features",
            [
                ("income", "float64", ["feature"]),
                ("debt_ratio", "float64", ["feature"]),
                ("sex", "category", ["protected"]),
                ("default", "int8", ["label"]),
            ],
            5000,
            feat_run.id,
            T0 + timedelta(hours=1),
        )
        tx.session.add(
            RunIO(
                run_id=feat_run.id,
                artifact_kind="dataset",
                artifact_id=features.id,
                direction="output",
                role="return",
            )
        )
        train_run = _run(
            tx,
            ns,
            "train",
            "training",
            T0 + timedelta(hours=2),
            code_hash="sha256:" + "c0de" * 8,
            git_commit="3f2a9c1d0b7e",
            git_dirty=False,
            source_file="pipelines/train.py",
            environment={"python": "3.11.7", "scikit-learn": "1.5.0"},
            params={"C": 1.0},
        )
        tx.session.add(
            RunIO(
                run_id=train_run.id,
                artifact_kind="dataset",
                artifact_id=features.id,
                direction="input",
                role="features",
            )
        )
        model = Model(
            name=name,
            owner="risk-analytics" if full else None,
            description=description,
            risk_tier="high" if full else None,
            tags=["credit"],
            created_at=T0,
        )
        tx.session.add(model)
        tx.session.flush()
        card: dict[str, Any] = {}
        if full:
            card = {
                "intended_use": "Rank retail credit applications for manual review.",
                "out_of_scope_use": ["Fully automated rejection", "Employment screening"],
                "factors": ["sex", "race", "age band"],
                "training_data": "Applications 2019-2024, deduplicated.",
                "limitations": "Not validated for applicants without credit history.",
                "ethical_considerations": [
                    {
                        "name": "Disparate impact on protected groups",
                        "mitigation_strategy": "threshold optimiser",
                    }
                ],
                "recommendations": "TODO",
            }
        mv = ModelVersion(
            model_id=model.id,
            version=1,
            artifact_hash="a1b2c3d4" * 8,
            hash_algo="sha256",
            artifact_uri="s3://models/credit-scorer/1/model.pkl",
            flavor="sklearn" if full else None,
            params={"C": 1.0, "penalty": "l2"},
            metrics=metrics if full else {},
            card=card,
            features=["income", "debt_ratio", "age", "tenure"],
            training_run_id=train_run.id if full else None,
            created_at=T0 + timedelta(hours=3),
        )
        tx.session.add(mv)
        tx.session.flush()
        tx.record("model_version.register", f"model:{name}@1", {"artifact_hash": mv.artifact_hash})
    if not full:
        return seeded
    with audited(catalog, "ci-bot") as tx:
        holdout = _dataset(
            tx,
            ns,
            "holdout",
            [("sex", "category", ["protected"])],
            1000,
            None,
            EVALUATED_AT - timedelta(hours=1),
        )
        tx.session.add(
            Evidence(
                model_version_id=mv.id,
                dataset_version_id=holdout.id,
                kind="evaluation",
                data={"n": 1000, "metrics": {"by_group": {"sex": BY_SEX}}},
                created_at=EVALUATED_AT,
            )
        )
        waiver = Waiver(
            model_id=model.id,
            versions=[1],
            check_id="drift.income_psi",
            reason="seasonal shift, retraining scheduled",
            ticket="MRM-42",
            requester="alice",
            approver="cro",
            expires_at=datetime(2030, 1, 1, tzinfo=UTC),
            created_at=EVALUATED_AT - timedelta(minutes=5),
        )
        tx.session.add(waiver)
        tx.session.flush()
        evaluation = PolicyEvaluation(
            model_version_id=mv.id,
            subject={"model": name, "version": 1},
            policy_name="production",
            policy_version="2.0.0",
            policy_digest="sha256:" + "9" * 64,
            purpose="promote",
            status="PASS",
            actor="ci-bot",
            created_at=EVALUATED_AT,
        )
        tx.session.add(evaluation)
        tx.session.flush()
        checks = [
            (
                "fairness.selection_rate_ratio",
                "fairness.demographic_parity_ratio",
                "PASS",
                0.8512,
                {"gte": 0.8},
                ["EU-AI-Act:Annex-IV-2(g)", "NIST-AI-RMF:MEASURE-2.11"],
                {
                    "value": 0.8512,
                    "by_group": BY_SEX,
                    "group_sizes": {"sex=F": 412, "sex=M": 588},
                    "ci": [0.8101, 0.8903],
                    "evidence": {},
                },
                None,
            ),
            (
                "fairness.intersectional_eod",
                "fairness.equalized_odds_difference",
                "WARN",
                0.0731,
                {"lte": 0.05},
                ["NIST-AI-RMF:MEASURE-2.11"],
                {"value": 0.0731, "by_group": BY_SEX_RACE, "ci": None, "evidence": {}},
                None,
            ),
            (
                "explain.no_protected_in_top",
                "explainability.protected_feature_rank",
                "PASS",
                1.0,
                {"eq": True},
                [],
                {
                    "value": 1.0,
                    "by_group": {},
                    "evidence": {"importance": IMPORTANCE, "explainer": "TreeExplainer", "sample_size": 2000},
                },
                None,
            ),
            ("perf.auc", "performance.roc_auc", "PASS", 0.8123, {"gte": 0.75}, [], {"value": 0.8123}, None),
            (
                "drift.income_psi",
                "drift.psi",
                "WAIVED",
                0.2731,
                {"lte": 0.25},
                [],
                {"value": 0.2731, "by_group": DRIFT, "evidence": {}},
                waiver.id,
            ),
        ]
        for check_id, uses, status, value, assertion, maps_to, measurement, waiver_id in checks:
            tx.session.add(
                CheckResult(
                    evaluation_id=evaluation.id,
                    check_id=check_id,
                    uses=uses,
                    check_version="1",
                    status=status,
                    severity="block",
                    value=value,
                    assertion=assertion,
                    measurement=measurement,
                    maps_to=maps_to,
                    waiver_id=waiver_id,
                )
            )
            seeded.checks[check_id] = {"status": status, "value": value}
        tx.record("policy.evaluate", f"model:{name}@1", {"status": "PASS", "policy": "production"})
        tx.record("waiver.create", f"waiver:{name}@1", {"check": "drift.income_psi"})
    with audited(catalog, "model-risk-officer") as tx:
        tx.session.add(
            Approval(
                model_version_id=mv.id,
                stage="production",
                approver="model-risk-officer",
                role="MRM validator",
                comment="reviewed",
                created_at=PROMOTED_AT - timedelta(hours=1),
            )
        )
        tx.session.add(
            PromotionEvent(
                model_id=model.id,
                alias="production",
                action="promote",
                from_version_id=None,
                to_version_id=mv.id,
                actor="release-bot",
                reason="gate passed",
                evaluation_id=evaluation.id,
                created_at=PROMOTED_AT,
            )
        )
        tx.session.add(
            ModelAlias(model_id=model.id, alias="production", model_version_id=mv.id, updated_at=PROMOTED_AT)
        )
        tx.record("approval.grant", f"model:{name}@1", {"stage": "production"})
        tx.record("model.promote", f"model:{name}@1", {"to": "production"})
    return seeded


def test_seed_writes_an_audited_model(sqlite_catalog: Catalog) -> None:
    seeded = seed_model(sqlite_catalog)
    from governance.audit import verify_events
    from governance.audit._chain import iter_chain

    with sqlite_catalog.read() as session:
        report = verify_events(iter_chain(session))
    assert report.ok and report.count >= 9
    assert seeded.checks["perf.auc"]["value"] == 0.8123
