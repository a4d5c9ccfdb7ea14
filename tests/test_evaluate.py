"""governance.evaluate stores evidence for an exact model version; the gate re-asserts it without the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sqlmodel import col, select

from governance.audit import audited
from governance.catalog import (
    AuditEvent,
    Catalog,
    CheckResult,
    Dataset,
    DatasetVersion,
    Evidence,
    Job,
    Model,
    ModelAlias,
    ModelVersion,
    PolicyEvaluation,
    Run,
    RunIO,
)
from governance.checks._data import baseline_stats
from governance.checks._explain import global_importance
from governance.policy import (
    Status,
    context_for_model_version,
    evaluate,
    load_measurements,
    parse_pack,
    run_pack,
)

FEATURES = ["income", "debt", "age", "zip_score"]


def _data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    income = rng.normal(50 + shift, 10, n)
    debt = rng.normal(20, 5, n)
    age = rng.integers(18, 80, n).astype(float)
    zip_score = (sex == "M") * 1.0 + rng.normal(0, 0.2, n)  # a proxy of sex
    logit = 0.15 * (income - 50) - 0.2 * (debt - 20) + 0.01 * (age - 45)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {"income": income, "debt": debt, "age": age, "zip_score": zip_score, "sex": sex, "y": y}
    )


def _register(
    catalog: Catalog,
    train: pd.DataFrame,
    *,
    card: dict[str, str],
    code_hash: str | None = "c0de",
    content_hash: str | None = "abc123",
    artifacts: tuple[object, ...] = (),
) -> None:
    """Two versions of ``credit``; version N is the artifact of ``artifacts[N-1]`` when given."""
    from governance.lineage import artifact_digest

    hashes = [artifact_digest(m) for m in artifacts]
    with audited(catalog, "setup") as tx:
        s = tx.session
        ds = Dataset(namespace="t", name="train")
        job = Job(namespace="t", name="train_model", kind="training")
        model = Model(name="credit", description="Scores credit applications", risk_tier="high")
        s.add_all([ds, job, model])
        s.flush()
        dv = DatasetVersion(
            dataset_id=ds.id,
            version=1,
            content_hash=content_hash,
            hash_algo="blake3",
            stats=baseline_stats(train[FEATURES]),
            row_count=len(train),
        )
        run = Run(
            run_uuid="00000000-0000-7000-8000-000000000001",
            job_id=job.id,
            status="COMPLETED",
            code_hash=code_hash,
        )
        s.add_all([dv, run])
        s.flush()
        s.add(
            RunIO(
                run_id=run.id, artifact_kind="dataset", artifact_id=dv.id, direction="input", role="features"
            )
        )
        eval_ds = Dataset(namespace="t", name="holdout")
        s.add(eval_ds)
        s.flush()
        s.add(DatasetVersion(dataset_id=eval_ds.id, version=1, content_hash="e0e0", hash_algo="blake3"))
        for version in (1, 2):
            s.add(
                ModelVersion(
                    model_id=model.id,
                    version=version,
                    artifact_hash=hashes[version - 1] if version <= len(hashes) else f"h{version}",
                    training_run_id=run.id,
                    card=card,
                    features=FEATURES,
                )
            )
        tx.record("test.setup", "model:credit", {})


PACK = """
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: gate, version: "3"}
checks:
  - {id: dp, uses: fairness.demographic_parity_ratio, with: {minGroupSize: 30}, assert: {gte: 0.5}}
  - {id: eo, uses: fairness.equalized_odds_difference, assert: {lte: 0.5}}
  - {id: auc, uses: performance.roc_auc, assert: {gte: 0.6}}
  - {id: worst_acc, uses: performance.accuracy, with: {aggregate: worst_group}, assert: {gte: 0.5}}
  - {id: champ, uses: performance.no_worse_than_champion, with: {metric: roc_auc}, assert: {gte: -0.05}}
  - {id: rank, uses: explainability.protected_feature_rank, with: {protected: [sex], topK: 2},
     assert: {eq: true}}
  - {id: proxies, uses: explainability.proxy_features, with: {protected: [sex], threshold: 0.6},
     assert: {lte: 0}, severity: warn}
  - {id: schema, uses: data_quality.schema_match, assert: {eq: 0}}
  - {id: nulls, uses: data_quality.null_rate, assert: {lte: 0.01}}
  - {id: psi, uses: drift.psi, assert: {lte: 0.2}}
  - {id: ks, uses: drift.ks, assert: {lte: 0.2}}
  - {id: lineage, uses: lineage.completeness, assert: {eq: true}}
  - {id: docs, uses: documentation.completeness, assert: {gte: 1.0}}
"""
CARD = {
    "intended_use": "Pre-screening",
    "limitations": "Trained on 2020 data",
    "ethical_considerations": "Reviewed by the fairness board",
}


def test_evaluate_stores_evidence_and_gate_reasserts_without_data(catalog: Catalog) -> None:
    train, holdout = _data(3000, 1), _data(1500, 2)
    model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["y"])
    _register(catalog, train, card=CARD, artifacts=(model,))
    pack = parse_pack(PACK)
    record = evaluate(
        model,
        holdout,
        label="y",
        sensitive=["sex"],
        model_ref="credit@1",
        catalog=catalog,
        policy=pack,
        actor="alice",
        dataset_ref="holdout@1",
    )
    assert record.evidence_id is not None and record.evaluation_id is not None
    assert record.result is not None
    statuses = {r.id: r.status for r in record.result.results}
    assert (
        statuses["dp"] is Status.PASS
        and statuses["psi"] is Status.PASS
        and statuses["lineage"] is Status.PASS
    )
    assert statuses["proxies"] is Status.WARN  # zip_score is a proxy of sex
    assert statuses["docs"] is Status.PASS and statuses["schema"] is Status.PASS
    imp = record.data["importance"]
    assert imp["explainer"] == "LinearExplainer" and set(imp["importance"]) == set(FEATURES)
    assert record.data["data_fingerprint"]["content_hash"]

    with catalog.read() as session:
        ev = session.get(Evidence, record.evidence_id)
        assert ev is not None and ev.dataset_version_id == record.dataset_version_id
        evaluation = session.get(PolicyEvaluation, record.evaluation_id)
        assert (
            evaluation is not None and evaluation.policy_digest == pack.digest and evaluation.actor == "alice"
        )
        rows = session.exec(select(CheckResult).where(CheckResult.evaluation_id == evaluation.id)).all()
        assert {r.check_id for r in rows} == {s.id for s in pack.checks}
        assert all(r.check_version == "1" for r in rows)
        actions = session.exec(select(AuditEvent.action).order_by(col(AuditEvent.seq))).all()
        assert actions[-2:] == ["evidence.record", "policy.evaluate"]
        stored = load_measurements(session, evaluation.id)

    # the gate later: only the catalog, no model, no data
    ctx = context_for_model_version(catalog, "credit@1")
    assert ctx.predictions is None and ctx.features is None
    later = run_pack(pack, ctx)
    fresh = {r.id: r for r in record.result.results}
    for r in later.results:
        assert r.status is fresh[r.id].status, (r.id, r.message)
        if r.value is not None:
            assert r.value == pytest.approx(fresh[r.id].value, abs=1e-9), r.id
    # and re-asserting the stored measurements of that evaluation gives the same statuses
    again = run_pack(pack, ctx, measurements=stored)
    assert [r.status for r in again.results] == [r.status for r in record.result.results]


def test_drift_lineage_docs_and_champion_fail_when_they_should(sqlite_catalog: Catalog) -> None:
    train = _data(3000, 1)
    model = LogisticRegression(max_iter=500).fit(train[FEATURES], train["y"])
    weak = LogisticRegression(max_iter=500).fit(
        train[["age"]].assign(**{c: 0.0 for c in FEATURES if c != "age"})[FEATURES], train["y"]
    )
    _register(sqlite_catalog, train, card={**CARD, "limitations": "TBD"}, code_hash=None, artifacts=(model, weak))
    first = evaluate(
        model,
        _data(1500, 2),
        label="y",
        sensitive=["sex"],
        model_ref="credit@1",
        catalog=sqlite_catalog,
        actor="alice",
    )
    with audited(sqlite_catalog, "alice") as tx:
        mv1 = tx.session.exec(select(ModelVersion).where(ModelVersion.version == 1)).one()
        tx.session.add(ModelAlias(model_id=mv1.model_id, alias="production", model_version_id=mv1.id))
        tx.record("model.alias", "model:credit@production", {})
    shifted = _data(1500, 3, shift=15.0)
    record = evaluate(
        weak,
        shifted,
        label="y",
        sensitive=["sex"],
        model_ref="credit@2",
        catalog=sqlite_catalog,
        policy=parse_pack(PACK),
        actor="bob",
    )
    assert record.result is not None and first.evidence_id is not None
    by_id = {r.id: r for r in record.result.results}
    assert by_id["psi"].status is Status.FAIL and by_id["psi"].by_group["income"]["psi"] > 0.2
    assert by_id["ks"].status is Status.FAIL
    assert by_id["lineage"].status is Status.FAIL and "code_hash" in by_id["lineage"].message
    assert by_id["docs"].status is Status.FAIL and "placeholder card fields: limitations" in by_id["docs"].message
    assert by_id["champ"].status is Status.FAIL
    champ = by_id["champ"].measurement
    assert champ is not None and champ.evidence["champion_version"] == 1
    assert record.result.status is Status.FAIL


def test_explainer_choice_and_protected_rank() -> None:
    data = _data(1200, 5)
    with_sex = data.assign(sex_code=(data["sex"] == "M").astype(float))
    cols = [*FEATURES, "sex_code"]
    y = ((with_sex["sex_code"] + 0.1 * np.random.default_rng(0).normal(size=len(data))) > 0.5).astype(int)
    forest = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(with_sex[cols], y)
    tree = global_importance(forest, with_sex[cols], max_samples=300)
    assert tree["explainer"] == "TreeExplainer" and tree["sample_size"] == 300
    assert next(iter(tree["importance"])) == "sex_code"
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(with_sex[cols], y)
    exact = global_importance(linear, with_sex[cols], max_samples=60, seed=3)
    assert exact["explainer"] == "LinearExplainer" and exact["sample_size"] == 60  # through the scaler
    assert next(iter(exact["importance"])) == "sex_code"
    mlp = MLPClassifier((8,), max_iter=2000, random_state=0)
    pipe = make_pipeline(StandardScaler(), mlp).fit(with_sex[cols], y)  # no exact explainer applies
    agnostic = global_importance(pipe, with_sex[cols], max_samples=60, seed=3)
    assert agnostic["explainer"] == "PermutationExplainer" and agnostic["sample_size"] == 60
    assert "sex_code" in list(agnostic["importance"])[:2]
    assert agnostic == global_importance(pipe, with_sex[cols], max_samples=60, seed=3)  # seeded
    pack = parse_pack("""
apiVersion: governance/v1
kind: PolicyPack
metadata: {name: x, version: "1"}
checks:
  - {id: rank, uses: explainability.protected_feature_rank, with: {protected: [sex_code], topK: 3},
     assert: {eq: true}}
""")
    result = run_pack(pack, {"features": with_sex[cols], "estimator": forest})
    assert result.results[0].status is Status.FAIL
    assert result.results[0].by_group["sex_code"]["rank"] == 1
    assert "sex_code" in result.results[0].message


def test_evidence_links_to_the_captured_dataset_version_with_the_same_content(sqlite_catalog: Catalog) -> None:
    import governance as gov
    from governance.lineage import capture_to

    train, test = _data(400, 1), _data(300, 2)

    @gov.step(kind="training", model="linked")
    def fit(frame: pd.DataFrame) -> LogisticRegression:
        return LogisticRegression(max_iter=500).fit(frame[FEATURES], frame["y"])

    @gov.step(kind="evaluation")
    def holdout(frame: pd.DataFrame) -> pd.DataFrame:
        return frame

    with capture_to(sqlite_catalog):
        model = fit(train)
        held = holdout(test)
    ref = gov.version_of(model, model="linked", catalog=sqlite_catalog)
    record = evaluate(model, held, label="y", sensitive=["sex"], model_ref=ref, features=FEATURES,
                      catalog=sqlite_catalog, actor="tester")
    with sqlite_catalog.read() as s:
        captured = s.exec(select(DatasetVersion).where(col(DatasetVersion.id) == record.dataset_version_id)).one()
        assert captured.row_count == 300
        assert captured.content_hash == record.data["data_fingerprint"]["content_hash"]
    other = evaluate(model, _data(300, 3), label="y", sensitive=["sex"], model_ref=ref, features=FEATURES,
                     catalog=sqlite_catalog, actor="tester")
    assert other.dataset_version_id is None  # never captured: no link is invented
